"""``index(path)``: media -> probe -> Timeline, streaming, with the window grid on the picture's timeline."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._io import one_blas_thread
from .errors import ConfigError, EarmarkWarning
from .media.audio import select_audio_stream, stream_audio
from .media.container import info as probe_info
from .probes import Probe, get_probe, normalise, window_grid
from .probes.base import FRAME_HOP_S, SAMPLE_RATE, WindowGrid, frame_count, reduce_frames
from .runner import default_workers, run
from .types import Progress, Timeline, VideoInfo

# Audio that misses more than this much of the picture (start or end) is reported.
AUDIO_GAP_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class IndexConfig:
    """The index's defaults, in one place: :func:`index`'s keyword defaults and every command's options read
    them (``earmark index``, ``plan``, ``report``, ``batch``, ``highlights`` ...)."""

    probe: str = "energy"
    hop_s: float = 1.0
    window_s: float = 1.0
    fallback: str | None = "motion"
    """The visual probe that indexes a video without audio when an audio probe is asked for (None: an error)."""


def coverage(starts: np.ndarray, window_s: float, audio_start_s: float, audio_end_s: float,
             duration_s: float) -> np.ndarray:
    """Fraction of each window ``[s, s + window_s)`` that real audio covers (within the video)."""
    lo = np.maximum(starts, audio_start_s)
    hi = np.minimum(starts + window_s, min(audio_end_s, max(duration_s, starts[-1] + window_s)))
    return np.clip((hi - lo) / window_s, 0.0, 1.0)


SPEECH_P = 0.5
"""A 10 ms frame is speech for ``ignore_speech`` when the vad probe's probability reaches this."""
SPEECH_LATENCY_S = 0.1
"""How late Silero VAD reports speech onsets: measured on Debian's asterisk-core-sounds-en-wav prompts
(58 recordings, onset 30 dB below the peak), the lag is 0.04 s median, 0.07 s at the 95th percentile.
Speech frames are moved this much earlier so a window that holds a speech onset counts as speech."""
SPEECH_MIN_S = 0.1
"""A window counts as speech when (widened) speech frames cover at least this many seconds of it: a word
starting late in a window already makes it loud, so the window's mean probability would miss it. Shorter
blips (a click the VAD mistakes for speech) do not count."""

SEGMENT_S = 300.0
"""Long files are analysed in fixed 5-minute segments (in parallel when ``jobs`` > 1). The segment
grid depends only on the file, never on the number of workers, so results are identical for any jobs."""
SEGMENT_PREROLL_S = 1.0
"""Audio decoded before each segment and thrown away: codec and probe state settle (AAC overlap-add)."""


@dataclass(frozen=True)
class _SegmentResult:
    values: np.ndarray
    audio_start_s: float | None
    audio_end_s: float | None


def _segment_values(vi: VideoInfo, stream_index: int, prb: Probe, f0: int, f1: int, preroll: int,
                    end_s: float | None) -> _SegmentResult:
    """Frame values ``[f0, f1)`` of one segment, decoding from ``preroll`` frames earlier."""
    fa = max(0, f0 - preroll)
    with one_blas_thread():
        chunks = stream_audio(vi, stream_index, SAMPLE_RATE, start_s=fa * FRAME_HOP_S, end_s=end_s)
        values = prb.frame_values_stream(chunks, f1 - fa)[f0 - fa:]
    return _SegmentResult(values, chunks.audio_start_s, chunks.audio_end_s)


def _segments(n_frames: int, segment_s: float) -> list[tuple[int, int]]:
    per = max(1, int(round(segment_s / FRAME_HOP_S)))
    if n_frames <= per * 1.5:  # short files: one pass, no seeking
        return [(0, n_frames)]
    bounds = list(range(0, n_frames, per))
    if n_frames - bounds[-1] < per // 2:  # fold a short tail into the previous segment
        bounds.pop()
    return list(zip(bounds, [*bounds[1:], n_frames]))


def default_jobs() -> int:
    """Processes for the segments of a long file unless told: the runner's default (one per usable CPU)."""
    return default_workers()


def _segment_job(task: tuple) -> _SegmentResult:
    return _segment_values(*task)


def index(path: str | Path, probe: str = IndexConfig.probe, hop_s: float = IndexConfig.hop_s,
          window_s: float = IndexConfig.window_s, *, audio_stream: int | None = None,
          video_info: VideoInfo | None = None, jobs: int | None = None, progress: Progress | None = None,
          segment_s: float = SEGMENT_S, fallback: str | None = IndexConfig.fallback,
          ignore_speech: bool | str = False, **probe_config: Any) -> Timeline:
    """Score every window of a video's audio for eventness.

    >>> import earmark                                           # doctest: +SKIP
    >>> tl = earmark.index("clip.mp4", probe="energy", hop_s=1.0)  # doctest: +SKIP
    >>> tl.scores.shape, tl.raw_unit                              # doctest: +SKIP
    ((10,), 'dBFS')

    ``probe_config`` overrides fields of the probe's config dataclass (e.g. ``n_mels=40``).
    Visual and hybrid probes (``motion``, ``cut``, ``novelty``, ``hybrid``) index the picture. A video without an
    audio stream given to an audio probe is indexed by the visual ``fallback`` probe, with a warning and a note
    in the Timeline; ``fallback=None`` raises NoAudioStreamError instead. ``ignore_speech`` removes windows in
    which the ``vad`` probe hears speech (their scores drop to the video's lowest, confidence 0); a string
    names the VAD's ONNX weights instead of the ones silero-vad ships.
    Files longer than 7.5 minutes are decoded in 5-minute segments on ``jobs`` processes (default: one per usable
    CPU, :func:`earmark.runner.default_workers`); the result does not depend on ``jobs``. Raises MediaError /
    NoAudioStreamError / ConfigError / UnknownNameError with a message naming the file and the problem.
    """
    prb = get_probe(probe, **probe_config)
    window_grid(1.0, hop_s, window_s)  # validates hop/window before touching the file
    if jobs is not None and jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    vi = video_info if video_info is not None else probe_info(path)
    if prb.kind != "audio" or (not vi.has_audio and fallback):
        if prb.kind == "hybrid":  # the picture by its visual probe, the audio (if any) by its audio probe, mixed
            ap, vp = prb.parts()
            tv = vp.index_video(vi, hop_s, window_s)
            ta = index(vi.path, probe=ap.name, hop_s=hop_s, window_s=window_s, audio_stream=audio_stream,
                       video_info=vi, jobs=jobs, progress=progress) if vi.has_audio else None
            tl = prb.combine(ta, tv)
        elif prb.kind != "audio":  # visual probes (and transfer) index the picture themselves
            tl = prb.index_video(vi, hop_s, window_s, audio_stream=audio_stream, jobs=jobs, progress=progress)
        else:
            from .probes.visual import visual_fallback

            tl = visual_fallback(vi, fallback, prb.name, hop_s, window_s, progress=progress)
        if ignore_speech and vi.has_audio:
            tl = _without_speech(tl, vi, ignore_speech, select_audio_stream(vi, audio_stream), jobs, segment_s)
        return tl
    stream_index = select_audio_stream(vi, audio_stream)
    grid = window_grid(vi.duration_s, hop_s, window_s)
    values, a_start, a_end = frame_values(vi, stream_index, prb, grid, jobs=jobs, progress=progress,
                                          segment_s=segment_s)
    raw = prb.window_values(values, grid)
    cov = coverage(grid.starts(), window_s, a_start, a_end, vi.duration_s)
    notes = _gap_notes(vi, a_start, a_end)
    for note in notes:
        warnings.warn(EarmarkWarning(f"{vi.path}: {note}"), stacklevel=2)
    norm = normalise(raw, cov, prb.config)
    scores, conf = norm.scores, norm.confidence
    own = getattr(prb, "confidence_out", None)
    if own is not None:  # a model probe's own calibration (e.g. a tagger's top-1 margin) instead of the z-score's
        conf = (np.clip(own, 0.0, 1.0) * cov).astype(np.float32)
    tl = Timeline(
        video=vi.path,
        fingerprint=vi.fingerprint,
        duration_s=vi.duration_s,
        hop_s=float(hop_s),
        window_s=float(window_s),
        probe=prb.name,
        probe_config=prb.config.to_dict(),
        raw_unit=prb.raw_unit,
        raw=raw,
        scores=scores,
        confidence=conf,
        coverage=cov,
        norm_center=float(np.float32(norm.center)),
        norm_scale=float(np.float32(norm.scale)),
        audio_stream=stream_index,
        sample_rate=SAMPLE_RATE,
        labels=getattr(prb, "labels_out", None),
        notes=tuple(notes),
    )
    if ignore_speech and prb.name != "vad":
        tl = _without_speech(tl, vi, ignore_speech, stream_index, jobs, segment_s)
    return tl


def speech_windows(p_speech: np.ndarray, grid: WindowGrid, frame_length: int) -> np.ndarray:
    """Which windows of ``grid`` hold speech, from the vad probe's per-frame probabilities.

    Frames at p >= SPEECH_P are speech, moved SPEECH_LATENCY_S earlier (the VAD's onset lag); a window is
    speech when those frames cover at least SPEECH_MIN_S of it.
    """
    frames = np.asarray(p_speech) >= SPEECH_P
    lag = int(round(SPEECH_LATENCY_S / FRAME_HOP_S))
    early = np.concatenate([frames[lag:], np.repeat(frames[-1:], lag)])  # frame i takes frame i + lag's answer
    covered = reduce_frames(early.astype(np.float64), grid, frame_length, "mean") * grid.window_s
    return covered >= SPEECH_MIN_S - 1e-9


def _without_speech(tl: Timeline, vi: VideoInfo, ignore_speech: bool | str, stream_index: int, jobs: int | None,
                    segment_s: float) -> Timeline:
    """``tl`` with the windows where the ``vad`` probe hears speech removed from eventness (score to the video's
    lowest, confidence 0; raw values kept), and a note saying how many."""
    vad = get_probe("vad", weights=ignore_speech if isinstance(ignore_speech, str) else None)
    grid = WindowGrid(len(tl), tl.hop_s, tl.window_s)
    p_speech, _, _ = frame_values(vi, stream_index, vad, grid, jobs=jobs, segment_s=segment_s)
    speech = speech_windows(p_speech, grid, vad.frame_length)
    scores, conf = tl.scores.copy(), tl.confidence.copy()
    if speech.any():
        scores[speech] = scores.min()  # never an anchor; the rest keep their own normalisation
        conf[speech] = 0.0
    note = f"--ignore-speech: {int(speech.sum())} of {len(speech)} windows with speech removed"
    return dataclasses.replace(tl, scores=scores, confidence=conf, notes=(*tl.notes, note))


def frame_values(vi: VideoInfo, stream_index: int, prb: Probe, grid: WindowGrid, *, jobs: int | None = None,
                 progress: Progress | None = None, segment_s: float = SEGMENT_S) -> tuple[np.ndarray, float, float]:
    """A probe's frame values over ``grid`` (decoded in segments), and where the audio starts and ends (s)."""
    n_frames = frame_count(grid)
    # Decode just past the last window (plus one analysis frame), never the whole track at once.
    end_s = n_frames * FRAME_HOP_S + prb.frame_length / SAMPLE_RATE
    segments = _segments(n_frames, segment_s)
    preroll = int(round(SEGMENT_PREROLL_S / FRAME_HOP_S))
    tasks = [(vi, stream_index, prb, f0, f1, preroll, end_s if i == len(segments) - 1 else None)
             for i, (f0, f1) in enumerate(segments)]
    results = _run_segments(tasks, jobs or default_jobs(), progress, grid.end_s)
    values = np.concatenate([r.values for r in results])
    a_start = results[0].audio_start_s or 0.0
    # A segment learns where the audio ends only if the audio ends inside it (or it is the last one).
    a_end = max((r.audio_end_s for r in results if r.audio_end_s is not None), default=0.0)
    values = prb.mask_after_audio_end(values, int(round(a_end * SAMPLE_RATE)))
    return values, a_start, a_end


def _run_segments(tasks: list[tuple], jobs: int, progress: Progress | None, total_s: float) -> list[_SegmentResult]:
    """The segments on the runner (in this process when one job or one segment), in order."""
    done_s = 0.0
    results = []
    for d in run(_segment_job, tasks, workers=max(1, min(jobs, len(tasks)))):  # a worker's MediaError is raised
        results.append(d.value)
        task = tasks[d.index]
        done_s += (task[4] - task[3]) * FRAME_HOP_S
        if progress is not None:
            progress("index", min(done_s, total_s), total_s)
    return results


def _gap_notes(vi: VideoInfo, audio_start_s: float, audio_end_s: float) -> list[str]:
    notes = []
    if audio_start_s > AUDIO_GAP_TOLERANCE_S:
        notes.append(f"audio starts at {audio_start_s:.2f} s, after the picture; earlier windows have no audio "
                     "(confidence 0)")
    if audio_end_s < vi.duration_s - AUDIO_GAP_TOLERANCE_S:
        notes.append(f"audio is shorter than the video: it ends at {audio_end_s:.2f} s but the video runs to "
                     f"{vi.duration_s:.2f} s; later windows have no audio (confidence 0)")
    return notes


# --------------------------------------------------------------------------------------------- question


def condition_on_question(result: Any, question: str, model: Any = None, *, alpha: float | None = None,
                          norm: str | None = None, segment_s: float | None = None,
                          relevance: np.ndarray | None = None, model_record: dict[str, Any] | None = None) -> Any:
    """An index whose scores answer ``question`` as well as the sound.

    Each window's picture is scored against the question by a local CLIP/SigLIP ``model`` (a folder or a loaded
    :class:`~earmark.probes.question.TextImageModel`; or ``relevance``, one cosine similarity per window, with
    ``model_record`` saying what made it); both scores are normalised (``norm``: ``global`` or ``segment``, robust
    z within ``segment_s`` s); windows whose semantic labels name the question gain LABEL_BONUS; and the two are
    mixed: ``(1 - alpha) * sound + alpha * question`` (default DEFAULT_ALPHA, 0.5). Anchors are chosen again from
    the mixed scores with the index's anchor settings; the question, ``alpha``, the normalisation and the model
    (path, weights digest) are recorded in the timeline's ``probe_config["question"]``, which plans copy. Every
    window counts as covered (the picture covers it) unless ``alpha`` is 0.

    >>> res = condition_on_question(earmark_index_result, "when does the dog bark?", "clip-folder/")  # doctest: +SKIP
    >>> earmark.plan(res, "qwen2.5-vl", 640).config["question"]["alpha"]                           # doctest: +SKIP
    0.5
    """
    from .anchors import AnchorConfig, anchors
    from .probes.question import (
        DEFAULT_ALPHA,
        DEFAULT_NORM,
        DEFAULT_SEGMENT_S,
        LABEL_BONUS,
        TextImageModel,
        combine,
        label_match,
        window_relevance,
    )
    from .probes.question import normalise as normalise_scores

    norm = DEFAULT_NORM if norm is None else norm
    alpha = DEFAULT_ALPHA if alpha is None else alpha
    segment_s = DEFAULT_SEGMENT_S if segment_s is None else float(segment_s)
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"--alpha must be between 0 (sound only) and 1 (question only), got {alpha!r}")
    if not isinstance(question, str) or not question.strip():
        raise ConfigError("--question must be a non-empty text")
    tl = result.timeline
    if relevance is None:
        if model is None:
            raise ConfigError("--question needs --text-image-model DIR (a local CLIP or SigLIP folder)")
        tm = model if isinstance(model, TextImageModel) else TextImageModel.from_pretrained(model)
        relevance = window_relevance(result.info.path, question, tm, tl.starts, tl.window_s, tl.duration_s,
                                     video_info=result.info)
        model_record = {"path": tm.path, "type": tm.kind, "weights_sha256": tm.digest}
    relevance = np.asarray(relevance, np.float64)
    if relevance.shape != (len(tl),):
        raise ConfigError(f"{len(relevance)} relevance values for {len(tl)} windows")
    q = normalise_scores(relevance, norm, tl.hop_s, segment_s)
    match = label_match(question, tl.labels)
    if match is not None:
        q = q + LABEL_BONUS * match
    # The sound's scores are already robust z over the video; segment-local ones re-centre each segment with a
    # scale never below the video's own (1 in z units), so a flat stretch is not blown up into events.
    a = np.asarray(tl.scores, np.float64) if norm == "global" else normalise_scores(tl.scores, norm, tl.hop_s,
                                                                                    segment_s, min_scale=1.0)
    scores = combine(a, q, float(alpha))
    coverage = np.ones(len(tl), np.float32) if alpha > 0 else tl.coverage
    z_ref = float(tl.probe_config.get("z_ref", 3.0)) if isinstance(tl.probe_config, dict) else 3.0
    confidence = coverage * (1.0 - np.power(0.5, np.maximum(scores, 0.0) / z_ref))
    record = {"text": question, "alpha": float(alpha), "norm": norm, "segment_s": segment_s,
              "label_bonus": LABEL_BONUS if match is not None else 0.0, "model": model_record}
    new = dataclasses.replace(tl, probe=f"{tl.probe}+question", probe_config={**tl.probe_config, "question": record},
                              scores=scores, coverage=coverage, confidence=confidence.astype(np.float32),
                              notes=(*tl.notes, f"scores: (1 - {alpha:g}) x sound + {alpha:g} x question "
                                                f"({norm} robust z), question {question!r}"))
    stored = {k: v for k, v in result.anchor_config.items() if k in AnchorConfig.__dataclass_fields__}
    cfg = AnchorConfig(**stored)
    chosen = tuple(a for a in anchors(new, config=cfg))
    return dataclasses.replace(result, timeline=new, anchors=chosen)
