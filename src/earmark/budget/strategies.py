"""Strategies: where a plan's anchors come from and how its tokens are laid out around them, one rule per name.

A strategy is a :data:`Strategy` name and a :class:`StrategyRule` in :data:`STRATEGY_RULES`: its anchors (the
index's, none, or drawn without reading the audio: random, oracle, fixed-spread) and its layout of slots over the
video (:data:`LAYOUTS`: ``uniform``, ``anchored`` larger frames at anchors, ``dense`` more frames near them,
``skim`` one-token pooled frames beside full ones). Strategies that draw their own anchors take the plan's
:data:`Shape` as their layout. :func:`earmark.budget.planner.plan_frames` picks the rule and runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np

from ..anchors import uniform_indices
from ..errors import ConfigError
from ..types import Anchor, AnchorSource, FrameRole
from .arithmetic import (
    anchored_levels,
    density_times,
    exact_fill,
    hi_level_for,
    nearest_total,
    round_time,
    slot_times,
    union_length,
)
from .costs import POOLED_TOKENS, Level

Strategy = Literal["uniform", "anchored", "dense-at-anchors", "random", "oracle", "fixed-spread", "skim"]
"""How a plan spends its tokens (see :func:`earmark.plan`)."""
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
Shape = Literal["anchored", "dense", "skim"]
"""The layout of the strategies that draw their own anchors (random, oracle, fixed-spread): more pixels at the
anchors, more frames near them, or pooled frames beside full ones."""
SHAPES: tuple[Shape, ...] = get_args(Shape)
Layout = Literal["uniform", "anchored", "dense", "skim"]
"""How slots are laid out over the video: every :data:`Shape`, and uniform."""
Picks = list[tuple[float, int]]
"""(time, index into the anchors) of each anchor, best first: the order in which anchors claim slots."""
Regions = Sequence[tuple[float, float]]
"""``[start, end)`` of each anchor's region, seconds."""


@dataclass
class Slot:
    """A planning unit: one frame, or a group of frames the model charges together (Qwen video pairs)."""

    times: list[float]
    level: int
    role: FrameRole = "uniform"
    anchor: int | None = None
    priority: float = 0.0


@dataclass(frozen=True)
class Problem:
    """What every layout plans for: the video's length, the ladder of legal sizes, and the equal-token target
    (``slots`` slots of ``per_slot`` frames, uniform sampling at level ``uniform`` spending ``target`` tokens)."""

    duration_s: float
    levels: tuple[Level, ...]
    slots: int
    per_slot: int
    target: int
    uniform: int


def group_times(times: list[float], per_slot: int) -> list[list[float]]:
    """``times`` in groups of ``per_slot`` (the frames a model charges together)."""
    return [times[i:i + per_slot] for i in range(0, len(times), per_slot)]


def _pair_around(t: float, spacing: float, per_slot: int, duration_s: float) -> list[float]:
    """``per_slot`` frame times centred on ``t`` (one frame: ``t`` itself), kept inside the video."""
    last = duration_s - 1e-6  # the latest time that stays before the end once rounded to the microsecond
    if per_slot == 1:
        return [round_time(min(max(t, 0.0), last))]
    offsets = [(j - (per_slot - 1) / 2) * spacing for j in range(per_slot)]
    lo = min(t + o for o in offsets)
    hi = max(t + o for o in offsets)
    shift = max(0.0, -lo) - max(0.0, hi - last)
    return [round_time(t + o + shift) for o in offsets]


def _uniform(p: Problem, picks: Picks, regions: Regions, ratio: float, max_frames: int | None
             ) -> tuple[list[Slot], list[str]]:
    """Every slot at the uniform level, evenly spaced: the plan that sets the target."""
    times = slot_times(p.duration_s, p.slots * p.per_slot)
    return [Slot(g, p.uniform) for g in group_times(times, p.per_slot)], []


def _claim_slots(p: Problem, picks: Picks) -> list[Slot]:
    """Anchor slots at the anchors' times; context slots spread evenly over the rest of the video.

    Each anchor keeps a slot's width of video to itself, so with one slot per window and anchors on window
    centres the context frames stay on the remaining window centres (the seed protocol's layout).
    """
    width = p.duration_s / p.slots
    slots = [Slot(_pair_around(t, width / p.per_slot, p.per_slot, p.duration_s), 0, "anchor", a, priority=rank)
             for rank, (t, a) in enumerate(picks)]
    taken = [(t - width / 2, t + width / 2) for t, _ in picks]
    for centre in density_times(p.duration_s, p.slots - len(picks), taken, 0.0):
        near = min((abs(centre - t) for t, _ in picks), default=0.0)
        slots.append(Slot(_pair_around(centre, width / p.per_slot, p.per_slot, p.duration_s), 0, "context", None,
                           priority=near))
    return slots


def _anchored(p: Problem, picks: Picks, regions: Regions, ratio: float, max_frames: int | None
              ) -> tuple[list[Slot], list[str]]:
    """Anchor frames ``ratio`` times the side of the context frames, evened out to the target."""
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


def _fill(p: Problem, slots: list[Slot], cap: int) -> None:
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


def _upgrade_only(p: Problem, slots: list[Slot], cap: int) -> None:
    """Large plans: spend the leftover by upgrading slots (anchors first, then those nearest to anchors)."""
    spent = sum(p.levels[s.level].tokens for s in slots)
    groups: dict[int, list[Slot]] = {}
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


def _dense(p: Problem, picks: Picks, regions: Regions, ratio: float, max_frames: int | None
           ) -> tuple[list[Slot], list[str]]:
    """Every frame at the uniform size, ``ratio`` times more of them per second inside anchor regions."""
    times = density_times(p.duration_s, p.slots * p.per_slot, regions, ratio)
    slots = []
    for g in group_times(times, p.per_slot):
        inside = next((i for i, (s, e) in enumerate(regions) if any(s <= t < e for t in g)), None)
        slots.append(Slot(g, p.uniform, "anchor" if inside is not None else "context", inside))
    return slots, []


def _pooled_layout(levels: Sequence[Level], hi: int, n_full: int, pooled: int, max_frames: int | None
                   ) -> tuple[list[int], int] | None:
    """(levels of full context frames, pooled frames) spending ``pooled`` tokens in at most ``max_frames`` frames
    besides ``n_full`` anchor frames, or None. Pooled frames are traded for full context frames (no larger than
    the anchors' level ``hi``) while too many: each the smallest that makes the rest fit, else the largest
    affordable, so few are added and the most pooled frames stay."""
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


def _skim(p: Problem, picks: Picks, regions: Regions, ratio: float, max_frames: int | None
          ) -> tuple[list[Slot], list[str]]:
    """Skim the video with one-token pooled frames and look at the anchors with full ones: a few full frames at
    the anchors, every other token a pooled frame, ``ratio`` times denser in the anchor regions; exactly
    ``p.target`` tokens (pooled frames are one-token coins, so any total is reachable).

    The anchors take the largest full level that leaves at least one pooled frame per other uniform slot (the
    uniform plan's coverage); when the pooled frames would outnumber the frames the video holds (``max_frames``),
    full context frames (no larger than the anchors') take their tokens, evenly spread, until they fit; the density
    ratio is lowered where it would ask for more frames per second than the video has.
    """
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
    inside = union_length(regions, p.duration_s)
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
    slots: dict[int, Slot] = {}
    for rank, (t, a) in enumerate(picks):
        # The nearest planned time moves onto the anchor: it lies between that time's neighbours, so order holds.
        j = min(free, key=lambda i: (abs(times[i] - t), i))
        free.remove(j)
        times[j] = round_time(t)
        slots[j] = Slot([times[j]], hi, "anchor", a, priority=rank)
    for e, j in zip(extras, [free[i] for i in uniform_indices(len(free), len(extras))] if extras else []):
        free.remove(j)
        slots[j] = Slot([times[j]], e, "context")
    for j in free:
        a = next((i for _, i in picks if regions[i][0] <= times[j] < regions[i][1]), None)
        slots[j] = Slot([times[j]], 0, "anchor" if a is not None else "context", a)
    lv = levels[hi]
    notes.append(f"skim: {n_full} full frames at the anchors ({lv.width}x{lv.height}, {lv.tokens} tokens), "
                 f"{len(extras)} full context frames, {pooled} pooled one-token frames")
    return [slots[j] for j in range(total)], notes


LayoutFn = Callable[[Problem, Picks, Regions, float, int | None], tuple[list[Slot], list[str]]]
LAYOUTS: dict[Layout, LayoutFn] = {"uniform": _uniform, "anchored": _anchored, "dense": _dense, "skim": _skim}
"""Each layout: (problem, anchor picks, anchor regions, ratio, frames the video holds) -> (slots, notes)."""


# --------------------------------------------------------------------------------------------- anchors per strategy


def _slot_anchors(duration_s: float, slot_centres: Sequence[float], picks: Sequence[int], score: float,
                  source: AnchorSource) -> list[Anchor]:
    """Anchors at the slots ``picks``, each over its slot's width of video, with ``score`` as score and confidence."""
    spacing = duration_s / len(slot_centres)
    return [Anchor(index=i, time_s=slot_centres[i], start_s=round_time(max(0.0, slot_centres[i] - spacing / 2)),
                   end_s=round_time(min(duration_s, slot_centres[i] + spacing / 2)), score=score, confidence=score,
                   source=source) for i in picks]


def random_anchors(duration_s: float, slot_centres: Sequence[float], k: int, seed: int) -> list[Anchor]:
    """K distinct slots drawn with ``seed``: the anchored shape at random moments."""
    rng = np.random.default_rng(seed)
    picks = sorted(int(i) for i in rng.choice(len(slot_centres), size=k, replace=False))
    return _slot_anchors(duration_s, slot_centres, picks, 0.0, "random")


def spread_anchors(duration_s: float, slot_centres: Sequence[float], k: int) -> list[Anchor]:
    """The fixed-spread baseline: K slots evenly spaced over the video (where the anchors fall back to when no
    window stands out), chosen without reading the audio or the picture: the anchored shape with no index."""
    return _slot_anchors(duration_s, slot_centres, uniform_indices(len(slot_centres), k), 0.0, "spread")


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
    return _slot_anchors(duration_s, slot_centres, picks, 1.0, "oracle")


@dataclass(frozen=True)
class Draw:
    """What a strategy may place its anchors by: the video's length, the uniform slots' centres, how many anchors,
    the seed, the ground truth (oracle) and the index's own anchors."""

    duration_s: float
    centres: Sequence[float]
    k: int
    seed: int
    truth: Sequence[tuple[float, float]]
    found: Sequence[Anchor]


@dataclass(frozen=True)
class StrategyRule:
    """How one strategy plans: where its anchors come from and the layout of its tokens."""

    anchors: Callable[[Draw], list[Anchor]]
    layout: Layout | None
    """None: the plan's ``shape`` (the strategies that draw their own anchors)."""
    reads_index: bool = False
    """Its anchors are the index's (chosen from the audio), so the planner asks the index for ``k`` of them."""
    seeded: bool = False
    """Its plan depends on the seed (recorded in the plan)."""
    needs_truth: bool = False
    """Its anchors are the labelled events (``truth``): an evaluation reference, not something a user plans with."""


def _no_anchors(d: Draw) -> list[Anchor]:
    return []


def _index_anchors(d: Draw) -> list[Anchor]:
    return list(d.found)


def _random_draw(d: Draw) -> list[Anchor]:
    return random_anchors(d.duration_s, d.centres, d.k, d.seed)


def _oracle_draw(d: Draw) -> list[Anchor]:
    return oracle_anchors(d.duration_s, d.centres, d.k, d.truth)


def _spread_draw(d: Draw) -> list[Anchor]:
    return spread_anchors(d.duration_s, d.centres, d.k)


STRATEGY_RULES: dict[Strategy, StrategyRule] = {
    "uniform": StrategyRule(_no_anchors, "uniform"),
    "anchored": StrategyRule(_index_anchors, "anchored", reads_index=True),
    "dense-at-anchors": StrategyRule(_index_anchors, "dense", reads_index=True),
    "random": StrategyRule(_random_draw, None, seeded=True),
    "oracle": StrategyRule(_oracle_draw, None, needs_truth=True),
    "fixed-spread": StrategyRule(_spread_draw, None),
    "skim": StrategyRule(_index_anchors, "skim", reads_index=True),
}
"""Every :data:`Strategy`'s rule, in :data:`STRATEGIES` order."""
PLANNING_STRATEGIES: tuple[Strategy, ...] = tuple(s for s in STRATEGIES if not STRATEGY_RULES[s].needs_truth)
"""The strategies that plan from a video alone (every one but those that read labelled events)."""
