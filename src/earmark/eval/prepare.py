"""Per-clip work of the eval protocol (runs in worker processes): index, plan, extract, encode — cached.

For one clip: index its audio with every probe, make every plan the protocol needs with :func:`earmark.plan`,
decode the union of the planned (time, size) pictures once (:func:`earmark.extract` on a merged plan), encode
each with the frozen encoder and keep per-second audio features (log-mel mean/std, for ``audio-concat``).
Features are cached per clip in ``CACHE/features/<encoder key>/<video id>.npz`` keyed by (time, size) and
checked against the file's fingerprint, so they are computed once and reused across seeds and strategies.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..anchors import AnchorConfig, with_anchors
from ..budget.planner import plan as make_plan
from ..index import index as index_audio
from ..media.audio import stream_audio
from ..media.container import info as probe_info
from ..media.frames import extract
from ..probes.dsp import log_mel
from ..types import IndexResult, Plan, PlannedFrame
from .encoders import Encoder, get_encoder

AUDIO_MELS = 32
AUDIO_DIM = 2 * AUDIO_MELS


@dataclass(frozen=True)
class PlanRequest:
    """One plan the protocol needs for a clip: ``key`` names it in the results."""

    key: str
    strategy: str
    budget: int
    probe: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class ClipJob:
    video_id: str
    path: str
    truth: tuple[tuple[float, float], ...]
    segments: int
    requests: tuple[PlanRequest, ...]
    probes: tuple[str, ...]
    model: str
    k: int
    ratio: float
    anchor: AnchorConfig
    encoder: str
    cache: str
    probe_weights: tuple[tuple[str, str], ...] = ()
    """(probe, weights path) for model probes (panns, ast, linear, ...)."""


@dataclass
class ClipResult:
    video_id: str
    plans: dict[str, Plan]
    indexes: dict[str, IndexResult]
    features: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]]
    """(time in µs, width, height) -> (cls (D,), tokens (N, D)) float16."""
    audio: np.ndarray
    """(segments, AUDIO_DIM) float32."""
    seconds: dict[str, float]
    error: str | None = None


def plan_seed(video_id: str, seed: int) -> int:
    """A per-clip seed for random plans, so random anchors differ between clips and between run seeds."""
    return zlib.crc32(f"{video_id}:{seed}".encode())


def time_key(t: float) -> int:
    return int(round(t * 1_000_000))


def audio_features(result: IndexResult, segments: int) -> np.ndarray:
    """Per-second log-mel (32 bands) mean and standard deviation: (segments, 64) float32."""
    vi = result.info
    sr = 16_000
    x = np.concatenate(list(stream_audio(vi, end_s=float(segments)))) if vi.has_audio else np.zeros(0, np.float32)
    x = np.pad(x, (0, max(0, segments * sr - len(x))))[: segments * sr]
    n_fft, hop = 512, 160
    out = np.zeros((segments, AUDIO_DIM), np.float32)
    for s in range(segments):
        seg = x[s * sr:(s + 1) * sr]
        frames = np.lib.stride_tricks.sliding_window_view(np.pad(seg, (0, n_fft)), n_fft)[::hop][: sr // hop]
        mel = log_mel(frames, n_fft, AUDIO_MELS)  # earmark's one front end (dB, 30-8000 Hz)
        out[s] = np.concatenate([mel.mean(0), mel.std(0)])
    return out


_ENCODERS: dict[str, Encoder] = {}


def _encoder(name: str) -> Encoder:
    if name not in _ENCODERS:
        _ENCODERS[name] = get_encoder(name)
    return _ENCODERS[name]


def _load_cache(path: Path, fingerprint: str) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    try:
        with np.load(path) as z:
            if str(z["fingerprint"]) != fingerprint:
                return {}
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError):
        return {}


def _feature_name(key: tuple[int, int, int]) -> str:
    return f"t{key[0]}_{key[1]}x{key[2]}"


def run_clip(job: ClipJob) -> ClipResult:
    """Everything the protocol needs from one clip (see the module docstring)."""
    from .._io import one_blas_thread

    with one_blas_thread():
        return _run_clip(job)


def _run_clip(job: ClipJob) -> ClipResult:
    import torch

    torch.set_num_threads(1)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    vi = probe_info(job.path)
    indexes = {}
    weights = dict(job.probe_weights)
    for probe in job.probes:
        kw = {"weights": weights[probe]} if probe in weights else {}
        tl = index_audio(job.path, probe=probe, video_info=vi, jobs=1, **kw)
        indexes[probe] = with_anchors(vi, tl, replace(job.anchor, k=job.k))
    seconds["index"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    source = indexes[job.probes[0]]
    plans = {}
    for r in job.requests:
        src = indexes[r.probe] if r.probe else source
        seed = plan_seed(job.video_id, r.seed)
        plans[r.key] = make_plan(src, job.model, r.budget, r.strategy, k=job.k, ratio=job.ratio,
                                 frames=job.segments, seed=seed, truth=list(job.truth), upscale=True)
    seconds["plan"] = time.perf_counter() - t0

    encoder = _encoder(job.encoder)
    cache_path = Path(job.cache) / "features" / encoder.key / f"{job.video_id}.npz"
    cached = _load_cache(cache_path, vi.fingerprint)
    wanted: dict[tuple[int, int, int], PlannedFrame] = {}
    for p in plans.values():
        for f in p.frames:
            wanted.setdefault((time_key(f.time_s), f.width, f.height), f)
    missing = {k: f for k, f in wanted.items() if _feature_name(k) + "_cls" not in cached}
    t0 = time.perf_counter()
    if "audio" not in cached:
        cached["audio"] = audio_features(source, job.segments)
    seconds["audio_features"] = time.perf_counter() - t0
    seconds["extract"] = seconds["encode"] = 0.0
    if missing:
        t0 = time.perf_counter()
        frames = sorted(missing.values(), key=lambda f: (f.time_s, f.width, f.height))
        merged = replace(next(iter(plans.values())), frames=tuple(frames))
        pictures = list(extract(job.path, merged, workers=1, video_info=vi))
        seconds["extract"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        by_size: dict[tuple[int, int], list] = {}
        for fr in pictures:
            by_size.setdefault((fr.planned.width, fr.planned.height), []).append(fr)
        for group in by_size.values():
            enc = encoder.encode(np.stack([fr.image for fr in group]))
            for j, fr in enumerate(group):
                name = _feature_name((time_key(fr.planned.time_s), fr.planned.width, fr.planned.height))
                cached[name + "_cls"] = enc.cls[j].astype(np.float16)
                cached[name + "_tok"] = enc.tokens[j].astype(np.float16)
        seconds["encode"] = time.perf_counter() - t0
    if missing or "fingerprint" not in cached:
        cached["fingerprint"] = np.array(vi.fingerprint)
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".tmp.npz")
        np.savez(tmp, **cached)
        tmp.replace(cache_path)
    feats = {k: (cached[_feature_name(k) + "_cls"], cached[_feature_name(k) + "_tok"]) for k in wanted}
    return ClipResult(job.video_id, plans, indexes, feats, cached["audio"].astype(np.float32), seconds)


def run_clip_safe(job: ClipJob) -> ClipResult:
    """:func:`run_clip`, with a bad clip reported instead of stopping the run."""
    from ..errors import EarmarkError

    try:
        return run_clip(job)
    except EarmarkError as e:
        return ClipResult(job.video_id, {}, {}, {}, np.zeros((job.segments, AUDIO_DIM), np.float32), {}, str(e))
