"""HTML reports: a per-video timeline ("why did it look here?") and the eval results page. Self-contained files
(inline CSS/JS, images embedded or in an assets folder), rendered with jinja2 autoescaping."""

from .html import render_eval, render_timeline, timeline_view

__all__ = ["render_eval", "render_timeline", "timeline_view"]
