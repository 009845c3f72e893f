"""Equal-token planning: turn anchors and a token budget into the frames (times, sizes) a model will see.

:func:`plan` wires a Timeline, a cost model and a strategy to the pure pieces: the arithmetic on numbers
(:mod:`earmark.budget.arithmetic`: ``slot_times``, ``uniform_level``, ``anchored_levels``, ``exact_fill``,
``density_times``) and the strategies' rules and layouts (:mod:`earmark.budget.strategies`). The equal-token rule:
uniform sampling of N frames at the largest size the budget affords sets the target; every other strategy spends
exactly that many tokens where the cost model's ladder of legal sizes allows it, otherwise the closest total below
it (``Plan.shortfall``). :func:`budget_sweep` and :func:`plan_sweep` give the points of an accuracy-token curve.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import numpy as np

from ..anchors import AnchorConfig
from ..anchors import anchors as choose
from ..errors import ConfigError, NoVideoStreamError, unknown_name
from ..media.frames import display_size
from ..types import FITS, Anchor, Fit, Plan, PlannedFrame, PlanVideo
from .arithmetic import (
    AUTO_FILL,
    AUTO_MIN_SIDE,
    anchored_levels,
    auto_frame_count,
    density_times,
    exact_fill,
    held_frames,
    hi_level_for,
    nearest_total,
    slot_times,
    source_levels,
    uniform_level,
)
from .costs import CostModel, PooledCost, cost_model
from .strategies import (
    FILL_TABLE_LIMIT,
    FILL_WINDOW,
    LAYOUTS,
    SHAPES,
    STRATEGIES,
    STRATEGY_RULES,
    Draw,
    Problem,
    Shape,
    Strategy,
    group_times,
    oracle_anchors,
    random_anchors,
    spread_anchors,
)

__all__ = [
    "ASPECTS", "AUTO_FILL", "AUTO_MIN_SIDE", "DEFAULT_MAX_FRAMES", "FILL_TABLE_LIMIT", "FILL_WINDOW", "FITS", "SHAPES",
    "STRATEGIES", "Aspect", "BudgetTooSmallError", "Fit", "PlanConfig", "Shape", "Strategy", "anchored_levels",
    "auto_frame_count", "budget_sweep", "check_request", "default_aspect", "density_times", "exact_fill", "held_frames",
    "hi_level_for", "nearest_total", "oracle_anchors", "plan", "plan_frames", "plan_sweep", "random_anchors",
    "slot_times", "source_levels", "spread_anchors", "uniform_level",
]

DEFAULT_MAX_FRAMES = 64
"""Default frame count when none is given: one per timeline window, at most this many (video-LLMs take 8-64)."""

Aspect = Literal["keep", "square"]
"""Plan frames with the picture's aspect kept, or square frames."""
ASPECTS: tuple[Aspect, ...] = get_args(Aspect)


class BudgetTooSmallError(ConfigError):
    """The budget cannot pay for the cheapest legal plan; ``minimum`` says what would."""

    def __init__(self, message: str, minimum: int) -> None:
        self.minimum = minimum
        super().__init__(message)


@dataclass(frozen=True)
class PlanConfig:
    """Everything that shapes a plan besides the video, the model and the budget."""

    strategy: Strategy = "anchored"
    k: int = 2
    """Anchors (high-resolution slots or dense regions)."""
    frames: int | None = None
    """Frames to plan; default one per timeline window, at most DEFAULT_MAX_FRAMES."""
    ratio: float = 4.0
    """``anchored``: side of an anchor frame / side of a context frame (448/112 = 4).
    ``dense-at-anchors``: frames per second inside anchor regions / outside."""
    aspect: Aspect | None = None
    """``keep`` the picture's aspect or plan ``square`` frames; default: square for ViT-like and fixed-cost
    models, keep for Qwen-VL and InternVL."""
    fit: Fit | None = None
    """How extraction maps the picture onto a planned size: pad, crop, stretch (default: stretch when
    the aspect is kept, pad for square frames)."""
    seed: int = 0
    upscale: bool = False
    """Allow frames larger than the source picture. Off by default: tokens buy pixels, and an upscaled frame buys
    interpolated ones (sizes are capped at the largest legal size at or below the source, see
    :func:`source_levels`). The eval protocol turns it on to keep its fixed 448/224/112 shapes on small videos."""
    shape: Shape | None = None
    """Shape of ``random``, ``oracle`` and ``fixed-spread`` plans: ``anchored`` (more pixels) or ``dense`` (more
    frames); default anchored, or dense for models whose frames all cost the same."""

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "k": self.k, "frames": self.frames, "ratio": self.ratio,
                "aspect": self.aspect, "fit": self.fit, "seed": self.seed, "shape": self.shape,
                "upscale": self.upscale}


# --------------------------------------------------------------------------------------------- plan


def default_aspect(model: CostModel) -> Aspect:
    """Square frames for ViT-like and fixed-cost models, the picture's aspect for Qwen-VL and InternVL (and any
    model whose ladder depends on the aspect)."""
    return "keep" if len(model.levels(16, 9)) != len(model.levels(1, 1)) or model.name.startswith(
        ("qwen", "internvl")) else "square"


def plan_frames(model: CostModel, duration_s: float, width: int, height: int, budget: int, strategy: Strategy,
                anchors: Sequence[Anchor] = (), *, frames: int, k: int | None = None, ratio: float = 4.0,
                aspect: Aspect = "keep", seed: int = 0, truth: Sequence[tuple[float, float]] = (),
                shape: Shape | None = None, upscale: bool = True,
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
    problem = Problem(duration_s, levels, n_slots, per_slot, target, u)
    centres = [float(np.mean(g)) for g in group_times(slot_times(duration_s, n_slots * per_slot), per_slot)]

    k = len(anchors) if k is None else k
    rule = STRATEGY_RULES[strategy]
    layout = rule.layout or shape
    dense = layout in ("dense", "skim")
    fits = n_slots if dense else n_slots - 1  # the anchored shape keeps at least one context frame
    if layout != "uniform" and max(k, len(anchors)) > fits:
        capped.append(f"{max(k, len(anchors))} anchors do not fit {n_slots} planned "
                      f"{'slot' if n_slots == 1 else 'slots'}{'' if dense else ' with a context frame beside them'}: "
                      f"{'kept the best ' + str(fits) if fits else 'planned the frame uniformly'}")
        k = min(k, fits)
        anchors = sorted(anchors, key=lambda a: (-a.score, a.time_s))[:fits]
    used = rule.anchors(Draw(duration_s, centres, k, seed, truth, anchors))
    # Anchors claim slots best first (ties: earlier), so the strongest keeps its moment.
    picks = [(a.time_s, i) for i, a in sorted(enumerate(used), key=lambda x: (-x[1].score, x[1].time_s))]
    slots, notes = LAYOUTS[layout](problem, picks, [(a.start_s, a.end_s) for a in used], ratio, max_frames)

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


def check_request(model: str | CostModel, budget: int, strategy: str) -> CostModel:
    """What a plan request can be refused for before any video is read: an unknown model or strategy, a budget
    below one token, ``skim`` with a model that has no one-token pooled frames. Returns the cost model."""
    cm = cost_model(model) if isinstance(model, str) else model
    if strategy not in STRATEGIES:
        raise unknown_name("strategy", strategy, STRATEGIES)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError(f"budget must be a positive number of tokens, got {budget!r}")
    if STRATEGY_RULES[strategy].layout == "skim" and not (isinstance(cm, PooledCost) and cm.base is not None):
        raise ConfigError(f"the skim strategy needs a model with pooled frames beside full ones: pooled-1+MODEL "
                          f"(e.g. pooled-1+vit-p16), not {cm.name}")
    return cm


def plan(source, model: str | CostModel, budget: int, strategy: Strategy = "anchored", *,
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


def _plan(source, model: str | CostModel, budget: int, strategy: Strategy, config: PlanConfig | None,
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
    rule = STRATEGY_RULES.get(strategy)  # (an unknown name is refused by plan_frames, after the checks above)
    if rule is not None and rule.reads_index and cfg.k > 0:
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
        # The uniform plan every strategy is held to, not this plan's count (dense and skim plan more frames,
        # anchored plans on models with tiles or pairs may plan fewer).
        shown = max(1, round(n_frames / cm.frames_per_group)) * cm.frames_per_group
        notes.append(f"uniform sampling of {shown} frames spends {target} of the {budget} tokens; "
                     f"every strategy is held to {target}")
    return Plan(video=PlanVideo(info.path, info.fingerprint, duration, width, height), model=cm.name,
                strategy=strategy, budget=int(budget), target_tokens=target, frames=tuple(frames),
                anchors=tuple(used), seed=cfg.seed if rule is not None and rule.seeded else None,
                config={**cfg.to_dict(), "aspect": aspect, "fit": fit, "frames": n_frames,
                        "probe": timeline.probe, "anchor_settings": anchor_settings, **_question_record(timeline)},
                fit=fit, notes=tuple(notes))


def _question_record(timeline: Any) -> dict[str, Any]:
    """``{"question": ...}`` when the index was conditioned on a question (``earmark.index.condition_on_question``:
    the question, alpha, normalisation and model), else nothing, so other plans are unchanged."""
    q = timeline.probe_config.get("question") if isinstance(timeline.probe_config, dict) else None
    return {"question": q} if q is not None else {}


def budget_sweep(model: str | CostModel, width: int, height: int, frames: int, aspect: Aspect = "keep",
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
