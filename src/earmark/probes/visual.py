"""Visual probes on cheap thumbnails (``motion``, ``cut``, ``novelty``) and the audio-first ``hybrid`` probe.

Each visual probe decodes small thumbnails (default 64 px wide, 2 per second) through the plan-then-decode
extractor (only those pictures are converted and resized; nothing at full size is kept) and turns each
thumbnail into one change value against what came before:

- ``motion``: mean absolute difference of consecutive grey thumbnails (0–255): things moving, the camera too.
- ``cut``: earth mover's distance of consecutive per-channel colour histograms (0–1): shot changes, flashes.
- ``novelty``: distance of the thumbnail (16×16 grey + colour histogram) to a running appearance model, an
  exponential mean with rate ``alpha``: something that was not there before, however slowly it came.

A window's raw value is the largest change among the thumbnails inside it. ``hybrid`` trusts the audio probe
where the audio is present and says something, and the visual probe elsewhere (see :class:`HybridProbe`).
Videos without audio are indexed by the visual ``fallback`` probe (``earmark.index(..., fallback="motion")``).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, EarmarkWarning
from ..types import Timeline, VideoInfo
from .base import Probe, ProbeConfig, get_probe, normalise, register_probe, window_grid


@dataclass(frozen=True)
class VisualConfig(ProbeConfig):
    fps: float = 2.0
    """Thumbnails per second of video."""
    size: int = 64
    """Thumbnail width in pixels (height keeps the aspect ratio)."""
    min_scale: float = 1.0

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {"fps": (0.01, 30.0), "size": (8, 1024)}


def thumbnail_times(duration_s: float, fps: float) -> np.ndarray:
    """Sample times ``(k + 0.5) / fps`` inside ``[0, duration)``.

    >>> thumbnail_times(2.0, 2.0).tolist()
    [0.25, 0.75, 1.25, 1.75]
    """
    if not fps > 0:
        raise ConfigError(f"thumbnail fps must be > 0, got {fps}")
    n = max(1, int(np.floor(duration_s * fps - 0.5)) + 1)
    return (np.arange(n) + 0.5) / fps


def thumbnails(vi: VideoInfo, fps: float, size: int):
    """(time, RGB uint8 (h, w, 3)) pairs at :func:`thumbnail_times`, decoded without keeping full frames."""
    from ..errors import NoVideoStreamError
    from ..media.frames import decode_at, display_size

    if vi.video is None:
        raise NoVideoStreamError(vi.path, "no video stream, so visual probes cannot index it")
    if size < 8:
        raise ConfigError(f"thumbnail size must be >= 8 px, got {size}")
    w, h = display_size(vi.video.width, vi.video.height, vi.video.rotation)
    th = max(2, int(round(size * h / w / 2)) * 2)
    times = thumbnail_times(vi.duration_s, fps)
    times = times[times < vi.duration_s]
    for f in decode_at(vi.path, [float(t) for t in times], (size, th), video_info=vi):
        yield f.planned.time_s, f.image


class VisualProbe(Probe):
    """Base of the thumbnail probes: ``thumb_value`` gives one change value per thumbnail."""

    kind = "visual"
    Config = VisualConfig
    reduce = "max"

    def frame_values(self, frames: np.ndarray) -> np.ndarray:  # pragma: no cover - not an audio probe
        raise NotImplementedError

    def thumb_value(self, img: np.ndarray) -> float:
        raise NotImplementedError

    def thumb_values(self, vi: VideoInfo) -> tuple[np.ndarray, np.ndarray]:
        """Sample times and change values of every thumbnail; the first thumbnail repeats the second's value."""
        times, (values,) = change_values(vi, [self])
        return times, values

    def window_raw(self, vi: VideoInfo, hop_s: float, window_s: float) -> np.ndarray:
        """One raw value per window: the largest thumbnail change inside it."""
        grid = window_grid(vi.duration_s, hop_s, window_s)
        t, v = self.thumb_values(vi)
        return window_max(t, v, grid.starts(), window_s)

    def index_video(self, vi: VideoInfo, hop_s: float, window_s: float, **_: Any) -> Timeline:
        raw = self.window_raw(vi, hop_s, window_s)
        cov = np.ones(len(raw))
        norm = normalise(raw, cov, self.config)
        return Timeline(video=vi.path, fingerprint=vi.fingerprint, duration_s=vi.duration_s, hop_s=float(hop_s),
                        window_s=float(window_s), probe=self.name, probe_config=self.config.to_dict(),
                        raw_unit=self.raw_unit, raw=raw, scores=norm.scores, confidence=norm.confidence,
                        coverage=cov, norm_center=float(np.float32(norm.center)),
                        norm_scale=float(np.float32(norm.scale)), audio_stream=None, sample_rate=0)


def change_values(vi: VideoInfo, probes: list[VisualProbe]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sample times and each probe's change value per thumbnail, from one decode of the thumbnails (the probes share
    the first one's ``fps`` and ``size``); the first thumbnail repeats the second's value."""
    first = probes[0].config
    for p in probes:
        p.reset()
    times: list[float] = []
    values: list[list[float]] = [[] for _ in probes]
    for t, img in thumbnails(vi, first.fps, first.size):
        times.append(t)
        for p, v in zip(probes, values):
            v.append(p.thumb_value(img))
    out = [np.asarray(v, np.float64) for v in values]
    for v in out:
        if len(v) > 1:
            v[0] = v[1]  # nothing came before the first picture: no change is known, not "no change"
    return np.asarray(times, np.float64), out


def window_slices(times: np.ndarray, starts: np.ndarray, window_s: float) -> list[slice]:
    """Per window ``[s, s + window)``, the slice of (sorted) ``times`` inside it; a window with none gets the
    sample nearest its centre."""
    lo = np.searchsorted(times, starts, "left")
    hi = np.searchsorted(times, starts + window_s, "left")
    out = []
    for s, a, b in zip(starts, lo, hi):
        if b <= a:
            a = int(np.argmin(np.abs(times - (s + window_s / 2))))
            b = a + 1
        out.append(slice(int(a), int(b)))
    return out


def window_max(times: np.ndarray, values: np.ndarray, starts: np.ndarray, window_s: float) -> np.ndarray:
    """Largest value whose time lies in each window ``[s, s + window)``; a window with none takes the nearest."""
    return np.array([values[sl].max() for sl in window_slices(times, starts, window_s)], dtype=np.float64)


def _grey(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def colour_histogram(img: np.ndarray, bins: int = 4) -> np.ndarray:
    """Joint RGB histogram with ``bins`` levels per channel, summing to 1."""
    q = (img.astype(np.int32) * bins) >> 8
    idx = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    h = np.bincount(idx.ravel(), minlength=bins ** 3).astype(np.float64)
    return h / h.sum()


def channel_cdfs(img: np.ndarray, bins: int = 32) -> np.ndarray:
    """Cumulative per-channel histograms (3, bins), each ending at 1."""
    q = (img.reshape(-1, 3).astype(np.int32) * bins) >> 8
    h = np.stack([np.bincount(q[:, c], minlength=bins) for c in range(3)]).astype(np.float64)
    return np.cumsum(h, 1) / len(q)


@register_probe
class MotionProbe(VisualProbe):
    name = "motion"
    raw_unit = "mean |Δgrey|"
    summary = "frame-difference energy of 64 px thumbnails; movement (the camera's too)"

    def reset(self) -> None:
        self._prev: np.ndarray | None = None

    def thumb_value(self, img: np.ndarray) -> float:
        g = _grey(img)
        v = 0.0 if self._prev is None else float(np.abs(g - self._prev).mean())
        self._prev = g
        return v


@dataclass(frozen=True)
class CutConfig(VisualConfig):
    min_scale: float = 0.01


@register_probe
class CutProbe(VisualProbe):
    """Colour change between consecutive thumbnails: the earth mover's distance of each RGB channel's histogram
    (mean over channels, in units of the full 0–255 range). A hard cut moves much colour far; a slow fade or a
    drifting tint moves it a little, and a hard-binned histogram would not tell those apart."""

    name = "cut"
    Config = CutConfig
    raw_unit = "colour EMD"
    summary = "colour-histogram change (EMD) between thumbnails; shot cuts and flashes"

    def reset(self) -> None:
        self._prev: np.ndarray | None = None

    def thumb_value(self, img: np.ndarray) -> float:
        c = channel_cdfs(img)
        v = 0.0 if self._prev is None else float(np.abs(c - self._prev).mean())
        self._prev = c
        return v


@dataclass(frozen=True)
class NoveltyConfig(VisualConfig):
    alpha: float = 0.1
    """Rate of the running appearance model (an exponential mean): larger forgets faster."""
    min_scale: float = 0.02

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {"alpha": (1e-6, 1.0)}


@register_probe
class NoveltyProbe(VisualProbe):
    name = "novelty"
    Config = NoveltyConfig
    raw_unit = "distance"
    summary = "distance of each thumbnail to a running appearance model; new things in view"

    def reset(self) -> None:
        self._model: np.ndarray | None = None

    def thumb_value(self, img: np.ndarray) -> float:
        g = _grey(img)
        h, w = g.shape
        small = g[: h - h % 4, : w - w % 4].reshape(h // 4, 4, w // 4, 4).mean((1, 3))
        f = np.concatenate([(small / 255.0).ravel() / np.sqrt(small.size), colour_histogram(img)])
        if self._model is None:
            self._model = f
            return 0.0
        v = float(np.linalg.norm(f - self._model))
        self._model = (1 - self.config.alpha) * self._model + self.config.alpha * f
        return v


@dataclass(frozen=True)
class HybridConfig(ProbeConfig):
    audio: str = "energy"
    visual: str = "motion"
    audio_weight: float = 1.0
    """How much the audio is trusted where it is present and informative (0: visual only)."""
    informative_conf: float = 0.5
    """A track whose most confident window reaches this confidence is fully informative; a flat track
    (nothing stands out) hands over to the picture."""

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {"audio_weight": (0.0, 1.0), "informative_conf": (1e-6, 1.0)}


@register_probe
class HybridProbe(Probe):
    """Audio first, picture where the audio is missing or says nothing.

    Per window, ``trust = audio_weight · coverage · min(1, max_confidence / informative_conf)`` and
    ``score = trust · z_audio + (1 − trust) · z_visual`` (confidence mixed likewise). Without an audio stream the
    visual probe alone indexes the video, with a note.
    """

    name = "hybrid"
    kind = "hybrid"
    Config = HybridConfig
    raw_unit = "z (audio/visual mix)"
    summary = "audio probe where audio is present and informative, visual probe elsewhere"

    def frame_values(self, frames: np.ndarray) -> np.ndarray:  # pragma: no cover - not an audio probe
        raise NotImplementedError

    def parts(self) -> tuple[Probe, Probe]:
        """The audio and the visual probe this one mixes (``earmark.index`` runs each, then :meth:`combine`)."""
        c = self.config
        ap, vp = get_probe(c.audio), get_probe(c.visual)
        if ap.kind != "audio" or vp.kind != "visual":
            raise ConfigError(f"hybrid needs an audio probe and a visual probe, got {c.audio!r} ({ap.kind}) and "
                              f"{c.visual!r} ({vp.kind})")
        return ap, vp

    def combine(self, ta: Timeline | None, tv: Timeline) -> Timeline:
        """The mixed Timeline from the audio probe's (None: the video has no audio) and the visual probe's."""
        c = self.config
        if ta is None:
            note = f"no audio stream: indexed by the visual probe {c.visual} alone"
            return _relabel(tv, self, tv.scores, tv.confidence, tv.scores, notes=(note,))
        informative = min(1.0, float(ta.confidence.max(initial=0.0)) / c.informative_conf)
        trust = c.audio_weight * ta.coverage * informative
        score = trust * ta.scores + (1 - trust) * tv.scores
        conf = trust * ta.confidence + (1 - trust) * tv.confidence
        notes = ta.notes + ((f"the audio says little (informative {informative:.2f}): the picture leads",)
                            if informative < 1 else ())
        return _relabel(ta, self, score, conf, score, notes=notes, audio_stream=ta.audio_stream)


def _relabel(tl: Timeline, prb: Probe, scores: np.ndarray, conf: np.ndarray, raw: np.ndarray,
             notes: tuple[str, ...] = (), audio_stream: int | None = None) -> Timeline:
    return dataclasses.replace(tl, probe=prb.name, probe_config=prb.config.to_dict(), raw_unit=prb.raw_unit,
                               raw=raw, scores=scores, confidence=conf, norm_center=0.0, norm_scale=1.0,
                               audio_stream=audio_stream, notes=(*tl.notes, *notes))


def visual_fallback(vi: VideoInfo, fallback: str, audio_probe: str, hop_s: float, window_s: float,
                    progress: Any = None) -> Timeline:
    """Index a video without audio with a visual probe, saying so (a warning and a note in the Timeline)."""
    prb = get_probe(fallback)
    if prb.kind != "visual":
        raise ConfigError(f"the fallback for videos without audio must be a visual probe, got {fallback!r}")
    note = f"no audio stream, so the audio probe {audio_probe} cannot run: indexed by the visual probe {fallback}"
    warnings.warn(EarmarkWarning(f"{vi.path}: {note}"), stacklevel=3)
    tl = prb.index_video(vi, hop_s, window_s)
    return dataclasses.replace(tl, notes=(note,))

