"""Equal-token arithmetic: small pure functions on numbers (frame counts, slot times, ladder levels, exact fills).

Nothing here knows a video or a strategy: :mod:`earmark.budget.strategies` lays frames out with these, and
:func:`earmark.budget.planner.plan` wires them to a Timeline and a cost model. Each can be read and tested alone
(as qwen-vl-utils' ``smart_resize`` can).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np

from .costs import Level

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
    """Centres of ``n`` equal parts of ``[0, duration)``: one per second for n == duration.

    >>> slot_times(10.0, 4)
    [1.25, 3.75, 6.25, 8.75]
    """
    return [round_time((i + 0.5) * duration_s / n) for i in range(n)]


def round_time(x: float) -> float:
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

    >>> exact_fill([(3, [10, 25]), (2, [7])], 44)  # three slots that can gain 10 or 25, two that can gain 7
    (44, [[10, 10, 10], [7, 7]])
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

    >>> density_times(10.0, 6, [(4.0, 6.0)], 4.0)  # four times as many frames per second in 4-6 s
    [1.333333, 4.0, 4.666667, 5.333333, 6.0, 8.666667]
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
        out.append(round_time(a + (q - cum[j]) / d))
    return out


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


def union_length(regions: Sequence[tuple[float, float]], duration_s: float) -> float:
    """Seconds of ``[0, duration)`` inside at least one region."""
    total, end = 0.0, 0.0
    for a, b in sorted((max(0.0, a), min(duration_s, b)) for a, b in regions):
        if b > max(a, end):
            total += b - max(a, end)
            end = b
    return total


def held_frames(duration_s: float, fps: float | None) -> int | None:
    """How many distinct frames a video of ``duration_s`` at ``fps`` holds (None: frame rate unknown); a plan
    may not ask for more (each frame decoded, every planned time distinct).

    >>> held_frames(10.0, 25.0), held_frames(0.2, 25.0), held_frames(10.0, None)
    (250, 5, None)
    """
    if not fps or fps <= 0:
        return None
    return max(1, int(round(duration_s * fps)))
