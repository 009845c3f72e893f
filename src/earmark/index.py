"""``index(path)``: media -> probe -> Timeline, streaming, with the window grid on the picture's timeline."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EarmarkWarning
from .media.audio import stream_audio
from .media.probe import info as probe_info
from .probes import get_probe, normalise, window_grid
from .probes.base import FRAME_HOP_S, SAMPLE_RATE, frame_count
from .types import Timeline, VideoInfo

# Audio that misses more than this much of the picture (start or end) is reported.
AUDIO_GAP_TOLERANCE_S = 0.5

ProgressFn = Callable[[float, float], None]
"""Called as ``progress(seconds_done, seconds_total)`` while audio is decoded."""


def coverage(starts: np.ndarray, window_s: float, audio_start_s: float, audio_end_s: float,
             duration_s: float) -> np.ndarray:
    """Fraction of each window ``[s, s + window_s)`` that real audio covers (within the video)."""
    lo = np.maximum(starts, audio_start_s)
    hi = np.minimum(starts + window_s, min(audio_end_s, max(duration_s, starts[-1] + window_s)))
    return np.clip((hi - lo) / window_s, 0.0, 1.0)


def index(path: str | Path, probe: str = "energy", hop_s: float = 1.0, window_s: float = 1.0, *,
          audio_stream: int | None = None, video_info: VideoInfo | None = None,
          progress: ProgressFn | None = None, **probe_config: Any) -> Timeline:
    """Score every window of a video's audio for eventness.

    >>> import earmark                                           # doctest: +SKIP
    >>> tl = earmark.index("clip.mp4", probe="energy", hop_s=1.0)  # doctest: +SKIP
    >>> tl.scores.shape, tl.raw_unit                              # doctest: +SKIP
    ((10,), 'dBFS')

    ``probe_config`` overrides fields of the probe's config dataclass (e.g. ``n_mels=40``).
    Raises MediaError / NoAudioStreamError / ConfigError / UnknownNameError with a message
    naming the file and the problem.
    """
    prb = get_probe(probe, **probe_config)
    grid_check = window_grid(1.0, hop_s, window_s)  # validates hop/window before touching the file
    del grid_check
    vi = video_info if video_info is not None else probe_info(path)
    grid = window_grid(vi.duration_s, hop_s, window_s)
    n_frames = frame_count(grid)
    # Decode just past the last window (plus one analysis frame), never the whole track at once.
    chunks = stream_audio(vi, audio_stream, SAMPLE_RATE, end_s=n_frames * FRAME_HOP_S + prb.frame_length / SAMPLE_RATE)

    def counted():
        done = 0
        for chunk in chunks:
            done += len(chunk)
            if progress is not None:
                progress(min(done / SAMPLE_RATE, grid.end_s), grid.end_s)
            yield chunk

    values = prb.frame_values_stream(counted(), n_frames)
    a_start = chunks.audio_start_s or 0.0
    a_end = chunks.audio_end_s if chunks.audio_end_s is not None else 0.0
    values = prb.mask_after_audio_end(values, int(round(a_end * SAMPLE_RATE)))
    raw = prb.window_values(values, grid)
    cov = coverage(grid.starts(), window_s, a_start, a_end, vi.duration_s)
    notes = _gap_notes(vi, a_start, a_end)
    for note in notes:
        warnings.warn(EarmarkWarning(f"{vi.path}: {note}"), stacklevel=2)
    norm = normalise(raw, cov, prb.config)
    return Timeline(
        video=vi.path,
        fingerprint=vi.fingerprint,
        duration_s=vi.duration_s,
        hop_s=float(hop_s),
        window_s=float(window_s),
        probe=prb.name,
        probe_config=prb.config.to_dict(),
        raw_unit=prb.raw_unit,
        raw=raw,
        scores=norm.scores,
        confidence=norm.confidence,
        coverage=cov,
        norm_center=float(np.float32(norm.center)),
        norm_scale=float(np.float32(norm.scale)),
        audio_stream=chunks.stream_index,
        sample_rate=SAMPLE_RATE,
        notes=tuple(notes),
    )


def _gap_notes(vi: VideoInfo, audio_start_s: float, audio_end_s: float) -> list[str]:
    notes = []
    if audio_start_s > AUDIO_GAP_TOLERANCE_S:
        notes.append(f"audio starts at {audio_start_s:.2f} s, after the picture; earlier windows have no audio "
                     "(confidence 0)")
    if audio_end_s < vi.duration_s - AUDIO_GAP_TOLERANCE_S:
        notes.append(f"audio is shorter than the video: it ends at {audio_end_s:.2f} s but the video runs to "
                     f"{vi.duration_s:.2f} s; later windows have no audio (confidence 0)")
    return notes
