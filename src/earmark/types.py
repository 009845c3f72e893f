"""The values that flow through earmark: VideoInfo, Timeline, Anchor.

All are frozen dataclasses with seconds as floats and half-open intervals ``[start, end)``.
Each has ``to_dict()`` / ``from_dict()`` that round-trip exactly (float32 arrays are written
with the shortest decimal that reads back to the same float32), so saved documents are
byte-stable for the same input and config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from .errors import SchemaError

SCHEMA_VERSION = 1
"""Version of the saved document layout (``earmark.index`` JSON); bump on incompatible change."""

AnchorSource = Literal["audio", "visual", "hybrid", "transfer", "fallback", "oracle", "random", "spread"]
ANCHOR_SOURCES: tuple[str, ...] = ("audio", "visual", "hybrid", "transfer", "fallback", "oracle", "random", "spread")
"""Where an anchor came from: the probe family that scored it (audio, visual, hybrid, transfer), evenly spaced
because nothing stood out (fallback), or a planner strategy (oracle, random, and spread: the fixed-spread
baseline's evenly spaced slots, chosen without reading anything)."""


def f32_list(values: np.ndarray) -> list[float]:
    """float32 values as Python floats with the shortest repr that round-trips (``0.1`` not ``0.100000001``)."""
    return [float(str(v)) for v in np.asarray(values, dtype=np.float32)]


def _f32(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float32)
    arr.setflags(write=False)
    return arr


def _require(d: dict, keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise SchemaError(f"{what}: missing field(s) {', '.join(missing)}")


class _Flat:
    """``to_dict`` / ``from_dict`` for dataclasses of plain fields; ``_REQUIRED`` names the keys a document needs."""

    _REQUIRED: ClassVar[tuple[str, ...]] = ()
    _WHAT: ClassVar[str] = "document"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        _require(d, cls._REQUIRED, cls._WHAT)
        return cls(**d)


@dataclass(frozen=True)
class AudioStreamInfo(_Flat):
    """One audio stream of a container."""

    index: int
    codec: str
    sample_rate: int
    channels: int
    start_time_s: float | None
    duration_s: float | None
    language: str | None = None
    default: bool = False


@dataclass(frozen=True)
class VideoStreamInfo(_Flat):
    """The video stream earmark would read frames from."""

    index: int
    codec: str
    width: int
    height: int
    pix_fmt: str | None
    fps_nominal: float | None
    """The stream's declared (real base) frame rate, ``r_frame_rate`` in ffprobe's terms."""
    fps_average: float | None
    """Frames divided by duration, ``avg_frame_rate`` in ffprobe's terms."""
    frame_count: int | None
    start_time_s: float | None
    duration_s: float | None
    rotation: int
    """Display rotation in degrees (counter-clockwise, as the display matrix says); 0 when none."""
    vfr: bool
    """True when frame durations in the scanned packets vary (variable frame rate)."""
    keyframe_interval_s: float | None
    """Median spacing of keyframes in the scanned packets; None when fewer than two were seen."""


@dataclass(frozen=True)
class VideoInfo:
    """Container and stream facts, as earmark sees them (``earmark info``)."""

    path: str
    size_bytes: int
    fingerprint: str
    """Content fingerprint (size + hash of head and tail) used to check that an index or plan fits a file."""
    format_name: str
    duration_s: float
    """Duration of the timeline earmark indexes (the video stream's, else the container's)."""
    start_time_s: float
    """Presentation time that earmark calls t = 0 (the video stream's start, else the audio's)."""
    video: VideoStreamInfo | None
    audio_streams: tuple[AudioStreamInfo, ...]
    default_audio_stream: int | None
    """Stream index earmark reads audio from unless told otherwise."""

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_streams)

    @property
    def has_video(self) -> bool:
        return self.video is not None

    def audio_stream(self, index: int | None = None) -> AudioStreamInfo | None:
        """The audio stream with container index ``index`` (default: the default stream)."""
        want = self.default_audio_stream if index is None else index
        return next((a for a in self.audio_streams if a.index == want), None)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["audio_streams"] = [a.to_dict() for a in self.audio_streams]
        d["video"] = self.video.to_dict() if self.video else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoInfo:
        d = dict(d)
        d["video"] = VideoStreamInfo.from_dict(d["video"]) if d.get("video") else None
        d["audio_streams"] = tuple(AudioStreamInfo.from_dict(a) for a in d.get("audio_streams", ()))
        return cls(**d)


@dataclass(frozen=True, eq=False)
class Timeline:
    """Per-window eventness of one video: the output of a probe.

    Window ``i`` covers ``[i * hop_s, i * hop_s + window_s)`` seconds of the video's timeline
    (t = 0 is the first picture), so second t of the index is second t of the picture.

    ``raw`` holds the probe's own values (unit in ``raw_unit``), ``scores`` the per-video robust
    z-scores ``(raw - median) / scale`` (comparable across videos), ``confidence`` in [0, 1] how
    clearly the window stands out times ``coverage``, the fraction of the window the audio covers.
    """

    video: str
    fingerprint: str
    duration_s: float
    hop_s: float
    window_s: float
    probe: str
    probe_config: dict[str, Any]
    raw_unit: str
    raw: np.ndarray
    scores: np.ndarray
    confidence: np.ndarray
    coverage: np.ndarray
    norm_center: float
    norm_scale: float
    audio_stream: int | None
    sample_rate: int
    labels: tuple[tuple[str, ...], ...] | None = None
    notes: tuple[str, ...] = ()
    """Caveats found while indexing (e.g. the audio ends before the picture)."""
    schema_version: int = field(default=SCHEMA_VERSION)

    def __post_init__(self) -> None:
        for name in ("raw", "scores", "confidence", "coverage"):
            object.__setattr__(self, name, _f32(getattr(self, name)))
        n = len(self.scores)
        for name in ("raw", "confidence", "coverage"):
            if len(getattr(self, name)) != n:
                raise SchemaError(f"timeline {self.video}: {name} has {len(getattr(self, name))} values, "
                                  f"scores has {n}")
        if self.labels is not None and len(self.labels) != n:
            raise SchemaError(f"timeline {self.video}: labels has {len(self.labels)} rows, scores has {n}")

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def starts(self) -> np.ndarray:
        """Window start times in seconds."""
        return np.arange(len(self), dtype=np.float64) * self.hop_s

    @property
    def ends(self) -> np.ndarray:
        """Window end times in seconds (exclusive)."""
        return self.starts + self.window_s

    @property
    def centers(self) -> np.ndarray:
        return self.starts + self.window_s / 2

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timeline):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "video": self.video,
            "fingerprint": self.fingerprint,
            "duration_s": self.duration_s,
            "hop_s": self.hop_s,
            "window_s": self.window_s,
            "probe": self.probe,
            "probe_config": dict(self.probe_config),
            "raw_unit": self.raw_unit,
            "raw": f32_list(self.raw),
            "scores": f32_list(self.scores),
            "confidence": f32_list(self.confidence),
            "coverage": f32_list(self.coverage),
            "norm_center": self.norm_center,
            "norm_scale": self.norm_scale,
            "audio_stream": self.audio_stream,
            "sample_rate": self.sample_rate,
            "labels": [list(x) for x in self.labels] if self.labels is not None else None,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Timeline:
        fields = ("video", "fingerprint", "duration_s", "hop_s", "window_s", "probe", "probe_config",
                  "raw_unit", "raw", "scores", "confidence", "coverage", "norm_center", "norm_scale",
                  "audio_stream", "sample_rate")
        _require(d, fields, "timeline")
        version = d.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise SchemaError(f"timeline schema_version {version} is not supported (this earmark reads "
                              f"{SCHEMA_VERSION})")
        labels = d.get("labels")
        return cls(**{k: d[k] for k in fields},
                   labels=tuple(tuple(x) for x in labels) if labels is not None else None,
                   notes=tuple(d.get("notes", ())), schema_version=version)


@dataclass(frozen=True)
class Anchor(_Flat):
    """A moment worth looking at: window ``index`` of a Timeline and the region to look in.

    ``time_s`` is the window's centre shifted by the AV offset (picture time); the region
    ``[start_s, end_s)`` is the window after dilation, offset and uncertainty widening,
    clipped to the video.
    """

    index: int
    time_s: float
    start_s: float
    end_s: float
    score: float
    confidence: float
    source: AnchorSource = "audio"

    _REQUIRED: ClassVar[tuple[str, ...]] = ("index", "time_s", "start_s", "end_s", "score", "confidence")
    _WHAT: ClassVar[str] = "anchor"

    def __post_init__(self) -> None:
        if self.source not in ANCHOR_SOURCES:
            raise SchemaError(f"anchor source {self.source!r} is not one of {', '.join(ANCHOR_SOURCES)}")
        if not self.start_s < self.end_s:
            raise SchemaError(f"anchor region [{self.start_s}, {self.end_s}) is empty")

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s



class _Document:
    """A saved top-level document: compared by content, with a kind and schema-version header."""

    KIND: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def _header(self) -> dict[str, Any]:
        from . import __version__

        return {"kind": self.KIND, "schema_version": SCHEMA_VERSION, "earmark_version": __version__}

    @classmethod
    def _check_header(cls, d: Any) -> None:
        what = cls.KIND.split(".")[-1]
        if not isinstance(d, dict) or d.get("kind") != cls.KIND:
            kind = d.get("kind") if isinstance(d, dict) else None
            raise SchemaError(f"not an earmark {what} document (kind is {kind!r}, expected {cls.KIND!r})")
        if d.get("schema_version") != SCHEMA_VERSION:
            raise SchemaError(f"{what} schema_version {d.get('schema_version')} is not supported (this earmark "
                              f"reads {SCHEMA_VERSION})")


@dataclass(frozen=True, eq=False)
class IndexResult(_Document):
    """What ``earmark index`` saves per video: the file's facts, its Timeline, the anchors and how they were chosen."""

    info: VideoInfo
    timeline: Timeline
    anchors: tuple[Anchor, ...]
    anchor_config: dict[str, Any]

    KIND: ClassVar[str] = "earmark.index"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._header(),
            "info": self.info.to_dict(),
            "timeline": self.timeline.to_dict(),
            "anchors": [a.to_dict() for a in self.anchors],
            "anchor_config": dict(self.anchor_config),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexResult:
        cls._check_header(d)
        _require(d, ("info", "timeline", "anchors", "anchor_config"), "index")
        try:
            return cls(info=VideoInfo.from_dict(d["info"]), timeline=Timeline.from_dict(d["timeline"]),
                       anchors=tuple(Anchor.from_dict(a) for a in d["anchors"]),
                       anchor_config=dict(d["anchor_config"]))
        except (TypeError, ValueError, KeyError) as e:
            raise SchemaError(f"malformed index document: {e}") from e


FrameRole = Literal["uniform", "anchor", "context"]
FRAME_ROLES: tuple[str, ...] = ("uniform", "anchor", "context")


@dataclass(frozen=True)
class PlannedFrame(_Flat):
    """One frame a Plan asks for: when, at what size, and what it costs the target model.

    ``tokens`` is what this frame adds to the plan's total. Where the model charges a group of
    frames together (Qwen video mode: two consecutive frames share one temporal patch), the group's
    tokens sit on its first frame and the others carry 0; ``group`` numbers those groups.
    """

    time_s: float
    width: int
    height: int
    tokens: int
    role: FrameRole = "uniform"
    anchor: int | None = None
    """Position in ``Plan.anchors`` of the anchor this frame serves (None for context frames)."""
    tiles: int | None = None
    """InternVL tiles (thumbnail included); None for models that do not tile."""
    group: int = 0

    _REQUIRED: ClassVar[tuple[str, ...]] = ("time_s", "width", "height", "tokens")
    _WHAT: ClassVar[str] = "planned frame"

    def __post_init__(self) -> None:
        if self.role not in FRAME_ROLES:
            raise SchemaError(f"frame role {self.role!r} is not one of {', '.join(FRAME_ROLES)}")
        if self.width <= 0 or self.height <= 0 or self.tokens < 0 or not self.time_s >= 0:
            raise SchemaError(f"planned frame at {self.time_s} s has size {self.width}x{self.height} and "
                              f"{self.tokens} tokens")


@dataclass(frozen=True)
class PlanVideo(_Flat):
    """The file a Plan was made for (checked by extraction through the fingerprint)."""

    path: str
    fingerprint: str
    duration_s: float
    width: int
    height: int

    _REQUIRED: ClassVar[tuple[str, ...]] = ("path", "fingerprint", "duration_s", "width", "height")
    _WHAT: ClassVar[str] = "plan video"


@dataclass(frozen=True, eq=False)
class Plan(_Document):
    """Which frames to decode, at which sizes, for a target model and a token budget.

    ``target_tokens`` is what uniform sampling spends for this budget and frame count (the
    equal-token reference); ``total_tokens`` is what this plan spends (== target where the cost
    model allows it, else the closest legal total below it; ``shortfall`` says by how much).
    A Plan is the only input extraction needs: the same plan gives the same frames, byte for byte.
    """

    video: PlanVideo
    model: str
    strategy: str
    budget: int
    target_tokens: int
    frames: tuple[PlannedFrame, ...]
    anchors: tuple[Anchor, ...] = ()
    seed: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    """Everything else that shaped the plan (k, ratio, aspect, frames, probe ...)."""
    fit: str = "stretch"
    """How extraction maps the picture onto each planned size: ``pad``, ``crop`` or ``stretch``."""
    notes: tuple[str, ...] = ()

    KIND: ClassVar[str] = "earmark.plan"

    @property
    def total_tokens(self) -> int:
        return sum(f.tokens for f in self.frames)

    @property
    def shortfall(self) -> int:
        """Tokens below the equal-token target (0 when the plan hits it exactly)."""
        return self.target_tokens - self.total_tokens

    def __len__(self) -> int:
        return len(self.frames)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._header(),
            "video": self.video.to_dict(),
            "model": self.model,
            "strategy": self.strategy,
            "budget": self.budget,
            "target_tokens": self.target_tokens,
            "total_tokens": self.total_tokens,
            "seed": self.seed,
            "fit": self.fit,
            "config": dict(self.config),
            "anchors": [a.to_dict() for a in self.anchors],
            "frames": [f.to_dict() for f in self.frames],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        cls._check_header(d)
        _require(d, ("video", "model", "strategy", "budget", "target_tokens", "frames"), "plan")
        try:
            plan = cls(video=PlanVideo.from_dict(d["video"]), model=d["model"], strategy=d["strategy"],
                       budget=int(d["budget"]), target_tokens=int(d["target_tokens"]),
                       frames=tuple(PlannedFrame.from_dict(f) for f in d["frames"]),
                       anchors=tuple(Anchor.from_dict(a) for a in d.get("anchors", ())), seed=d.get("seed"),
                       config=dict(d.get("config", {})), fit=d.get("fit", "stretch"), notes=tuple(d.get("notes", ())))
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise SchemaError(f"malformed plan document: {e}") from e
        if "total_tokens" in d and d["total_tokens"] != plan.total_tokens:
            raise SchemaError(f"plan says total_tokens {d['total_tokens']} but its frames add up to "
                              f"{plan.total_tokens}")
        times = [f.time_s for f in plan.frames]
        if times != sorted(times):
            raise SchemaError("plan frames are not in time order")
        return plan


@dataclass(frozen=True, eq=False)
class Frame:
    """A decoded frame: what was planned, the picture at the planned size, and the frame's real time.

    ``pts_s`` is the presentation time of the source frame whose interval ``[pts, next pts)``
    contains ``planned.time_s`` (same t = 0 as the index: the first picture).
    """

    index: int
    """Position in the plan."""
    planned: PlannedFrame
    pts_s: float
    image: np.ndarray
    """RGB, uint8, shape (height, width, 3) as planned."""

    @property
    def time_s(self) -> float:
        return self.pts_s
