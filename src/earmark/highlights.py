"""Highlights: the contiguous segments of a video worth watching, ranked, for reels, edit decision lists and clips.

A segment is grown from a window that stands out (region growing over the per-window scores), at least
``min_len_s`` and at most ``max_len_s`` long; segments of one event split by a short dip are merged; each window
belongs to at most one segment, claimed by the strongest seed first (non-maximum suppression between
segments; where windows overlap, hop < window, the better segment keeps the overlap); the ``top`` best are
kept, or as many as fit in ``total_duration_s`` (a reel).

Two scorers give the per-window scores:

- ``eventness``: the Timeline's own scores (any probe: audio, visual, hybrid, transfer).
- ``activation``: how strongly a frozen per-window embedding deviates from the video's own typical activation
  (the median window): the mean of the ``top_k`` largest positive deviations, in robust units per dimension
  (top-k contrast within the video), then robust z-scored over the video. Embeddings: ``logmel`` (log-mel
  statistics, the front end the learned probes read), ``learned`` (the hidden layer of the shipped ``learned``
  probe, taught from real recordings; needs torch) or ``visual`` (colour and layout of low-resolution
  thumbnails: picture alone, for footage without sound).

The segment arithmetic, the activation score and the ranking metrics (segment IoU, AP, HIT@1) are pure
functions on arrays; times are seconds (floats) on the picture's timeline and intervals are half-open
``[start, end)``.

>>> import earmark.highlights as hl                                   # doctest: +SKIP
>>> h = hl.highlights("match.mp4", hl.HighlightConfig(top=3))          # doctest: +SKIP
>>> [(s.start_s, s.end_s) for s in h.segments]                        # doctest: +SKIP
[(12.0, 18.0), (40.0, 43.0), (3.0, 5.0)]
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .errors import ConfigError, MediaError, SchemaError, unknown_name
from .types import IndexResult, Timeline, VideoInfo

SCORERS = ("eventness", "activation")
EMBEDDINGS = ("auto", "logmel", "learned", "visual")
"""``auto``: ``logmel`` when the video has an audio stream, else ``visual``."""
DEFAULT_SCORER = "eventness"
"""Chosen on the val half of benchmarks/highlights.py (SynthAVE and RealStamp 60 s, sparse events; chosen again at
300 s): mean mAP over segment IoU 0.3/0.5/0.7; the numbers and the test half are in benchmarks/README.md."""

_EPS = 1e-9


@dataclass(frozen=True)
class HighlightConfig:
    """How segments are grown, merged, scored and chosen (``earmark highlights`` options)."""

    scorer: str = DEFAULT_SCORER
    """``eventness`` (the probe's scores) or ``activation`` (deviation of an embedding from the video's typical)."""
    embedding: str = "auto"
    """The embedding the ``activation`` scorer reads (:data:`EMBEDDINGS`)."""
    top: int | None = 5
    """Keep at most this many segments (None: no cap, e.g. with ``total_duration_s``)."""
    total_duration_s: float | None = None
    """Keep segments, best first, while they fit in this many seconds (the last one trimmed around its peak when
    at least ``min_len_s`` is left); None: no cap."""
    min_len_s: float = 2.0
    """Shortest segment, seconds: a short event is widened over its better neighbours."""
    max_len_s: float = 20.0
    """Longest segment, seconds: growing stops there (a longer event becomes two segments)."""
    level: float = 1.0
    """Robust z-score a window needs to join a segment while it grows (and a seed needs to be an event)."""
    merge_gap_s: float = 1.0
    """Two event segments at most this far apart become one (when the result is at most ``max_len_s``)."""
    top_k: int = 8
    """``activation``: how many of the embedding's most deviating dimensions are averaged per window."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


OPTION_NAMES = {"top": "--top", "total_duration_s": "--total-duration", "min_len_s": "--min-len",
                "max_len_s": "--max-len", "level": "--level", "merge_gap_s": "--merge-gap", "top_k": "--top-k",
                "scorer": "--scorer", "embedding": "--embedding"}
"""The command-line option of each HighlightConfig field, named in error messages."""


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_highlight_config(cfg: HighlightConfig) -> None:
    """Raise ConfigError naming the option and the valid range for a setting that cannot work."""

    def bad(name: str, expected: str) -> ConfigError:
        return ConfigError(f"{OPTION_NAMES[name]} {getattr(cfg, name)!r}: must be {expected}")

    if cfg.scorer not in SCORERS:
        raise unknown_name("scorer", cfg.scorer, SCORERS, sort=False)
    if cfg.embedding not in EMBEDDINGS:
        raise unknown_name("embedding", cfg.embedding, EMBEDDINGS, sort=False)
    if cfg.top is not None and (isinstance(cfg.top, bool) or not isinstance(cfg.top, int) or cfg.top < 1):
        raise bad("top", "an integer >= 1")
    if isinstance(cfg.top_k, bool) or not isinstance(cfg.top_k, int) or cfg.top_k < 1:
        raise bad("top_k", "an integer >= 1")
    for name in ("min_len_s", "max_len_s"):
        if not _finite(getattr(cfg, name)) or getattr(cfg, name) <= 0:
            raise bad(name, "a number of seconds > 0")
    if cfg.min_len_s > cfg.max_len_s:
        raise ConfigError(f"--min-len {cfg.min_len_s!r} is longer than --max-len {cfg.max_len_s!r}: a segment "
                          f"must be at least min and at most max seconds long")
    if not _finite(cfg.merge_gap_s) or cfg.merge_gap_s < 0:
        raise bad("merge_gap_s", "a number of seconds >= 0")
    if not _finite(cfg.level):
        raise bad("level", "a finite z-score")
    if cfg.total_duration_s is not None and (not _finite(cfg.total_duration_s) or cfg.total_duration_s <= 0):
        raise bad("total_duration_s", "a number of seconds > 0")
    if cfg.total_duration_s is not None and cfg.total_duration_s < cfg.min_len_s:
        raise ConfigError(f"--total-duration {cfg.total_duration_s!r} is shorter than --min-len {cfg.min_len_s!r}:"
                          f" not one segment would fit")


# ------------------------------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class Segment:
    """A highlight: ``[start_s, end_s)`` of the video, its peak window's score and where that peak is."""

    start_s: float
    end_s: float
    score: float
    """The score of the segment's best window (the seed it grew from)."""
    peak_s: float
    """Centre of that window, seconds."""
    mean_score: float
    """Mean score of the segment's windows (breaks ties between equal peaks)."""
    rank: int = 0
    """1 = the best segment of the video."""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "start_s": self.start_s, "end_s": self.end_s,
                "duration_s": round(self.duration_s, 6), "score": self.score, "peak_s": self.peak_s,
                "mean_score": self.mean_score}


def _span(a: int, b: int, hop_s: float, window_s: float, duration_s: float) -> float:
    """Seconds covered by windows ``[a, b)``."""
    return min(duration_s, (b - 1) * hop_s + window_s) - a * hop_s


def grow_runs(scores: np.ndarray, hop_s: float, window_s: float, duration_s: float, *, min_len_s: float,
              max_len_s: float, level: float) -> list[tuple[int, int, int]]:
    """Region growing: runs ``(a, b, seed)`` of windows ``[a, b)``, in the order they were grown.

    Seeds go best score first (ties: the earliest). A seed no earlier run claimed grows, one window at a time
    on its better side (ties: the earlier side), over unclaimed windows scoring at least ``level``, up to
    ``max_len_s``; a run shorter than ``min_len_s`` then widens over its better unclaimed neighbours whatever
    their score. A run that cannot reach ``min_len_s`` (squeezed between runs or the video's ends) is dropped,
    unless the whole video is shorter. Every window belongs to at most one run.
    """
    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    whole = _span(0, n, hop_s, window_s, duration_s) if n else 0.0
    need = min(min_len_s, whole)
    claimed = np.zeros(n, dtype=bool)
    runs: list[tuple[int, int, int]] = []

    def grow(a: int, b: int, eligible, enough: float | None) -> tuple[int, int]:
        while enough is None or _span(a, b, hop_s, window_s, duration_s) < enough - _EPS:
            left = (a > 0 and not claimed[a - 1] and eligible(a - 1)
                    and _span(a - 1, b, hop_s, window_s, duration_s) <= max_len_s + _EPS)
            right = (b < n and not claimed[b] and eligible(b)
                     and _span(a, b + 1, hop_s, window_s, duration_s) <= max_len_s + _EPS)
            if left and (not right or s[a - 1] >= s[b]):
                a -= 1
            elif right:
                b += 1
            else:
                break
        return a, b

    for seed in np.lexsort((np.arange(n), -s)):
        seed = int(seed)
        if claimed[seed]:
            continue
        a, b = grow(seed, seed + 1, lambda i: s[i] >= level, None)
        a, b = grow(a, b, lambda i: True, need)
        if _span(a, b, hop_s, window_s, duration_s) < need - _EPS:
            continue
        claimed[a:b] = True
        runs.append((a, b, seed))
    return runs


def merge_runs(runs: Sequence[tuple[int, int, int]], scores: np.ndarray, hop_s: float, window_s: float,
               duration_s: float, *, merge_gap_s: float, max_len_s: float, level: float
               ) -> list[tuple[int, int, int]]:
    """Join event runs (seed at or above ``level``) that lie at most ``merge_gap_s`` apart when the joined run is
    at most ``max_len_s`` long; the joined run keeps the better seed and takes in anything between. Pairs are
    joined strongest first (by their better seed's score, then time) until none can be (a heap: n log n)."""
    s = np.asarray(scores, dtype=np.float64)
    events = sorted(r for r in runs if s[r[2]] >= level)
    cur = list(events)
    n = len(cur)
    nxt, prv = list(range(1, n + 1)), list(range(-1, n - 1))
    version = [0] * n
    heap: list[tuple[float, int, int, int, int, int]] = []

    def push(i: int, j: int) -> None:
        (a1, b1, p1), (a2, b2, p2) = cur[i], cur[j]
        gap = a2 * hop_s - min(duration_s, (b1 - 1) * hop_s + window_s)
        if gap <= merge_gap_s + _EPS and _span(a1, b2, hop_s, window_s, duration_s) <= max_len_s + _EPS:
            best = p1 if (s[p1], -p1) >= (s[p2], -p2) else p2
            heapq.heappush(heap, (-s[best], a1, i, j, version[i], version[j]))

    for i in range(n - 1):
        push(i, i + 1)
    while heap:
        _, _, i, j, vi, vj = heapq.heappop(heap)
        if version[i] != vi or version[j] != vj or nxt[i] != j:
            continue  # stale: one side has changed since
        (a1, _, p1), (_, b2, p2) = cur[i], cur[j]
        cur[i] = (a1, b2, p1 if (s[p1], -p1) >= (s[p2], -p2) else p2)
        version[i] += 1
        version[j] = -1
        nxt[i] = nxt[j]
        if nxt[i] < n:
            prv[nxt[i]] = i
            push(i, nxt[i])
        if prv[i] >= 0:
            push(prv[i], i)
    merged = [cur[i] for i in range(n) if version[i] >= 0]
    starts = [a for a, _, _ in merged]  # in time order; a quiet run between two joined ones is taken in
    quiet = [r for r in runs if s[r[2]] < level]
    kept = [r for r in quiet if (k := bisect.bisect_right(starts, r[0]) - 1) < 0 or r[0] >= merged[k][1]]
    return sorted([*merged, *kept])


def rank_segments(segments: Sequence[Segment]) -> tuple[Segment, ...]:
    """Best first: by peak score, then mean score, then the earlier start; ranks set to 1, 2, ..."""
    order = sorted(segments, key=lambda g: (-g.score, -g.mean_score, g.start_s))
    return tuple(dataclasses.replace(g, rank=i + 1) for i, g in enumerate(order))


def find_segments(scores: np.ndarray, hop_s: float, window_s: float, duration_s: float,
                  config: HighlightConfig | None = None) -> tuple[Segment, ...]:
    """Every segment the scores make (grown, merged), ranked best first; :func:`select_segments` picks the reel.

    >>> z = np.array([0, 0, 5, 4, 0, 0, 0, 3, 0, 0], float)
    >>> [(g.start_s, g.end_s, g.score) for g in find_segments(z, 1.0, 1.0, 10.0, HighlightConfig(min_len_s=1))][:2]
    [(2.0, 4.0, 5.0), (7.0, 8.0, 3.0)]
    """
    cfg = config or HighlightConfig()
    check_highlight_config(cfg)
    s = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise ConfigError("highlight scores must be finite numbers")
    if window_s > cfg.max_len_s + _EPS and duration_s > cfg.max_len_s + _EPS:
        raise ConfigError(f"--max-len {cfg.max_len_s!r} is shorter than one window ({window_s:g} s): a segment is "
                          f"at least one window")
    runs = grow_runs(s, hop_s, window_s, duration_s, min_len_s=cfg.min_len_s, max_len_s=cfg.max_len_s,
                     level=cfg.level)
    runs = merge_runs(runs, s, hop_s, window_s, duration_s, merge_gap_s=cfg.merge_gap_s, max_len_s=cfg.max_len_s,
                      level=cfg.level)
    segs = [Segment(start_s=a * hop_s, end_s=min(duration_s, (b - 1) * hop_s + window_s),
                    score=float(np.float32(s[seed])), peak_s=min(seed * hop_s + window_s / 2, duration_s),
                    mean_score=float(np.float32(s[a:b].mean()))) for a, b, seed in sorted(runs)]
    return rank_segments(_without_overlaps(segs))


def _without_overlaps(segs: list[Segment]) -> list[Segment]:
    """Segments (in time order) of windows longer than the hop overlap their neighbours by ``window - hop``: the
    better-ranked of two keeps the overlap, the other is shortened (and dropped if nothing is left). Times are
    then kept to the microsecond."""
    key = {id(g): (-g.score, -g.mean_score, g.start_s) for g in segs}
    out = list(segs)
    for i in range(len(out) - 1):
        g1, g2 = out[i], out[i + 1]
        if g1.end_s > g2.start_s:
            if key[id(segs[i])] <= key[id(segs[i + 1])]:
                out[i + 1] = dataclasses.replace(g2, start_s=g1.end_s)
            else:
                out[i] = dataclasses.replace(g1, end_s=g2.start_s)
    return [dataclasses.replace(g, start_s=_us(g.start_s), end_s=_us(g.end_s),
                                peak_s=_us(min(max(g.peak_s, g.start_s), g.end_s)))
            for g in out if g.end_s - g.start_s > 1e-6]


def _us(t: float) -> float:
    """Seconds kept to the microsecond (as saved documents keep them)."""
    return round(float(t), 6)


def select_segments(segments: Sequence[Segment], top: int | None = None, total_duration_s: float | None = None,
                    min_len_s: float = 0.0) -> tuple[Segment, ...]:
    """The reel: ``segments`` (ranked) best first, at most ``top`` of them and at most ``total_duration_s`` seconds
    in all. A segment that does not fit is trimmed to what is left, centred on its peak, when that is at least
    ``min_len_s``; otherwise the reel is full. Ranks are renumbered 1, 2, ..."""
    out: list[Segment] = []
    used = 0.0
    for g in rank_segments(segments):
        if top is not None and len(out) >= top:
            break
        if total_duration_s is not None:
            room = total_duration_s - used
            if g.duration_s > room + _EPS:
                if room + _EPS < max(min_len_s, _EPS * 1e3):
                    break
                g = trim(g, room)
        out.append(g)
        used += g.duration_s
    return tuple(dataclasses.replace(g, rank=i + 1) for i, g in enumerate(out))


def trim(segment: Segment, length_s: float) -> Segment:
    """``segment`` cut to ``length_s`` seconds, centred on its peak as far as its bounds allow."""
    if length_s >= segment.duration_s:
        return segment
    start = min(max(segment.peak_s - length_s / 2, segment.start_s), segment.end_s - length_s)
    start = _us(start)
    return dataclasses.replace(segment, start_s=start, end_s=_us(start + length_s))


def in_time_order(segments: Sequence[Segment]) -> tuple[Segment, ...]:
    return tuple(sorted(segments, key=lambda g: (g.start_s, g.rank)))


# ------------------------------------------------------------------------------------------- activation


def activation_raw(embeddings: np.ndarray, top_k: int = 8, reference: np.ndarray | None = None) -> np.ndarray:
    """How strongly each window's embedding rises above the video's typical activation: per dimension, the
    deviation from the median window in robust units (1.4826 MAD, floored at a tenth of the median dimension's
    scale so a constant dimension cannot dominate), positive part, and the mean of the ``top_k`` largest per
    window. ``reference`` (booleans) names the windows the typical activation is taken from (default: all).

    >>> e = np.zeros((6, 3)); e[4] = [0, 9, 0]
    >>> activation_raw(e + np.arange(6)[:, None] % 2, top_k=1).round(2).tolist()
    [0.0, 0.67, 0.0, 0.67, 10.79, 0.67]
    """
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or not len(e):
        raise ConfigError(f"embeddings must be a (windows, dims) array, got shape {e.shape}")
    ref = e if reference is None or not np.any(reference) else e[np.asarray(reference, bool)]
    med = np.median(ref, axis=0)
    scale = 1.4826 * np.median(np.abs(ref - med), axis=0)
    positive = scale[scale > 0]
    floor = 0.1 * float(np.median(positive)) if positive.size else 1.0
    z = np.maximum((e - med) / np.maximum(scale, floor), 0.0)
    k = min(int(top_k), e.shape[1])
    return np.sort(z, axis=1)[:, -k:].mean(axis=1)


def activation_scores(embeddings: np.ndarray, coverage: np.ndarray | None = None, top_k: int = 8) -> np.ndarray:
    """:func:`activation_raw` as per-video robust z-scores (as probes normalise: median and MAD over the windows
    the signal covers, scale floored at 0.25), so ``level`` means the same for both scorers."""
    from .probes.base import ProbeConfig, normalise

    e = np.asarray(embeddings, dtype=np.float64)
    cov = np.ones(len(e)) if coverage is None else np.asarray(coverage, dtype=np.float64)
    raw = activation_raw(e, top_k, cov >= 0.5)
    return normalise(raw, cov, ProbeConfig(min_scale=0.25)).scores


def visual_features(image: np.ndarray) -> np.ndarray:
    """A thumbnail's embedding for the ``visual`` activation: its 4-level RGB histogram (64) and the mean grey
    level of a 4×4 grid (16, layout)."""
    from .probes.visual import colour_histogram

    grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
    h, w = grey.shape
    cells = [grey[h * i // 4: h * (i + 1) // 4, w * j // 4: w * (j + 1) // 4].mean() for i in range(4)
             for j in range(4)]
    return np.concatenate([colour_histogram(image, 4), np.asarray(cells, np.float64)])


def window_embeddings(vi: VideoInfo, hop_s: float, window_s: float, n_windows: int, embedding: str = "auto",
                      audio_stream: int | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """(embeddings (n_windows, d), coverage, embedding name) of a video on a window grid."""
    from .probes.base import WindowGrid

    if embedding not in EMBEDDINGS:
        raise unknown_name("embedding", embedding, EMBEDDINGS, sort=False)
    if embedding == "auto":
        embedding = "logmel" if vi.has_audio else "visual"
    grid = WindowGrid(n_windows, hop_s, window_s)
    if embedding == "visual":
        from .probes.visual import thumbnails, window_slices

        times, feats = [], []
        for t, img in thumbnails(vi, 2.0, 32):
            times.append(t)
            feats.append(visual_features(img))
        tarr, farr = np.asarray(times), np.asarray(feats)
        emb = np.stack([farr[sl].mean(0) for sl in window_slices(tarr, grid.starts(), window_s)])
        return emb, np.ones(n_windows), embedding
    from .index import coverage, frame_values
    from .media.audio import select_audio_stream
    from .probes import get_probe

    if not vi.has_audio:
        raise MediaError(vi.path, f"no audio stream: the {embedding} embedding reads sound (use --embedding visual)")
    prb = get_probe("learned" if embedding == "learned" else "linear")
    values, a_start, a_end = frame_values(vi, select_audio_stream(vi, audio_stream), prb, grid)
    cov = coverage(grid.starts(), window_s, a_start, a_end, vi.duration_s)
    emb = prb.hidden(values, grid) if embedding == "learned" else prb.features(values, grid)
    return np.asarray(emb, np.float64), cov, embedding


# --------------------------------------------------------------------------------------------- the document


def frame_rate(vi: VideoInfo) -> Fraction | None:
    """The video's real (nominal, ``r_frame_rate``) frame rate as a fraction: 29.97 is 30000/1001."""
    if vi.video is None or not vi.video.fps_nominal:
        return None
    return Fraction(vi.video.fps_nominal).limit_denominator(1001)


@dataclass(frozen=True, eq=False)
class Highlights:
    """One video's reel: its segments, best first, and everything that made them."""

    video: str
    fingerprint: str
    duration_s: float
    fps: str | None
    """The video's frame rate as ``num/den`` (``30000/1001``); None for a file without pictures."""
    has_audio: bool
    scorer: str
    probe: str
    embedding: str | None
    config: dict[str, Any]
    segments: tuple[Segment, ...]
    notes: tuple[str, ...] = ()
    scores: np.ndarray | None = None
    """The per-window scores the segments grew over (for drawing; not saved in the JSON document)."""

    KIND: ClassVar[str] = "earmark.highlights"

    @property
    def rate(self) -> Fraction | None:
        return Fraction(self.fps) if self.fps else None

    @property
    def total_s(self) -> float:
        return _us(sum(g.duration_s for g in self.segments))

    def to_dict(self) -> dict[str, Any]:
        from ._version import __version__
        from .types import SCHEMA_VERSION

        return {"kind": self.KIND, "schema_version": SCHEMA_VERSION, "earmark_version": __version__,
                "video": self.video, "fingerprint": self.fingerprint, "duration_s": self.duration_s, "fps": self.fps,
                "has_audio": self.has_audio, "scorer": self.scorer, "probe": self.probe,
                "embedding": self.embedding, "config": dict(self.config), "total_s": self.total_s,
                "segments": [g.to_dict() for g in self.segments], "notes": list(self.notes)}


def _video_for(result: IndexResult) -> VideoInfo:
    """The index's video, checked to be the file it was made from (the activation scorer reads it)."""
    from .media.container import fingerprint, info

    path = result.info.path
    if not Path(path).is_file():
        raise MediaError(path, "not found: the activation scorer reads the indexed video (give the video instead "
                               "of its index, or use --scorer eventness)")
    if fingerprint(path) != result.info.fingerprint:
        raise SchemaError(f"{path}: the file changed since it was indexed (fingerprint differs); index it again")
    return info(path)


def score_windows(result: IndexResult, config: HighlightConfig, audio_stream: int | None = None
                  ) -> tuple[np.ndarray, str | None]:
    """The per-window scores the segments grow over, and the embedding used (None for ``eventness``)."""
    tl = result.timeline
    if config.scorer == "eventness":
        return np.asarray(tl.scores, np.float64), None
    vi = _video_for(result)
    embedding = "visual" if config.embedding == "auto" and tl.audio_stream is None else config.embedding
    emb, cov, used = window_embeddings(vi, tl.hop_s, tl.window_s, len(tl), embedding,
                                       audio_stream if audio_stream is not None else tl.audio_stream)
    return activation_scores(emb, cov, config.top_k), used


def highlights_of(result: IndexResult, config: HighlightConfig | None = None) -> Highlights:
    """The reel of an indexed video (see :func:`highlights`)."""
    cfg = config or HighlightConfig()
    check_highlight_config(cfg)
    tl: Timeline = result.timeline
    scores, embedding = score_windows(result, cfg)
    ranked = find_segments(scores, tl.hop_s, tl.window_s, tl.duration_s, cfg)
    chosen = select_segments(ranked, cfg.top, cfg.total_duration_s, cfg.min_len_s)
    notes = list(tl.notes)
    events = sum(g.score >= cfg.level for g in chosen)
    if len(chosen) > events:
        notes.append(f"{len(chosen) - events} of {len(chosen)} segments peak below --level {cfg.level:g}: nothing "
                     f"else stands out")
    rate = frame_rate(result.info)
    if rate is not None and result.info.video.vfr:
        notes.append(f"variable frame rate: EDL timecodes and re-encoded clips count frames at the nominal "
                     f"{float(rate):.3f} fps")
    return Highlights(video=tl.video, fingerprint=tl.fingerprint, duration_s=tl.duration_s,
                      fps=None if rate is None else f"{rate.numerator}/{rate.denominator}",
                      has_audio=result.info.has_audio, scorer=cfg.scorer, probe=tl.probe, embedding=embedding,
                      config=cfg.to_dict(), segments=chosen, notes=tuple(notes), scores=scores)


def highlights(source: str | Path | IndexResult, config: HighlightConfig | None = None, *, probe: str = "energy",
               **index_kw: Any) -> Highlights:
    """The best segments of a video: ``source`` is a video file, an index JSON (``earmark index --out``) or an
    IndexResult. A video is indexed with ``probe`` (``index_kw`` go to :func:`earmark.index`).

    >>> h = highlights("clip.mp4", HighlightConfig(top=3, min_len_s=2, max_len_s=10))   # doctest: +SKIP
    >>> h.segments[0].start_s, h.segments[0].end_s                                     # doctest: +SKIP
    (6.0, 8.0)
    """
    cfg = config or HighlightConfig()
    check_highlight_config(cfg)
    from .sinks.export import load_result

    return highlights_of(load_result(source, probe, **index_kw), cfg)


# --------------------------------------------------------------------------------------------- metrics


def segment_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Temporal IoU of two half-open intervals (0 when either is empty).

    >>> segment_iou((0, 4), (2, 6))
    0.3333333333333333
    """
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 and inter > 0 else 0.0


def average_precision(ranked: Sequence[tuple[float, float]], truth: Sequence[tuple[float, float]],
                      iou: float) -> float:
    """AP of one video's ranked segments against its labelled events: a segment is a hit when its IoU with a
    not yet matched event reaches ``iou`` (greedy, in rank order, the best-overlapping event); AP is the mean,
    over the events, of the precision at the rank each is found (0 for one never found).

    >>> average_precision([(0, 2), (5, 8)], [(5, 8)], 0.5)
    0.5
    """
    if not truth:
        return float("nan")
    matched = [False] * len(truth)
    hits = 0
    total = 0.0
    for r, seg in enumerate(ranked, 1):
        ious = [(segment_iou(seg, t), -j) for j, t in enumerate(truth) if not matched[j]]
        if not ious:
            break
        best, neg_j = max(ious)
        if best >= iou - _EPS:
            matched[-neg_j] = True
            hits += 1
            total += hits / r
    return total / len(truth)


def hit_at_1(ranked: Sequence[tuple[float, float]], truth: Sequence[tuple[float, float]]) -> float:
    """1 when the centre of the best-ranked segment lies inside a labelled event, else 0."""
    if not ranked:
        return 0.0
    c = (ranked[0][0] + ranked[0][1]) / 2
    return float(any(a <= c < b for a, b in truth))
