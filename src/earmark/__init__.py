"""earmark: listen first, look where it matters.

Decode a video's audio (cheap), score every window for eventness, pick anchors, and spend a
fixed visual token budget where the audio points.

>>> import earmark                                      # doctest: +SKIP
>>> vi = earmark.info("clip.mp4")                       # doctest: +SKIP
>>> tl = earmark.index("clip.mp4", probe="energy")      # doctest: +SKIP
>>> earmark.anchors(tl, k=2)                            # doctest: +SKIP
>>> p = earmark.plan(earmark.index("clip.mp4"), "qwen2.5-vl", 640)   # doctest: +SKIP
>>> frames = list(earmark.extract("clip.mp4", p))       # doctest: +SKIP
"""

from __future__ import annotations

from ._version import __version__
from .anchors import AnchorConfig, anchors, merge_regions, with_anchors
from .budget.costs import cost_model, cost_model_names
from .budget.planner import BudgetTooSmallError, PlanConfig, budget_sweep, plan, plan_sweep
from .errors import (
    ConfigError,
    EarmarkError,
    EarmarkWarning,
    MediaError,
    NoAudioStreamError,
    NoVideoStreamError,
    SchemaError,
    UnknownNameError,
)
from .index import index
from .media.container import info
from .media.frames import extract, save_frames
from .probes import get_probe, probe_names, register_probe
from .sinks.export import read_index, read_plan, write_plan
from .types import (
    SCHEMA_VERSION,
    Anchor,
    AudioStreamInfo,
    Frame,
    IndexResult,
    Plan,
    PlannedFrame,
    PlanVideo,
    Timeline,
    VideoInfo,
    VideoStreamInfo,
)

__all__ = [
    "SCHEMA_VERSION",
    "Anchor",
    "AnchorConfig",
    "AudioStreamInfo",
    "BudgetTooSmallError",
    "ConfigError",
    "EarmarkError",
    "EarmarkWarning",
    "Frame",
    "IndexResult",
    "MediaError",
    "NoAudioStreamError",
    "NoVideoStreamError",
    "Plan",
    "PlanConfig",
    "PlanVideo",
    "PlannedFrame",
    "SchemaError",
    "Timeline",
    "UnknownNameError",
    "VideoInfo",
    "VideoStreamInfo",
    "__version__",
    "anchors",
    "budget_sweep",
    "cost_model",
    "cost_model_names",
    "extract",
    "get_probe",
    "index",
    "info",
    "merge_regions",
    "plan",
    "plan_sweep",
    "probe_names",
    "read_index",
    "read_plan",
    "register_probe",
    "save_frames",
    "with_anchors",
    "write_plan",
]
