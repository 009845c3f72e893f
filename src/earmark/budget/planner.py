"""Equal-token planning: turn anchors and a token budget into the frames (times, sizes) a model will see.

The arithmetic lives in small pure functions on numbers (``slot_times``, ``uniform_level``,
``anchored_levels``, ``exact_fill``, ``density_times``); :func:`plan` wires them to a Timeline, a
cost model and a strategy. The equal-token rule: uniform sampling of N frames at the largest size the
budget affords sets the target; every other strategy spends exactly that many tokens where the cost
model's ladder of legal sizes allows it, otherwise the closest total below it (``Plan.shortfall``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..anchors import AnchorConfig, uniform_indices
from ..anchors import anchors as choose
from ..errors import ConfigError, NoVideoStreamError, unknown_name
from ..media.frames import display_size
from ..types import Anchor, Plan, PlannedFrame, PlanVideo
from .costs import CostModel, Level, cost_model

DEFAULT_MAX_FRAMES = 64
"""Default frame count when none is given: one per timeline window, at most this many (video-LLMs take 8-64)."""

ASPECTS = ("keep", "square")
FITS = ("pad", "crop", "stretch")


class BudgetTooSmallError(ConfigError):
    """The budget cannot pay for the cheapest legal plan; ``minimum`` says what would."""

    def __init__(self, message: str, minimum: int) -> None:
        self.minimum = minimum
        super().__init__(message)


@dataclass(frozen=True)
class PlanConfig:
    """Everything that shapes a plan besides the video, the model and the budget."""

    strategy: str = "anchored"
    k: int = 2
    """Anchors (high-resolution slots or dense regions)."""
    frames: int | None = None
    """Frames to plan; default one per timeline window, at most DEFAULT_MAX_FRAMES."""
    ratio: float = 4.0
    """``anchored``: side of an anchor frame / side of a context frame (448/112 = 4).
    ``dense-at-anchors``: frames per second inside anchor regions / outside."""
    aspect: str | None = None
    """``keep`` the picture's aspect or plan ``square`` frames; default: square for ViT-like and fixed-cost
    models, keep for Qwen-VL and InternVL."""
    fit: str | None = None
    """How extraction maps the picture onto a planned size: pad, crop, stretch (default: stretch when
    the aspect is kept, pad for square frames)."""
    seed: int = 0
    upscale: bool = False
    """Allow frames larger than the source picture. Off by default: tokens buy pixels, and an upscaled frame buys
    interpolated ones (sizes are capped at the largest legal size at or below the source, see
    :func:`source_levels`). The eval protocol turns it on to keep its fixed 448/224/112 shapes on small videos."""
    shape: str | None = None
    """Shape of ``random``, ``oracle`` and ``fixed-spread`` plans: ``anchored`` (more pixels) or ``dense`` (more
    frames); default anchored, or dense for models whose frames all cost the same."""

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "k": self.k, "frames": self.frames, "ratio": self.ratio,
                "aspect": self.aspect, "fit": self.fit, "seed": self.seed, "shape": self.shape,
                "upscale": self.upscale}


# --------------------------------------------------------------------------------------------- arithmetic

AUTO_FILL = 0.98
"""Without ``frames``, the plan's frame count is chosen so that uniform sampling spends at least this share of
the budget (see :func:`auto_frame_count`)."""
AUTO_MIN_SIDE = 112
"""...with frames no smaller than this on their short side where the budget allows it (smaller frames read little)."""


def source_levels(levels: Sequence[Level], width: int, height: int, square: bool) -> list[Level]:
    """The levels no larger than the source picture (``width`` × ``height``, as displayed): with the aspect kept,
    both sides within the source's; square frames, the side within the source's long side. Never empty: the
    smallest level stays when even it is larger (a tiny source)."""
    fits = [lv for lv in levels if (lv.width <= max(width, height) and lv.height <= max(width, height)) if square
            or (lv.width <= width and lv.height <= height)]
    return fits or list(levels[:1])


def auto_frame_count(levels: Sequence[Level], per_slot: int, most: int, budget: int, least: int = 1) -> int:
    """How many frames to plan when the user names none: the most frames (at most ``most``, at least ``least``)
    whose uniform plan spends at least ``AUTO_FILL`` of ``budget`` at frames of at least ``AUTO_MIN_SIDE`` px on
    the short side; when no count does both, the count that spends the most (ties: more frames)."""
    best: tuple[int, int] | None = None
    for n in range(most, max(1, least) - 1, -1):
        slots = max(1, round(n / per_slot))
        u = uniform_level(levels, slots, budget)
        if u < 0:
            continue
        spent = slots * levels[u].tokens
        big_enough = min(levels[u].width, levels[u].height) >= AUTO_MIN_SIDE or u == len(levels) - 1
        if spent >= AUTO_FILL * budget and big_enough:
            return n
        if best is None or spent > best[0]:
            best = (spent, n)
    return best[1] if best is not None else most


def slot_times(duration_s: float, n: int) -> list[float]:
    """Centres of ``n`` equal parts of ``[0, duration)``: one per second for n == duration."""
    return [_t((i + 0.5) * duration_s / n) for i in range(n)]


def _t(x: float) -> float:
    """Times are kept to the microsecond so plans read back (and compare) exactly."""
    return round(float(x), 6)


def uniform_level(levels: Sequence[Level], slots: int, budget: int) -> int:
    """Index of the largest level that ``slots`` slots can all take within ``budget`` (-1 when none)."""
    best = -1
    for i, lv in enumerate(levels):
        if slots * lv.tokens <= budget:
            best = i
    return best


def hi_level_for(levels: Sequence[Level], lo: int, ratio: float) -> int:
    """The level whose tokens are closest to ``ratio**2`` times level ``lo``'s (a side ``ratio`` times longer)."""
    want = levels[lo].tokens * ratio * ratio
    return min(range(lo, len(levels)), key=lambda i: (abs(levels[i].tokens - want), i))


def anchored_levels(levels: Sequence[Level], n_hi: int, n_lo: int, ratio: float, target: int) -> tuple[int, int]:
    """(hi, lo) level indices of the anchored shape within ``target`` tokens.

    With sides in ratio ``ratio`` (tokens in ratio ratio**2) the context frames would cost
    ``x = target / (n_hi * ratio**2 + n_lo)`` each: the context level is the largest at most x, and the
    anchors take the largest level that the rest of the target pays for.
    """
    x = target / (n_hi * ratio * ratio + n_lo)
    lo = max((i for i, lv in enumerate(levels) if lv.tokens <= x), default=0)
    hi = max(i for i in range(lo, len(levels)) if i == lo or n_hi * levels[i].tokens + n_lo * levels[lo].tokens
             <= target)
    top = len(levels) - 1
    if hi == top:  # anchors are as large as the model takes: the context frames get what is left
        lo = max(i for i in range(lo, top + 1) if i == lo or n_hi * levels[top].tokens + n_lo * levels[i].tokens
                 <= target)
    return hi, lo


def _min_coins(increments: Sequence[int], limit: int) -> tuple[list[float], list[int]]:
    """Fewest increments (repeats allowed) summing to each total 0..limit, and the last one used."""
    best = [math.inf] * (limit + 1)
    last = [0] * (limit + 1)
    best[0] = 0
    for s in range(1, limit + 1):
        for inc in increments:
            if inc <= s and best[s - inc] + 1 < best[s]:
                best[s], last[s] = best[s - inc] + 1, inc
    return best, last


def _coins(last: list[int], total: int) -> list[int]:
    out = []
    while total:
        out.append(last[total])
        total -= last[total]
    return sorted(out, reverse=True)


def exact_fill(groups: Sequence[tuple[int, Sequence[int]]], leftover: int) -> tuple[int, list[list[int]]]:
    """Spend ``leftover`` tokens by upgrading slots, exactly if possible, with as few upgrades as possible.

    ``groups``: (slot count, possible token increments of one upgrade) per group of alike slots. Each slot
    takes at most one upgrade. Returns the amount spent (the largest reachable total <= leftover) and,
    per group, the increments to apply (largest first). A small coin-change DP: leftovers are below one
    ladder step of the whole plan, so the table stays small.
    """
    if leftover <= 0 or not groups:
        return 0, [[] for _ in groups]
    tables = []
    for count, incs in groups:
        best, last = _min_coins(sorted({i for i in incs if 0 < i <= leftover}), leftover)
        tables.append(([b if b <= count else math.inf for b in best], last))
    # Combine the groups one at a time: reach[s] = (upgrades, amounts per group).
    reach: dict[int, tuple[float, list[int]]] = {0: (0, [])}
    for best, _last in tables:
        nxt: dict[int, tuple[float, list[int]]] = {}
        for s, (n, parts) in reach.items():
            for add in range(leftover - s + 1):
                if best[add] == math.inf:
                    continue
                cand = (n + best[add], [*parts, add])
                old = nxt.get(s + add)
                if old is None or cand[0] < old[0]:
                    nxt[s + add] = cand
        reach = nxt
    spent = max(reach)
    _, parts = reach[spent]
    return spent, [_coins(last, amount) for (_best, last), amount in zip(tables, parts)]


def density_times(duration_s: float, n: int, regions: Iterable[tuple[float, float]], ratio: float) -> list[float]:
    """``n`` times placed at the quantile centres of a density that is ``ratio`` inside regions, 1 outside.

    With no regions (or ratio 1) this is :func:`slot_times`; ratio 0 keeps frames out of the regions.
    Deterministic, any n, overlapping regions fine.
    """
    regions = list(regions)
    edges = sorted({0.0, duration_s, *(min(max(x, 0.0), duration_s) for r in regions for x in r)})
    pieces = []  # (start, end, density)
    for a, b in itertools.pairwise(edges):
        mid = (a + b) / 2
        inside = any(s <= mid < e for s, e in regions)
        pieces.append((a, b, ratio if inside else 1.0))
    mass = np.array([(b - a) * d for a, b, d in pieces])
    cum = np.concatenate([[0.0], np.cumsum(mass)])
    out = []
    for i in range(n):
        q = (i + 0.5) / n * cum[-1]
        j = min(int(np.searchsorted(cum[1:], q, side="left")), len(pieces) - 1)
        while mass[j] <= 0 and j + 1 < len(pieces):  # never place a frame in a piece without mass
            j += 1
        a, _b, d = pieces[j]
        out.append(_t(a + (q - cum[j]) / d))
    return out


# --------------------------------------------------------------------------------------------- strategies


@dataclass
class _Slot:
    """A planning unit: one frame, or a group of frames the model charges together (Qwen video pairs)."""

    times: list[float]
    level: int
    role: str = "uniform"
    anchor: int | None = None
    priority: float = 0.0


@dataclass(frozen=True)
class _Problem:
    duration_s: float
    levels: tuple[Level, ...]
    slots: int
    per_slot: int
    target: int
    uniform: int


def _group_times(times: list[float], per_slot: int) -> list[list[float]]:
    return [times[i:i + per_slot] for i in range(0, len(times), per_slot)]


def _pair_around(t: float, spacing: float, per_slot: int, duration_s: float) -> list[float]:
    """``per_slot`` frame times centred on ``t`` (one frame: ``t`` itself), kept inside the video."""
    last = duration_s - 1e-6  # the latest time that stays before the end once rounded to the microsecond
    if per_slot == 1:
        return [_t(min(max(t, 0.0), last))]
    offsets = [(j - (per_slot - 1) / 2) * spacing for j in range(per_slot)]
    lo = min(t + o for o in offsets)
    hi = max(t + o for o in offsets)
    shift = max(0.0, -lo) - max(0.0, hi - last)
    return [_t(t + o + shift) for o in offsets]


def _uniform(p: _Problem) -> list[_Slot]:
    times = slot_times(p.duration_s, p.slots * p.per_slot)
    return [_Slot(g, p.uniform) for g in _group_times(times, p.per_slot)]


def _claim_slots(p: _Problem, picks: list[tuple[float, int]]) -> list[_Slot]:
    """Anchor slots at the anchors' times; context slots spread evenly over the rest of the video.

    Each anchor keeps a slot's width of video to itself, so with one slot per window and anchors on window
    centres the context frames stay on the remaining window centres (the seed protocol's layout).
    """
    width = p.duration_s / p.slots
    slots = [_Slot(_pair_around(t, width / p.per_slot, p.per_slot, p.duration_s), 0, "anchor", a, priority=rank)
             for rank, (t, a) in enumerate(picks)]
    taken = [(t - width / 2, t + width / 2) for t, _ in picks]
    for centre in density_times(p.duration_s, p.slots - len(picks), taken, 0.0):
        near = min((abs(centre - t) for t, _ in picks), default=0.0)
        slots.append(_Slot(_pair_around(centre, width / p.per_slot, p.per_slot, p.duration_s), 0, "context", None,
                           priority=near))
    return slots


def _anchored(p: _Problem, picks: list[tuple[float, int]], ratio: float) -> tuple[list[_Slot], list[str]]:
    if len(p.levels) < 2:
        raise ConfigError("this model spends the same tokens on every frame size, so resolution cannot move "
                          "tokens to anchors: use --strategy dense-at-anchors (more frames near anchors)")
    if len(picks) >= p.slots:
        raise ConfigError(f"{len(picks)} anchors leave no context frames among {p.slots} planned slots: "
                          f"use fewer anchors or more frames")
    notes: list[str] = []
    n_hi = len(picks)
    hi, lo = anchored_levels(p.levels, n_hi, p.slots - n_hi, ratio, p.target)
    if hi == lo and n_hi and p.uniform == len(p.levels) - 1:
        notes.append("anchored: every frame already gets the largest size (the source picture caps it), so anchor "
                     "frames cannot be larger than the others; plan more frames (--frames) to let anchors stand out")
    elif hi == lo and n_hi and p.uniform == 0:
        # Uniform already sits on the cheapest level (InternVL at one tile, say): pixels cannot move, so
        # anchors get their larger level by planning fewer context frames.
        hi = hi_level_for(p.levels, 0, ratio)
        while hi > 0 and n_hi * p.levels[hi].tokens + p.levels[0].tokens > p.target:
            hi -= 1
        n_lo = (p.target - n_hi * p.levels[hi].tokens) // p.levels[0].tokens
        if hi > 0 and 1 <= n_lo < p.slots - n_hi:
            notes.append(f"anchored: the cheapest size already costs {p.levels[0].tokens} tokens, so "
                         f"{p.slots - n_hi - n_lo} context slots were dropped to pay for larger anchor frames")
            p = replace(p, slots=n_hi + n_lo)
    slots = _claim_slots(p, picks)
    hi, lo = anchored_levels(p.levels, n_hi, p.slots - n_hi, ratio, p.target)
    for s in slots:
        s.level = hi if s.role == "anchor" else lo
    _fill(p, slots, cap=hi)
    return slots, notes


FILL_WINDOW = 3
"""Levels a slot may move from its place in the anchored shape when the solver evens out the total."""
FILL_TABLE_LIMIT = 50_000_000
"""Above slots x target cells the solver falls back to upgrades only (:func:`exact_fill`)."""


def nearest_total(options: Sequence[Sequence[tuple[int, int]]], target: int) -> tuple[int, list[int]]:
    """Pick one option per slot so the tokens add up to ``target``, or the largest total below it.

    ``options[i]`` lists slot i's (tokens, deviation) choices; among the picks that reach the best total the
    one with the least summed deviation wins (ties: earlier options). A DP over totals 0..target, vectorised
    per option, with a back-pointer table of slots x (target + 1).
    """
    inf = np.iinfo(np.int64).max // 4
    dp = np.full(target + 1, inf, dtype=np.int64)
    dp[0] = 0
    back = np.zeros((len(options), target + 1), dtype=np.int16)
    for i, opts in enumerate(options):
        new = np.full(target + 1, inf, dtype=np.int64)
        for k, (tok, dev) in enumerate(opts):
            if tok > target:
                continue
            cand = dp[:target + 1 - tok] + dev  # totals tok..target reached with this option
            tail = new[tok:]
            better = cand < tail
            tail[better] = cand[better]
            back[i, tok:][better] = k
        dp = new
    spent = int(np.nonzero(dp < inf)[0].max())
    picks, t = [], spent
    for i in range(len(options) - 1, -1, -1):
        k = int(back[i, t])
        picks.append(k)
        t -= options[i][k][0]
    return spent, picks[::-1]


def _fill(p: _Problem, slots: list[_Slot], cap: int) -> None:
    """Even out the anchored shape to the target: each slot may move a few levels, anchors never below
    context frames (context slots stay under level ``cap``, the anchors' level), least movement wins."""
    hi_floor = max(cap - 1, 0)
    options, levels_of = [], []
    for s in slots:
        if s.role == "anchor":
            lo_l, hi_l = max(hi_floor, s.level - FILL_WINDOW), min(len(p.levels) - 1, s.level + FILL_WINDOW)
        else:
            lo_l, hi_l = max(0, s.level - FILL_WINDOW), min(hi_floor if cap > s.level else s.level, s.level +
                                                              FILL_WINDOW)
        choice = sorted(range(lo_l, hi_l + 1), key=lambda j, s=s: (abs(j - s.level), j))
        options.append([(p.levels[j].tokens, abs(j - s.level)) for j in choice])
        levels_of.append(choice)
    if len(slots) * (p.target + 1) <= FILL_TABLE_LIMIT:
        _, picks = nearest_total(options, p.target)
        for s, choice, k in zip(slots, levels_of, picks):
            s.level = choice[k]
        return
    _upgrade_only(p, slots, cap)


def _upgrade_only(p: _Problem, slots: list[_Slot], cap: int) -> None:
    """Large plans: spend the leftover by upgrading slots (anchors first, then those nearest to anchors)."""
    spent = sum(p.levels[s.level].tokens for s in slots)
    groups: dict[int, list[_Slot]] = {}
    for s in slots:
        groups.setdefault(s.level, []).append(s)
    order = sorted(groups, reverse=True)  # higher levels (anchors) first

    def top(lv: int) -> int:
        return len(p.levels) if lv == cap else cap + 1

    spec = [(len(groups[lv]), [p.levels[j].tokens - p.levels[lv].tokens for j in range(lv + 1, top(lv))])
            for lv in order]
    _, parts = exact_fill(spec, p.target - spent)
    for lv, incs in zip(order, parts):
        members = sorted(groups[lv], key=lambda s: (s.priority, s.times[0]))
        for s, inc in zip(members, incs):
            s.level = next(j for j in range(lv + 1, len(p.levels)) if p.levels[j].tokens - p.levels[lv].tokens == inc)


def _dense(p: _Problem, regions: Sequence[tuple[float, float]], ratio: float) -> list[_Slot]:
    """Every frame at the uniform size, ``ratio`` times more of them per second inside anchor regions."""
    times = density_times(p.duration_s, p.slots * p.per_slot, regions, ratio)
    slots = []
    for g in _group_times(times, p.per_slot):
        inside = next((i for i, (s, e) in enumerate(regions) if any(s <= t < e for t in g)), None)
        slots.append(_Slot(g, p.uniform, "anchor" if inside is not None else "context", inside))
    return slots


def _union_length(regions: Sequence[tuple[float, float]], duration_s: float) -> float:
    """Seconds of ``[0, duration)`` inside at least one region."""
    total, end = 0.0, 0.0
    for a, b in sorted((max(0.0, a), min(duration_s, b)) for a, b in regions):
        if b > max(a, end):
            total += b - max(a, end)
            end = b
    return total


def _pooled_layout(levels: Sequence[Level], hi: int, n_full: int, pooled: int, max_frames: int | None
                   ) -> tuple[list[int], int] | None:
    """(levels of full context frames, pooled frames) spending ``pooled`` tokens in at most ``max_frames`` frames
    besides ``n_full`` anchor frames, or None. Pooled frames are traded for full context frames (no larger than
    the anchors' level ``hi``) while too many: each the smallest that makes the rest fit, else the largest
    affordable, so few are added and the most pooled frames stay."""
    from .costs import POOLED_TOKENS

    extras: list[int] = []
    while max_frames is not None and n_full + len(extras) + pooled > max_frames:
        excess = n_full + len(extras) + pooled - max_frames
        affordable = [e for e in range(1, hi + 1) if levels[e].tokens <= pooled]
        if not affordable:
            return None
        e = next((e for e in affordable if levels[e].tokens - POOLED_TOKENS >= excess), affordable[-1])
        extras.append(e)
        pooled -= levels[e].tokens
    return extras, pooled


def _skim(p: _Problem, picks: list[tuple[float, int]], regions: Sequence[tuple[float, float]], ratio: float,
          max_frames: int | None) -> tuple[list[_Slot], list[str]]:
    """Skim the video with one-token pooled frames and look at the anchors with full ones: a few full frames at
    the anchors, every other token a pooled frame, ``ratio`` times denser in the anchor regions; exactly
    ``p.target`` tokens (pooled frames are one-token coins, so any total is reachable).

    The anchors take the largest full level that leaves at least one pooled frame per other uniform slot (the
    uniform plan's coverage); when the pooled frames would outnumber the frames the video holds (``max_frames``),
    full context frames (no larger than the anchors') take their tokens, evenly spread, until they fit; the density
    ratio is lowered where it would ask for more frames per second than the video has.
    """
    from .costs import POOLED_TOKENS

    levels = p.levels
    if len(levels) < 2 or levels[0].tokens != POOLED_TOKENS or levels[1].tokens <= POOLED_TOKENS:
        raise ConfigError("the skim strategy needs a model with pooled frames beside full ones: "
                          "pooled-1+MODEL (e.g. pooled-1+vit-p16)")
    n_full = len(picks)
    notes: list[str] = []
    coverage = max(p.slots - n_full, 0)
    fits = [i for i in range(1, len(levels)) if n_full * levels[i].tokens <= p.target - coverage]
    if not fits:
        fits = [i for i in range(1, len(levels)) if n_full * levels[i].tokens <= p.target]
        if not fits:
            raise ConfigError(f"the target of {p.target} tokens cannot pay for {n_full} full frames at the anchors "
                              f"({levels[1].tokens} tokens each at the least)")
        notes.append("skim: the full anchor frames leave fewer pooled frames than the uniform plan has slots")
    for hi in sorted(fits, reverse=True):  # the largest anchor frames whose remainder the video can hold
        laid = _pooled_layout(levels, hi, n_full, p.target - n_full * levels[hi].tokens, max_frames)
        if laid is not None:
            extras, pooled = laid
            break
    else:
        raise ConfigError(f"a skim plan of {p.target} tokens needs more frames than the video holds "
                          f"({max_frames}): plan fewer tokens or another strategy")
    total = n_full + len(extras) + pooled
    inside = _union_length(regions, p.duration_s)
    if max_frames is not None and regions and inside < p.duration_s and ratio > 1:
        fps = max_frames / p.duration_s
        if total > fps * inside:  # the region's share would outrun the video's frame rate
            most = fps * (p.duration_s - inside) / (total - fps * inside)
            if most < ratio:
                notes.append(f"skim: frames {most:.2f}x (not {ratio:g}x) denser in anchor regions: the video "
                             f"holds {fps:.3g} frames a second")
                ratio = max(1.0, most)
    times = density_times(p.duration_s, total, regions, ratio)
    free = list(range(total))
    slots: dict[int, _Slot] = {}
    for rank, (t, a) in enumerate(picks):
        # The nearest planned time moves onto the anchor: it lies between that time's neighbours, so order holds.
        j = min(free, key=lambda i: (abs(times[i] - t), i))
        free.remove(j)
        times[j] = _t(t)
        slots[j] = _Slot([times[j]], hi, "anchor", a, priority=rank)
    for e, j in zip(extras, [free[i] for i in uniform_indices(len(free), len(extras))] if extras else []):
        free.remove(j)
        slots[j] = _Slot([times[j]], e, "context")
    for j in free:
        a = next((i for _, i in picks if regions[i][0] <= times[j] < regions[i][1]), None)
        slots[j] = _Slot([times[j]], 0, "anchor" if a is not None else "context", a)
    lv = levels[hi]
    notes.append(f"skim: {n_full} full frames at the anchors ({lv.width}x{lv.height}, {lv.tokens} tokens), "
                 f"{len(extras)} full context frames, {pooled} pooled one-token frames")
    return [slots[j] for j in range(total)], notes


STRATEGIES = ("uniform", "anchored", "dense-at-anchors", "random", "oracle", "fixed-spread", "skim")
SHAPES = ("anchored", "dense", "skim")


# --------------------------------------------------------------------------------------------- anchors per strategy


def random_anchors(duration_s: float, slot_centres: Sequence[float], k: int, seed: int) -> list[Anchor]:
    """K distinct slots drawn with ``seed``: the anchored shape at random moments."""
    rng = np.random.default_rng(seed)
    picks = sorted(int(i) for i in rng.choice(len(slot_centres), size=k, replace=False))
    spacing = duration_s / len(slot_centres)
    return [Anchor(index=i, time_s=slot_centres[i], start_s=_t(max(0.0, slot_centres[i] - spacing / 2)),
                   end_s=_t(min(duration_s, slot_centres[i] + spacing / 2)), score=0.0, confidence=0.0,
                   source="random") for i in picks]


def spread_anchors(duration_s: float, slot_centres: Sequence[float], k: int) -> list[Anchor]:
    """The fixed-spread baseline: K slots evenly spaced over the video (where the anchors fall back to when no
    window stands out), chosen without reading the audio or the picture: the anchored shape with no index."""
    spacing = duration_s / len(slot_centres)
    return [Anchor(index=i, time_s=slot_centres[i], start_s=_t(max(0.0, slot_centres[i] - spacing / 2)),
                   end_s=_t(min(duration_s, slot_centres[i] + spacing / 2)), score=0.0, confidence=0.0,
                   source="spread") for i in uniform_indices(len(slot_centres), k)]


def oracle_anchors(duration_s: float, slot_centres: Sequence[float], k: int,
                   truth: Sequence[tuple[float, float]]) -> list[Anchor]:
    """K slots inside the ground-truth intervals, spread evenly over them (nearest outside ones if too few)."""
    if not truth:
        raise ConfigError("the oracle strategy needs ground-truth event intervals (--truth)")
    inside = [i for i, c in enumerate(slot_centres) if any(s <= c < e for s, e in truth)]
    if len(inside) >= k:
        picks = [inside[int((j + 0.5) * len(inside) / k)] for j in range(k)]
    else:
        def gap(i: int) -> float:
            return min(max(s - slot_centres[i], slot_centres[i] - e, 0.0) for s, e in truth)
        rest = sorted((i for i in range(len(slot_centres)) if i not in inside), key=lambda i: (gap(i), i))
        picks = sorted([*inside, *rest[:k - len(inside)]])
    spacing = duration_s / len(slot_centres)
    return [Anchor(index=i, time_s=slot_centres[i], start_s=_t(max(0.0, slot_centres[i] - spacing / 2)),
                   end_s=_t(min(duration_s, slot_centres[i] + spacing / 2)), score=1.0, confidence=1.0,
                   source="oracle") for i in picks]


# --------------------------------------------------------------------------------------------- plan


def default_aspect(model: CostModel) -> str:
    return "keep" if len(model.levels(16, 9)) != len(model.levels(1, 1)) or model.name.startswith(
        ("qwen", "internvl")) else "square"


def plan_frames(model: CostModel, duration_s: float, width: int, height: int, budget: int, strategy: str,
                anchors: Sequence[Anchor] = (), *, frames: int, k: int | None = None, ratio: float = 4.0,
                aspect: str = "keep", seed: int = 0, truth: Sequence[tuple[float, float]] = (),
                shape: str | None = None, upscale: bool = True,
                max_frames: int | None = None) -> tuple[int, list[PlannedFrame], list[Anchor], list[str]]:
    """The pure core of :func:`plan`: (target tokens, planned frames, anchors used, notes) for plain numbers.

    ``anchors`` place the anchored and dense strategies; ``random``, ``oracle`` and ``fixed-spread`` draw ``k``
    (default ``len(anchors)``) slots of their own and take the ``shape`` of ``anchored`` (more pixels) or
    ``dense`` (more frames); by default anchored, or dense for models whose frames all cost the same; ``skim``
    is the ``skim`` strategy's shape (``pooled-1+MODEL``: full frames at the anchors, one-token frames elsewhere,
    at most ``max_frames`` frames in all: the frames the video holds).
    """
    if strategy not in STRATEGIES:
        raise unknown_name("strategy", strategy, STRATEGIES)
    if aspect not in ASPECTS:
        raise unknown_name("aspect", aspect, ASPECTS)
    if frames < 1:
        raise ConfigError(f"frames must be >= 1, got {frames}")
    if not ratio >= 1:
        raise ConfigError(f"ratio must be >= 1, got {ratio}")
    if budget < 1:
        raise ConfigError(f"budget must be a positive number of tokens, got {budget}")
    per_slot = model.frames_per_group
    n_slots = max(1, round(frames / per_slot))
    levels = model.levels(width, height, square=(aspect == "square"))
    capped: list[str] = []
    if not upscale:
        every = len(levels)
        levels = source_levels(levels, width, height, aspect == "square")
        if len(levels) < every:
            capped.append(f"frames are capped at the source picture ({width}x{height}): larger sizes would buy "
                          f"interpolated pixels (upscale=True, --upscale, allows them)")
    if capped and len(levels) < 2 and strategy == "anchored":
        capped.append("the source is too small for anchor frames larger than the others: anchors get more frames "
                      "instead (the dense-at-anchors shape)")
        strategy = "dense-at-anchors"
    shape = shape or ("anchored" if len(levels) > 1 else "dense")
    if shape not in SHAPES:
        raise unknown_name("shape", shape, SHAPES)
    u = uniform_level(levels, n_slots, budget)
    if u < 0:
        minimum = n_slots * levels[0].tokens
        lv = levels[0]
        raise BudgetTooSmallError(
            f"budget {budget} tokens is too small: {n_slots * per_slot} frames at the smallest legal size for "
            f"{model.name} ({lv.width}x{lv.height}, {lv.tokens} tokens{' per frame pair' if per_slot > 1 else ''}) "
            f"need at least {minimum}; raise the budget or plan fewer frames (at most "
            f"{max(1, budget // lv.tokens) * per_slot if budget >= lv.tokens else 0})", minimum)
    target = n_slots * levels[u].tokens
    problem = _Problem(duration_s, levels, n_slots, per_slot, target, u)
    centres = [float(np.mean(g)) for g in _group_times(slot_times(duration_s, n_slots * per_slot), per_slot)]

    k = len(anchors) if k is None else k
    skim = strategy == "skim" or (shape == "skim" and strategy in ("random", "oracle", "fixed-spread"))
    dense = skim or strategy == "dense-at-anchors" or (shape == "dense" and strategy in ("random", "oracle",
                                                                                          "fixed-spread"))
    fits = n_slots if dense else n_slots - 1  # the anchored shape keeps at least one context frame
    if strategy != "uniform" and max(k, len(anchors)) > fits:
        capped.append(f"{max(k, len(anchors))} anchors do not fit {n_slots} planned "
                      f"{'slot' if n_slots == 1 else 'slots'}{'' if dense else ' with a context frame beside them'}: "
                      f"{'kept the best ' + str(fits) if fits else 'planned the frame uniformly'}")
        k = min(k, fits)
        anchors = sorted(anchors, key=lambda a: (-a.score, a.time_s))[:fits]
    used: list[Anchor] = {
        "uniform": lambda: [],
        "random": lambda: random_anchors(duration_s, centres, k, seed),
        "oracle": lambda: oracle_anchors(duration_s, centres, k, truth),
        "fixed-spread": lambda: spread_anchors(duration_s, centres, k),
    }.get(strategy, lambda: list(anchors))()
    # Anchors claim slots best first (ties: earlier), so the strongest keeps its moment.
    picks = [(a.time_s, i) for i, a in sorted(enumerate(used), key=lambda x: (-x[1].score, x[1].time_s))]
    notes: list[str] = []
    if strategy == "uniform":
        slots = _uniform(problem)
    elif skim:
        slots, notes = _skim(problem, picks, [(a.start_s, a.end_s) for a in used], ratio, max_frames)
    elif strategy == "dense-at-anchors" or (shape == "dense" and strategy in ("random", "oracle", "fixed-spread")):
        slots = _dense(problem, [(a.start_s, a.end_s) for a in used], ratio)
    else:
        slots, notes = _anchored(problem, picks, ratio)

    out: list[PlannedFrame] = []
    for g, s in enumerate(sorted(slots, key=lambda s: s.times[0])):
        lv = levels[s.level]
        for j, t in enumerate(s.times):
            out.append(PlannedFrame(time_s=t, width=lv.width, height=lv.height, tokens=lv.tokens if j == 0 else 0,
                                    role=s.role, anchor=s.anchor, tiles=lv.tiles, group=g))
    out.sort(key=lambda f: f.time_s)
    times = [f.time_s for f in out]
    if len(set(times)) != len(times):
        raise ConfigError(f"{len(out)} frames over {duration_s:.3f} s put two frames at the same time: plan "
                          f"fewer frames")
    return target, out, used, capped + notes


def plan(source, model: str | CostModel, budget: int, strategy: str = "anchored", *,
         config: PlanConfig | None = None, truth: Sequence[tuple[float, float]] = (), **overrides: Any) -> Plan:
    """Plan ``budget`` visual tokens of ``model`` over a video, by ``strategy``.

    ``source`` is an :class:`~earmark.IndexResult` (from ``earmark.index`` or a saved index JSON).

    >>> res = earmark.index("clip.mp4")                                          # doctest: +SKIP
    >>> p = earmark.plan(res, "vit-p16", 1960, "anchored", k=2)                  # doctest: +SKIP
    >>> [(f.width, f.tokens) for f in p.frames][:3], p.total_tokens             # doctest: +SKIP
    ([(112, 49), (448, 784), (112, 49)], 1960)

    Strategies: ``uniform``, ``anchored`` (anchor frames ``ratio`` times the side of the others),
    ``dense-at-anchors`` (``ratio`` times the frame rate inside anchor regions), ``random`` (the anchored
    shape at seeded random slots), ``oracle`` (anchors inside the ``truth`` intervals), ``fixed-spread`` (the
    anchored shape at K evenly spaced slots: the baseline that reads no audio, so anchored minus fixed-spread is
    what the index adds).
    """
    try:
        return _plan(source, model, budget, strategy, config, truth, overrides)
    except ConfigError as e:  # every error names its file
        path = source.info.path
        if e.args and isinstance(e.args[0], str) and not e.args[0].startswith(f"{path}: "):
            e.args = (f"{path}: {e.args[0]}", *e.args[1:])
        raise


def _plan(source, model: str | CostModel, budget: int, strategy: str, config: PlanConfig | None,
          truth: Sequence[tuple[float, float]], overrides: dict[str, Any]) -> Plan:
    cfg = replace(config or PlanConfig(), strategy=strategy, **overrides)
    cm = cost_model(model) if isinstance(model, str) else model
    info, timeline = source.info, source.timeline
    if info.video is None:
        raise NoVideoStreamError(info.path, "no video stream to plan frames from")
    width, height = display_size(info.video.width, info.video.height, info.video.rotation)
    duration = timeline.duration_s
    aspect = cfg.aspect or default_aspect(cm)
    auto_note = None
    if cfg.seed < 0:
        raise ConfigError(f"seed must be >= 0, got {cfg.seed}")
    if cfg.frames is not None:
        n_frames = cfg.frames
        held = held_frames(duration, info.video.fps_average or info.video.fps_nominal)
        if held is not None and n_frames > held:
            raise ConfigError(f"--frames {n_frames}, but the video holds {held} frames ({duration:.3f} s at "
                              f"{info.video.fps_average or info.video.fps_nominal:g} fps)")
    else:  # one per window at most (and at most DEFAULT_MAX_FRAMES), as many as spend the budget well
        most = min(len(timeline), DEFAULT_MAX_FRAMES)
        levels = cm.levels(width, height, square=(aspect == "square"))
        if not cfg.upscale:
            levels = source_levels(levels, width, height, aspect == "square")
        least = min(most, 2 * cfg.k + 2) if strategy != "uniform" else 1
        n_frames = auto_frame_count(levels, cm.frames_per_group, most, budget, least)
        if n_frames < most:
            auto_note = (f"{n_frames} frames (not one per window, {most}): the most frames whose uniform plan spends "
                         f">= {AUTO_FILL:.0%} of the budget at frames >= {AUTO_MIN_SIDE} px; --frames N overrides")
    if cfg.k < 0:
        raise ConfigError(f"k must be >= 0, got {cfg.k}")
    k_note = None
    if cfg.k > len(timeline):  # a short video: the anchors it holds
        k_note = (f"k={cfg.k} anchors asked for, but the video holds {len(timeline)} "
                  f"window{'s' if len(timeline) != 1 else ''} of {timeline.hop_s:g} s: k={len(timeline)}")
        cfg = replace(cfg, k=len(timeline))
    fit = cfg.fit or ("stretch" if aspect == "keep" else "pad")
    if fit not in FITS:
        raise unknown_name("fit", fit, FITS)
    found: Sequence[Anchor] = ()
    # The index's anchor settings (mode, gap, dilation, offset) hold; only K comes from the plan.
    stored = {k: v for k, v in source.anchor_config.items() if k in AnchorConfig.__dataclass_fields__}
    anchor_settings = AnchorConfig(**{**stored, "k": cfg.k}).to_dict()
    if strategy in ("anchored", "dense-at-anchors", "skim") and cfg.k > 0:
        if len(source.anchors) == cfg.k:  # the index's own anchors, as chosen and saved
            found = source.anchors
        else:
            found = choose(timeline, k=cfg.k, config=AnchorConfig(**stored))
    target, frames, used, notes = plan_frames(cm, duration, width, height, budget, strategy, found,
                                              frames=n_frames, k=cfg.k, ratio=cfg.ratio, aspect=aspect,
                                              seed=cfg.seed, truth=truth, shape=cfg.shape, upscale=cfg.upscale,
                                              max_frames=held_frames(duration, info.video.fps_average or
                                                                     info.video.fps_nominal))
    notes = [n for n in (auto_note, k_note) if n] + notes
    if any(a.source == "fallback" for a in used):
        notes.append("no window stood out in the audio: anchors were spread uniformly (fallback)")
    if budget > target:
        # (A skim plan plans more frames than the uniform plan it is held to: name the uniform plan's count.)
        shown = n_frames if strategy == "skim" else len(frames)
        notes.append(f"uniform sampling of {shown} frames spends {target} of the {budget} tokens; "
                     f"every strategy is held to {target}")
    return Plan(video=PlanVideo(info.path, info.fingerprint, duration, width, height), model=cm.name,
                strategy=strategy, budget=int(budget), target_tokens=target, frames=tuple(frames),
                anchors=tuple(used), seed=cfg.seed if strategy == "random" else None,
                config={**cfg.to_dict(), "aspect": aspect, "fit": fit, "frames": n_frames,
                        "probe": timeline.probe, "anchor_settings": anchor_settings, **_question_record(timeline)},
                fit=fit, notes=tuple(notes))


def _question_record(timeline: Any) -> dict[str, Any]:
    """``{"question": ...}`` when the index was conditioned on a question (``earmark.index.condition_on_question``:
    the question, alpha, normalisation and model), else nothing, so other plans are unchanged."""
    q = timeline.probe_config.get("question") if isinstance(timeline.probe_config, dict) else None
    return {"question": q} if q is not None else {}


def held_frames(duration_s: float, fps: float | None) -> int | None:
    """How many distinct frames a video of ``duration_s`` at ``fps`` holds (None: frame rate unknown); a plan
    may not ask for more (each frame decoded, every planned time distinct).

    >>> held_frames(10.0, 25.0), held_frames(0.2, 25.0), held_frames(10.0, None)
    (250, 5, None)
    """
    if not fps or fps <= 0:
        return None
    return max(1, int(round(duration_s * fps)))


def budget_sweep(model: str | CostModel, width: int, height: int, frames: int, aspect: str = "keep",
                 limit: int | None = None) -> list[int]:
    """The budgets at which uniform sampling of ``frames`` frames changes size: the points of a curve."""
    cm = cost_model(model) if isinstance(model, str) else model
    n_slots = max(1, round(frames / cm.frames_per_group))
    out = [n_slots * lv.tokens for lv in cm.levels(width, height, square=(aspect == "square"))]
    return [b for b in out if limit is None or b <= limit]


def plan_sweep(source, model: str | CostModel, budgets: Iterable[int], strategies: Iterable[str] = STRATEGIES[:2],
               **kwargs: Any) -> dict[tuple[str, int], Plan]:
    """Plans for every (strategy, budget): the input of an accuracy-token curve."""
    budgets = list(budgets)
    return {(s, b): plan(source, model, b, s, **kwargs) for s in strategies for b in budgets}

