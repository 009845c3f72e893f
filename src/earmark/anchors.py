"""Scores -> anchors: pure functions (top-K with non-maximum suppression, threshold, spread over event regions,
dilation, offset, fallback).

Times are seconds on the picture's timeline; regions are half-open ``[start, end)``. The AV offset
says how far the picture lags the sound: an event heard at audio time t is looked for at
``t + offset_s`` (negative when the sound lags the picture).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import EllipsisType
from typing import Literal

import numpy as np

from .errors import ConfigError
from .types import Anchor, IndexResult, Timeline, VideoInfo

_EPS = 1e-9

AnchorMode = Literal["events", "topk", "threshold", "spread"]
ANCHOR_MODES = ("events", "topk", "threshold", "spread")
ANCHOR_FILLS = ("inside", "outside")


@dataclass(frozen=True)
class AnchorConfig:
    """How anchors are chosen from a Timeline (``earmark index --k --min-gap --dilate --offset``)."""

    k: int | None = 2
    """At most this many anchors (required in ``events``, ``topk`` and ``spread`` modes; ``None`` = no cap in
    ``threshold`` mode)."""
    mode: AnchorMode = "events"
    """``events`` (default): K *distinct* events — runs of consecutive windows reaching ``event_level`` are one
    event each, anchored at its peak, events by peak score; with fewer events than K, the best windows outside
    them fill up. ``topk``: the K best windows (NMS); ``threshold``: every window reaching ``threshold`` (NMS, at
    most K); ``spread``: K anchors spread over the *regions* that reach ``threshold`` (runs of consecutive
    windows) — one per region at its peak, strongest region first, then the rest shared by region length and
    placed evenly inside each region, so a long event gets anchors across it instead of two beside its loudest
    second."""
    threshold: float = 3.0
    """``threshold`` / ``spread`` modes: windows whose robust z-score is at least this stand out."""
    event_level: float = 1.0
    """``events`` mode: the robust z-score that bounds an event (contiguous windows at or above it are one event)."""
    fill: Literal["inside", "outside"] = "inside"
    """``events`` mode with fewer events than K: the remaining anchors go ``inside`` the chosen events first
    (shared by event length, placed evenly, as ``spread`` does; then outside), or straight to the best windows
    ``outside`` them. Chosen on val (benchmarks/anchor_rules.py, energy): the same Recall@K of distinct events
    (val@2 0.979 both, @5 0.680 vs 0.677, @12 0.889 vs 0.891) with more of 12 anchors on events (0.505 vs
    0.448): a plan's big frames land where something happens."""
    min_gap_s: float | None = None
    """Two anchors start at least this far apart (non-maximum suppression); None: two hops."""
    dilate_s: float = 0.0
    """Grow each anchor's region by this much on both sides."""
    offset_s: float = 0.0
    """Picture time minus sound time of events (sound leads the picture when > 0)."""
    min_score: float = 1.5
    """If no covered window reaches this z-score, nothing stands out: fall back to uniform anchors. 1.5 (was 3) and
    ``events`` mode with ``event_level`` 1 were chosen on the val half of a real-sound set (benchmarks/anchor_rules.py:
    real recordings over real music, speech and room beds); z = 3 replaced real but quiet events with evenly spaced
    anchors on 19 % of clips."""
    widen_below: float = 0.5
    """Anchors with confidence below this get ``widen_s`` more on both sides (uncertainty widening)."""
    widen_s: float | None = None
    """Extra half-width for low-confidence anchors (default: one hop)."""

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def nms_order(scores: np.ndarray, starts: np.ndarray, min_gap_s: float,
              candidates: np.ndarray | None = None, limit: int | None = None) -> list[int]:
    """Greedy non-maximum suppression: best score first (ties: earliest), skip windows closer than ``min_gap_s``.

    Returns the kept indices in selection order.
    """
    idx = np.arange(len(scores)) if candidates is None else np.asarray(candidates, dtype=np.int64)
    order = idx[np.lexsort((idx, -np.asarray(scores, dtype=np.float64)[idx]))]
    kept: list[int] = []
    for i in order:
        if limit is not None and len(kept) >= limit:
            break
        if all(abs(starts[i] - starts[j]) >= min_gap_s - _EPS for j in kept):
            kept.append(int(i))
    return kept


def top_k(scores: np.ndarray, starts: np.ndarray, k: int, min_gap_s: float) -> list[int]:
    """Indices of the ``k`` best windows at least ``min_gap_s`` apart, in time order."""
    return sorted(nms_order(scores, starts, min_gap_s, limit=k))


def above_threshold(scores: np.ndarray, starts: np.ndarray, threshold: float, min_gap_s: float,
                    k: int | None = None) -> list[int]:
    """Indices of windows scoring at least ``threshold`` (NMS, best first, capped at ``k``), in time order."""
    cand = np.flatnonzero(np.asarray(scores) >= threshold)
    return sorted(nms_order(scores, starts, min_gap_s, candidates=cand, limit=k))


def uniform_indices(n: int, k: int) -> list[int]:
    """``k`` window indices spread evenly over ``n`` windows (centres of k equal parts)."""
    k = min(k, n)
    return sorted({int(np.floor((i + 0.5) * n / k)) for i in range(k)})


def event_regions(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Runs ``[i, j)`` of consecutive windows scoring at least ``threshold``, in time order."""
    on = np.concatenate([[False], np.asarray(scores) >= threshold, [False]])
    edges = np.flatnonzero(on[1:] != on[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2])]


def peak_index(scores: np.ndarray, a: int, b: int) -> int:
    """The best window of run ``[a, b)``; among equal best, the one nearest the run's centre (then the earliest)."""
    run = np.asarray(scores[a:b], dtype=np.float64)
    best = np.flatnonzero(run == run.max())
    centre = uniform_indices(b - a, 1)[0]
    return a + int(best[np.argmin(np.abs(best - centre))])


def distinct_events(scores: np.ndarray, starts: np.ndarray, k: int, level: float, min_gap_s: float) -> list[int]:
    """``k`` window indices on distinct events (see ``AnchorConfig.mode``), in time order.

    Runs of consecutive windows scoring at least ``level`` are one event each; each offers its peak window
    (ties: the earliest), events are taken by peak score at least ``min_gap_s`` apart, so two loud seconds of one
    phone ring are one anchor. If fewer than ``k`` events fit, the best windows outside the chosen events fill up
    (best first, ties earliest, ``min_gap_s`` apart from every pick).
    """
    scores = np.asarray(scores, dtype=np.float64)
    regions = event_regions(scores, level)
    peaks = np.array([peak_index(scores, a, b) for a, b in regions], dtype=np.int64)
    picks = nms_order(scores, starts, min_gap_s, candidates=peaks, limit=k)
    if len(picks) < k:
        taken = np.zeros(len(scores), dtype=bool)
        for a, b in regions:
            if any(a <= i < b for i in picks):
                taken[a:b] = True
        rest = np.flatnonzero(~taken & np.isfinite(scores))
        for i in rest[np.lexsort((rest, -scores[rest]))]:
            if len(picks) >= k:
                break
            if all(abs(starts[i] - starts[j]) >= min_gap_s - _EPS for j in picks):
                picks.append(int(i))
    return sorted(picks)


def spread(scores: np.ndarray, starts: np.ndarray, k: int, threshold: float, min_gap_s: float) -> list[int]:
    """``k`` window indices spread over the regions that reach ``threshold`` (see ``AnchorConfig.mode``).

    Each region first gets one anchor at its peak (regions by peak score, best first, while anchors last); the
    remaining anchors go one at a time to the region with the most windows per anchor (ties: the stronger
    region), whose anchors then sit at the centres of equal parts (or from edge to edge, if the centres would be
    closer than ``min_gap_s``). Anchors stay ``min_gap_s`` apart (a region that cannot take one more that far
    from the others gets none). If fewer than ``k`` fit, the best other
    windows fill up (non-maximum suppression against the chosen ones). Returns indices in time order.
    """
    scores = np.asarray(scores, dtype=np.float64)
    regions = event_regions(scores, threshold)
    size = [b - a for a, b in regions]
    peak = [float(scores[a:b].max()) for a, b in regions]

    def apart(idx: list[int]) -> bool:
        t = np.sort(starts[idx])
        return bool(np.all(np.diff(t) >= min_gap_s - _EPS))

    def inside(r: int, m: int) -> list[int]:  # one: the peak; more: centres of m equal parts (or edge to edge)
        if m == 1:
            return [peak_index(scores, *regions[r])]
        idx = [regions[r][0] + i for i in uniform_indices(size[r], m)]
        if m > 1 and not apart(idx):
            idx = [regions[r][0] + int(round(i)) for i in np.linspace(0, size[r] - 1, m)]
        return idx

    def place(count: dict[int, int]) -> list[int]:
        return [i for r, m in count.items() for i in inside(r, m)]

    count: dict[int, int] = {}
    for r in sorted(range(len(regions)), key=lambda r: (-peak[r], regions[r][0])):
        if len(count) < k and apart(place({**count, r: 1})):
            count[r] = 1
    while sum(count.values()) < k:
        room = [r for r in count if count[r] < size[r] and apart(place({**count, r: count[r] + 1}))]
        if not room:
            break
        best = max(room, key=lambda r: (size[r] / (count[r] + 1), peak[r], -regions[r][0]))
        count[best] += 1
    picks = place(count)
    if len(picks) < k:  # too few windows stand out: the best of the others, kept apart from the chosen ones
        rest = np.setdiff1d(np.arange(len(scores)), picks)
        for i in rest[np.lexsort((rest, -scores[rest]))]:  # best first, ties: earliest
            if len(picks) >= k:
                break
            if apart([*picks, int(i)]):
                picks.append(int(i))
    return sorted(picks)


def default_gap(hop_s: float) -> float:
    """``min_gap_s=None``: two hops, so neighbouring windows of one sound never both become anchors."""
    return 2.0 * hop_s


def region(start_s: float, window_s: float, duration_s: float, dilate_s: float, offset_s: float,
           extra_s: float = 0.0) -> tuple[float, float]:
    """The window ``[start, start + window)`` dilated, widened and shifted, clipped to ``[0, duration)``."""
    lo = start_s - dilate_s - extra_s + offset_s
    hi = start_s + window_s + dilate_s + extra_s + offset_s
    return max(0.0, lo), min(duration_s, hi)


def merge_regions(regions: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sort and merge overlapping or touching half-open regions."""
    merged: list[tuple[float, float]] = []
    for lo, hi in sorted(r for r in regions if r[1] > r[0]):
        if merged and lo <= merged[-1][1] + _EPS:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def check_anchor_config(cfg: AnchorConfig, n_windows: int, duration_s: float, video: str = "") -> None:
    import math
    from dataclasses import fields

    where = f"{video}: " if video else ""
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{f.name.removesuffix('_s').replace('_', '-')} must be a finite number, got {v}")
    if cfg.mode not in ANCHOR_MODES:
        raise ConfigError(f"anchor mode must be one of {', '.join(ANCHOR_MODES)}, got {cfg.mode!r}")
    if cfg.fill not in ANCHOR_FILLS:
        raise ConfigError(f"anchor fill must be one of {', '.join(ANCHOR_FILLS)}, got {cfg.fill!r}")
    if cfg.mode in ("events", "topk", "spread") and cfg.k is None:
        raise ConfigError(f"{cfg.mode} anchors need k")
    if cfg.k is not None and cfg.k < 1:
        raise ConfigError(f"k must be >= 1, got {cfg.k}")
    for name in ("min_gap_s", "dilate_s"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 0:
            raise ConfigError(f"{name.removesuffix('_s').replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    if cfg.widen_s is not None and cfg.widen_s < 0:
        raise ConfigError(f"widen must be >= 0, got {cfg.widen_s}")
    if abs(cfg.offset_s) >= duration_s:
        raise ConfigError(f"{where}offset {cfg.offset_s} s is not shorter than the video ({duration_s:.3f} s)")


def choose_anchors(scores: np.ndarray, confidence: np.ndarray, coverage: np.ndarray, starts: np.ndarray,
                   window_s: float, hop_s: float, duration_s: float, cfg: AnchorConfig,
                   family: str = "audio") -> list[Anchor]:
    """The pure core of :func:`anchors`, on plain arrays. ``family``: the source of anchors that the scores chose
    (the probe family: audio, visual, hybrid or transfer); evenly spaced ones are ``fallback``."""
    scores = np.asarray(scores, dtype=np.float64)
    gap = default_gap(hop_s) if cfg.min_gap_s is None else cfg.min_gap_s
    covered = np.asarray(coverage) > 0
    # Windows without audio never become audio anchors.
    usable = np.where(covered, scores, -np.inf)
    stands_out = bool(covered.any()) and float(usable.max()) >= cfg.min_score
    if not stands_out:
        k = cfg.k if cfg.k is not None else 1
        picks = uniform_indices(len(scores), k)
        source = "fallback"
    elif cfg.mode == "threshold":
        picks = above_threshold(usable, starts, cfg.threshold, gap, cfg.k)
        source = family
        if not picks:  # threshold above every score: the best window still stands out (>= min_score)
            picks = top_k(usable, starts, 1, gap)
    elif cfg.mode == "spread":
        picks = spread(usable, starts, int(cfg.k or 1), cfg.threshold, gap)
        source = family
    elif cfg.mode == "events":
        picks = (spread(usable, starts, int(cfg.k or 1), cfg.event_level, gap) if cfg.fill == "inside" else
                 distinct_events(usable, starts, int(cfg.k or 1), cfg.event_level, gap))
        source = family
    else:
        picks = top_k(usable, starts, int(cfg.k or 1), gap)
        source = family
    widen = hop_s if cfg.widen_s is None else cfg.widen_s
    out: list[Anchor] = []
    for i in picks:
        conf = float(confidence[i])
        extra = widen if (source != "fallback" and conf < cfg.widen_below) else 0.0
        lo, hi = region(float(starts[i]), window_s, duration_s, cfg.dilate_s, cfg.offset_s, extra)
        if hi - lo <= _EPS:  # the offset shifted it off the video: look at the nearest edge instead
            before_start = hi <= _EPS
            lo, hi = (0.0, min(window_s, duration_s)) if before_start else (max(0.0, duration_s - window_s), duration_s)
        t = float(np.clip(starts[i] + window_s / 2 + cfg.offset_s, lo, np.nextafter(hi, lo)))
        out.append(Anchor(index=int(i), time_s=t, start_s=lo, end_s=hi, score=float(np.float32(scores[i])),
                          confidence=float(np.float32(conf)), source=source))
    return out


def anchors(timeline: Timeline, k: int | EllipsisType | None = ..., *, config: AnchorConfig | None = None,
            **overrides: object) -> list[Anchor]:
    """Choose anchors on a Timeline.

    >>> tl = earmark.index("clip.mp4")                        # doctest: +SKIP
    >>> [a.index for a in earmark.anchors(tl, k=2)]            # doctest: +SKIP
    [3, 7]

    Distinct events (default), top-K, threshold or spread mode (see :class:`AnchorConfig`), non-maximum
    suppression by ``min_gap_s``, dilation, AV offset, uncertainty widening; when nothing stands out (flat or
    silent audio) the anchors are spread uniformly and marked ``source="fallback"``.
    """
    from dataclasses import replace

    # ``config`` (default AnchorConfig(), k=2) supplies every setting; ``k`` and keywords override it.
    if k is not ...:
        overrides["k"] = k
    cfg = replace(config or AnchorConfig(), **overrides)
    check_anchor_config(cfg, len(timeline), timeline.duration_s, timeline.video)
    cfg = fit_k(cfg, len(timeline), timeline.video)
    return choose_anchors(timeline.scores, timeline.confidence, timeline.coverage, timeline.starts,
                          timeline.window_s, timeline.hop_s, timeline.duration_s, cfg, probe_family(timeline.probe))


def fit_k(cfg: AnchorConfig, n_windows: int, video: str = "") -> AnchorConfig:
    """``cfg`` with K at most the number of windows: a short video gets the anchors it holds, with a warning
    (a 1 s clip has one window, so it cannot hold the default two anchors)."""
    import warnings
    from dataclasses import replace

    from .errors import EarmarkWarning

    if cfg.k is None or cfg.mode not in ("events", "topk", "spread") or cfg.k <= n_windows:
        return cfg
    warnings.warn(EarmarkWarning(f"{video + ': ' if video else ''}k={cfg.k} anchors asked for, but the video holds "
                                 f"{n_windows} window{'s' if n_windows != 1 else ''}: using k={n_windows}"),
                  stacklevel=3)
    return replace(cfg, k=n_windows)


def with_anchors(info: VideoInfo, timeline: Timeline, config: AnchorConfig | None = None) -> IndexResult:
    """A video's :class:`~earmark.types.IndexResult`: ``timeline`` with its anchors chosen by ``config`` (K at most
    the windows, with a warning) and the settings used, as ``earmark index`` saves it.

    >>> res = with_anchors(earmark.info("clip.mp4"), earmark.index("clip.mp4"))   # doctest: +SKIP
    >>> len(res.anchors), res.anchor_config["k"]                                 # doctest: +SKIP
    (2, 2)
    """
    cfg = fit_k(config or AnchorConfig(), len(timeline), timeline.video)
    return IndexResult(info=info, timeline=timeline, anchors=tuple(anchors(timeline, config=cfg)),
                       anchor_config=cfg.to_dict())


def probe_family(probe: str) -> str:
    """The anchor source a probe's scores give: ``audio``, ``visual``, ``hybrid`` or ``transfer``."""
    from .probes import probe_classes

    cls = probe_classes().get(probe)
    if cls is None:  # a probe registered in another process (an index read from a file): its name tells nothing
        return "audio"
    return "transfer" if probe == "transfer" else cls.kind
