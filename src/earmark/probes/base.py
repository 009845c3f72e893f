"""The probe interface, its registry, and the shared machinery (framing, window aggregation, normalisation).

A probe turns 16 kHz mono audio into one value per 10 ms frame, streamed chunk by chunk, then
reduces frames to one raw value per timeline window. ``normalise`` makes scores comparable
across videos (robust z-scores) and derives a per-window confidence.

Add a probe::

    @register_probe
    class Loudness(Probe):
        name = "loudness"
        Config = LoudnessConfig          # a frozen dataclass deriving from ProbeConfig
        raw_unit = "LU"
        frame_length = 400
        def frame_values(self, frames): ...
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from ..errors import ConfigError, unknown_name

SAMPLE_RATE = 16_000
FRAME_HOP = 160
"""Samples between frame starts: 10 ms at 16 kHz, for every probe (so aggregation is shared)."""
FRAME_HOP_S = FRAME_HOP / SAMPLE_RATE
AUDIO_END_MARGIN = SAMPLE_RATE // 10
"""Samples before the audio's end that spectral probes treat as the end transition, not as content."""


@dataclass(frozen=True)
class ProbeConfig:
    """Settings every probe shares; subclasses add their own fields (all with defaults)."""

    z_ref: float = 3.0
    """Robust z-score at which a window's confidence is 0.5."""
    min_scale: float = 1.0
    """Floor of the normalisation scale, in raw units: flat audio must not turn noise into events."""

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {"z_ref": (1e-3, 1e3), "min_scale": (1e-9, 1e6)}
    """Inclusive ranges of numeric settings; subclasses add theirs (merged along the class hierarchy). Every
    value a user can give that multiplies memory or time has one (``n_mels``, ``fps``, ``size`` ...)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def check(self) -> None:
        """Cross-field checks of a subclass (one :class:`ConfigError` line); ranges live in ``LIMITS``."""


def checked_config(cfg: ProbeConfig, probe: str) -> ProbeConfig:
    """``cfg`` with every field of its declared type (ints as ints, finite floats, strings, tuples of strings)
    and inside its ``LIMITS``; ints given for float fields become floats and lists become tuples. One
    :class:`ConfigError` line naming the probe and the setting otherwise (hand-typed ``--probe-option`` values)."""
    import math
    import typing

    hints = typing.get_type_hints(type(cfg))
    fixed: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v, t = getattr(cfg, f.name), hints[f.name]
        args = typing.get_args(t)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), t) if optional else t
        if v is None and optional:
            continue
        origin = typing.get_origin(base)
        ok = True
        if base is bool:
            ok = isinstance(v, bool)
        elif base is int:
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif base is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if ok and isinstance(v, int):
                fixed[f.name] = float(v)
        elif base is str:
            ok = isinstance(v, str)
        elif origin is tuple:
            ok = isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)
            if ok and isinstance(v, list):
                fixed[f.name] = tuple(v)
        if not ok:
            kind = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}.get(
                base, "a list of strings")
            raise ConfigError(f"probe {probe!r}: {f.name} must be {kind}{' or null' if optional else ''}, "
                              f"got {v!r}")
    cfg = dataclasses.replace(cfg, **fixed) if fixed else cfg
    limits: dict[str, tuple[float, float]] = {}
    for klass in reversed(type(cfg).__mro__):
        limits.update(klass.__dict__.get("LIMITS", {}))
    for name, (lo, hi) in limits.items():
        v = getattr(cfg, name, None)
        if v is not None and not lo <= v <= hi:
            raise ConfigError(f"probe {probe!r}: {name} must be between {lo:g} and {hi:g}, got {v!r}")
    try:
        cfg.check()
    except ConfigError as e:
        raise ConfigError(f"probe {probe!r}: {e}") from None
    return cfg


@dataclass(frozen=True)
class WindowGrid:
    """``n`` windows: window i covers ``[i * hop_s, i * hop_s + window_s)`` seconds."""

    n: int
    hop_s: float
    window_s: float

    @property
    def end_s(self) -> float:
        return (self.n - 1) * self.hop_s + self.window_s

    def starts(self) -> np.ndarray:
        return np.arange(self.n, dtype=np.float64) * self.hop_s


def window_grid(duration_s: float, hop_s: float, window_s: float) -> WindowGrid:
    """The window grid over ``duration_s``: a trailing window is kept when at least half of its hop is video.

    >>> window_grid(10.0, 1.0, 1.0).n, window_grid(9.98, 1.0, 1.0).n, window_grid(10.6, 1.0, 1.0).n
    (10, 10, 11)
    """
    check_grid_params(hop_s, window_s)
    if duration_s <= window_s:
        return WindowGrid(1, hop_s, window_s)
    n = int(np.floor((duration_s - window_s) / hop_s + 0.5)) + 1
    return WindowGrid(max(1, n), hop_s, window_s)


def check_grid_params(hop_s: float, window_s: float) -> None:
    if not hop_s > 0:
        raise ConfigError(f"hop must be > 0 seconds, got {hop_s}")
    if not window_s > 0:
        raise ConfigError(f"window must be > 0 seconds, got {window_s}")
    if window_s < 2 * FRAME_HOP_S or hop_s < FRAME_HOP_S:
        raise ConfigError(f"hop ({hop_s} s) must be >= {FRAME_HOP_S} s and window ({window_s} s) >= "
                          f"{2 * FRAME_HOP_S} s: probes work on {FRAME_HOP_S * 1000:.0f} ms frames")


class FrameStream:
    """Cut a stream of sample chunks into frames ``[i*hop, i*hop + length)`` without copying the whole stream."""

    def __init__(self, length: int, hop: int = FRAME_HOP) -> None:
        self.length = length
        self.hop = hop
        self._rest = np.zeros(0, dtype=np.float32)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Frames that are complete after adding ``chunk``: an array (m, length) (a strided view)."""
        data = np.concatenate([self._rest, chunk]) if len(self._rest) else np.asarray(chunk, np.float32)
        m = 0 if len(data) < self.length else (len(data) - self.length) // self.hop + 1
        self._rest = data[m * self.hop:]
        if m == 0:
            return np.zeros((0, self.length), dtype=np.float32)
        return np.lib.stride_tricks.sliding_window_view(data, self.length)[:: self.hop][:m]


class Probe(ABC):
    """One way of scoring audio windows for eventness. Subclasses are registered by name."""

    name: ClassVar[str]
    Config: ClassVar[type[ProbeConfig]] = ProbeConfig
    raw_unit: ClassVar[str] = ""
    frame_length: ClassVar[int] = FRAME_HOP
    """Samples per analysis frame (frames start every FRAME_HOP samples)."""
    reduce: ClassVar[Literal["mean", "max"]] = "mean"
    """How frame values become a window value."""
    summary: ClassVar[str] = ""
    kind: ClassVar[Literal["audio", "visual", "hybrid"]] = "audio"
    """What the probe reads: the audio track (streamed frames), the picture (thumbnails), or both."""
    needs: ClassVar[str] = ""
    """What the probe needs beyond earmark's core (an optional extra, a weights file), for ``earmark probes``."""
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()
    """Optional packages the probe imports, each with the extra that installs it: ``(("torch", "eval"),)``."""
    needs_weights: ClassVar[bool] = False
    """True when no weights ship with earmark or its extras: the user gives them (``--probe-weights``)."""
    hold_after_audio_end: ClassVar[bool] = False
    """Repeat the last clean frame value past the end of the audio instead of analysing the zero padding
    (cutting a sound to silence looks like an onset to spectral probes; to an energy probe it is silence)."""

    def __init__(self, config: ProbeConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else self.Config()
        if not isinstance(base, self.Config):
            raise ConfigError(f"probe {self.name!r} takes a {self.Config.__name__}, got {type(base).__name__}")
        try:
            self.config = dataclasses.replace(base, **overrides)
        except TypeError as e:
            valid = ", ".join(f.name for f in dataclasses.fields(self.Config))
            raise ConfigError(f"probe {self.name!r}: {e}; its settings are: {valid}") from None
        self.config = checked_config(self.config, self.name)
        self.reset()

    def reset(self) -> None:
        """Forget streaming state before a new file."""

    @classmethod
    def unavailable(cls) -> str | None:
        """Why the probe cannot run here (the first of :attr:`requires` that is not installed, naming its extra),
        or None."""
        from .._extras import missing

        return next((why for pkg, extra in cls.requires if (why := missing(pkg, extra))), None)

    def index_video(self, vi: Any, hop_s: float, window_s: float, **kwargs: Any) -> Any:
        """Index a whole video (visual and hybrid probes; audio probes are driven by ``earmark.index``)."""
        raise NotImplementedError(f"probe {self.name!r} reads the audio track through earmark.index")

    @abstractmethod
    def frame_values(self, frames: np.ndarray) -> np.ndarray:
        """Frames (m, frame_length) in stream order -> one float per frame, shape (m,), or one vector per frame,
        shape (m, d), which ``window_values`` then reduces to one value per window (may keep state across calls).
        """

    def frame_values_stream(self, chunks: Iterable[np.ndarray], n_frames: int) -> np.ndarray:
        """All frame values of a chunk stream, exactly ``n_frames`` long (zero-padded audio past the end)."""
        self.reset()
        framer = FrameStream(self.frame_length)
        out: list[np.ndarray] = []
        have = 0
        for chunk in chunks:
            frames = framer.push(chunk)
            if len(frames):
                vals = self.frame_values(frames[: n_frames - have])
                out.append(vals)
                have += len(vals)
            if have >= n_frames:
                break
        if have < n_frames:  # pad with silence so every window has frames
            tail = framer.push(np.zeros((n_frames - have) * FRAME_HOP + self.frame_length, np.float32))
            out.append(self.frame_values(tail[: n_frames - have]))
        values = np.concatenate(out)[:n_frames]
        # Scalar frame values in float64 (their window means must be exact); vector values (a model probe's
        # per-frame features or samples) in float32, half the memory.
        return values.astype(np.float64 if values.ndim == 1 else np.float32, copy=False)

    def mask_after_audio_end(self, values: np.ndarray, audio_end_samples: int) -> np.ndarray:
        """Frame values with frames that run past the audio's end replaced (see ``hold_after_audio_end``)."""
        if not self.hold_after_audio_end:
            return values
        # Codecs smear an abrupt stop backwards (AAC pre-echo, ~1024 samples): keep clear of the end.
        n_clean = (audio_end_samples - self.frame_length - AUDIO_END_MARGIN) // FRAME_HOP + 1
        if 0 < n_clean < len(values):
            values = values.copy()
            values[n_clean:] = values[n_clean - 1]
        return values

    def window_values(self, frame_values: np.ndarray, grid: WindowGrid) -> np.ndarray:
        """Reduce frame values to one raw value per window (a frame belongs to the window of its newest sample)."""
        return reduce_frames(frame_values, grid, self.frame_length, self.reduce)


def frame_count(grid: WindowGrid) -> int:
    """Frames needed so that every window of the grid is covered."""
    return int(np.ceil(grid.end_s / FRAME_HOP_S)) + 1


def _frame_ranges(grid: WindowGrid, frame_length: int) -> tuple[np.ndarray, np.ndarray]:
    # A frame belongs to the window holding its newest sample: a 32 ms frame centred just before an
    # event already "hears" the attack and would otherwise credit the previous window with it.
    newest0 = (frame_length - 1) / SAMPLE_RATE  # offset of frame 0's newest sample
    starts = grid.starts()
    lo = np.ceil((starts - newest0) / FRAME_HOP_S - 1e-9).astype(np.int64)
    hi = np.ceil((starts + grid.window_s - newest0) / FRAME_HOP_S - 1e-9).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.maximum(hi, lo + 1)
    return lo, hi


def reduce_frames(values: np.ndarray, grid: WindowGrid, frame_length: int,
                  how: Literal["mean", "max"]) -> np.ndarray:
    lo, hi = _frame_ranges(grid, frame_length)
    hi = np.minimum(hi, len(values))
    lo = np.minimum(lo, hi - 1)
    if how == "mean":
        csum = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, 0, dtype=np.float64)])
        span = (hi - lo).reshape(-1, *([1] * (values.ndim - 1)))
        return (csum[hi] - csum[lo]) / span
    return np.array([values[a:b].max(0) for a, b in zip(lo, hi)], dtype=np.float64)


@dataclass(frozen=True)
class Normalised:
    scores: np.ndarray
    confidence: np.ndarray
    center: float
    scale: float


def normalise(raw: np.ndarray, coverage: np.ndarray, config: ProbeConfig) -> Normalised:
    """Per-video robust z-scores ``(raw - median) / max(1.4826 * MAD, min_scale)`` and confidence.

    Median and MAD come from the windows that audio covers for at least half their length.
    Confidence = coverage * (1 - 0.5 ** (max(z, 0) / z_ref)): 0 at the median, 0.5 at ``z_ref``.
    """
    raw = np.asarray(raw, dtype=np.float64)
    ref = raw[coverage >= 0.5]
    if len(ref) == 0:
        center, scale = float(np.median(raw)), float(config.min_scale)
    else:
        center = float(np.median(ref))
        mad = float(np.median(np.abs(ref - center)))
        scale = max(1.4826 * mad, float(config.min_scale))
    z = (raw - center) / scale
    conf = coverage * (1.0 - np.power(0.5, np.maximum(z, 0.0) / config.z_ref))
    return Normalised(z.astype(np.float32), conf.astype(np.float32), center, scale)


# ---------------------------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Probe]] = {}


def register_probe(cls: type[Probe]) -> type[Probe]:
    """Class decorator: make a probe selectable by its ``name`` (``--probe NAME``)."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a class attribute 'name'")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"probe name {cls.name!r} is already registered by {_REGISTRY[cls.name].__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def probe_names() -> list[str]:
    return sorted(_REGISTRY)


def get_probe(name: str, config: ProbeConfig | None = None, **overrides: Any) -> Probe:
    """An instance of the probe registered as ``name``; unknown names list the valid ones."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise unknown_name("probe", name, probe_names()) from None
    return cls(config, **overrides)


def probe_classes() -> dict[str, type[Probe]]:
    return dict(_REGISTRY)
