"""earmark: listen first, look where it matters.

Decode a video's audio (cheap), score every window for eventness, pick anchors, and spend a
fixed visual token budget where the audio points.

>>> import earmark                                      # doctest: +SKIP
>>> vi = earmark.info("clip.mp4")                       # doctest: +SKIP
>>> tl = earmark.index("clip.mp4", probe="energy")      # doctest: +SKIP
>>> earmark.anchors(tl, k=2)                            # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from .anchors import AnchorConfig, anchors, merge_regions
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
from .media.probe import info
from .probes import get_probe, probe_names, register_probe
from .types import SCHEMA_VERSION, Anchor, AudioStreamInfo, IndexResult, Timeline, VideoInfo, VideoStreamInfo

__all__ = [
    "SCHEMA_VERSION",
    "Anchor",
    "AnchorConfig",
    "AudioStreamInfo",
    "ConfigError",
    "EarmarkError",
    "EarmarkWarning",
    "IndexResult",
    "MediaError",
    "NoAudioStreamError",
    "NoVideoStreamError",
    "SchemaError",
    "Timeline",
    "UnknownNameError",
    "VideoInfo",
    "VideoStreamInfo",
    "__version__",
    "anchors",
    "get_probe",
    "index",
    "info",
    "merge_regions",
    "probe_names",
    "register_probe",
]
