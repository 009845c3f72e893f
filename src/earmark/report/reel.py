"""The HTML reel page: the timeline report of a video with its highlight segments drawn as regions, and a list of
the segments, each playable from its start in the page's video player (and linked to its clip when cut)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import write_text_atomic
from ..highlights import Highlights
from ..types import Anchor, IndexResult, clock
from .html import _env, envelope, page_data, timeline_view


def _segment_anchors(result: IndexResult, h: Highlights) -> tuple[Anchor, ...]:
    """The segments as anchors of the index (how the timeline page draws regions)."""
    tl = result.timeline
    source = "audio" if tl.audio_stream is not None else "visual"
    out = []
    for g in h.segments:
        i = min(len(tl) - 1, max(0, int(round((g.peak_s - tl.window_s / 2) / tl.hop_s))))
        out.append(Anchor(index=i, time_s=g.peak_s, start_s=g.start_s, end_s=g.end_s, score=g.score,
                          confidence=1.0, source=source))
    return tuple(out)


def _relative(target: str | Path, start: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), start.resolve())).as_posix()


def reel_view(result: IndexResult, h: Highlights, out: Path, clip_files: dict[int, str] | None = None,
              clips_dir: str | Path | None = None, envelope_points: Sequence[dict] = ()) -> dict[str, Any]:
    """The timeline view (curves, segments as regions) and the reel's own part (``r``), as plain values."""
    drawn = [dataclasses.replace(result, anchors=_segment_anchors(result, h))]
    if h.scorer != "eventness" and h.scores is not None:  # the curve the segments grew over, under the probe's
        tl = dataclasses.replace(result.timeline, probe=f"activation:{h.embedding}",
                                 scores=np.asarray(h.scores, np.float32))
        drawn = [dataclasses.replace(drawn[0], timeline=tl), dataclasses.replace(result, anchors=())]
    view = timeline_view(drawn, envelope_points=envelope_points, title=f"{Path(h.video).name} · highlights")
    files = clip_files or {}
    rows = []
    for g in sorted(h.segments, key=lambda g: g.rank):
        name = files.get(g.rank)
        rows.append({"rank": g.rank, "start_s": g.start_s, "end_s": g.end_s, "duration_s": g.duration_s,
                     "score": g.score, "start": clock(g.start_s), "end": clock(g.end_s),
                     "clip": _relative(Path(clips_dir) / name, out.parent) if name and clips_dir else None,
                     "clip_name": name})
    src = _relative(h.video, out.parent) if Path(h.video).exists() else None
    view["reel"] = {"scorer": h.scorer, "embedding": h.embedding, "segments": rows, "total": h.total_s,
                    "src": src, "has_clips": bool(files), "notes": list(h.notes)}
    return view


def reel_html(result: IndexResult, h: Highlights, out: str | Path, clip_files: dict[int, str] | None = None,
              clips_dir: str | Path | None = None) -> str:
    """The reel page's HTML for a page to be written at ``out`` (the video and clips are linked relative to it)."""
    out = Path(out)
    env_pts = envelope(h.video, h.duration_s) if Path(h.video).exists() else []
    view = reel_view(result, h, out, clip_files, clips_dir, env_pts)
    return _env().get_template("reel.html.j2").render(v=view, r=view["reel"], data=page_data(view))


def reel_report(result: IndexResult, h: Highlights, out: str | Path, clip_files: dict[int, str] | None = None,
                clips_dir: str | Path | None = None) -> Path:
    """Write the reel page (atomically).

    >>> reel_report(earmark.read_index("clip.json"), h, "reel.html")   # doctest: +SKIP
    """
    return write_text_atomic(out, reel_html(result, h, out, clip_files, clips_dir))
