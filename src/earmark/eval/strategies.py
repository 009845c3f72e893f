"""What each eval strategy trains on: the plans a clip needs (one request per distinct plan) and the budgets
that can be met equally by every shape."""

from __future__ import annotations

from typing import Any

from ..budget.costs import cost_model
from ..budget.planner import BudgetTooSmallError, default_aspect, plan_frames
from ..errors import ConfigError
from .config import EvalConfig, uniform_budget
from .prepare import PlanRequest


def plan_requests(cfg: EvalConfig, segments: int) -> tuple[list[PlanRequest], dict[str, dict[str, Any]]]:
    """Every plan a clip needs, and what each eval strategy trains on (plan key per seed, audio or not)."""
    reqs: dict[str, PlanRequest] = {}
    strategies: dict[str, dict[str, Any]] = {}

    def add(key: str, strategy: str, budget: int, probe: str | None = None, seed: int = 0) -> str:
        reqs.setdefault(key, PlanRequest(key, strategy, budget, probe, seed))
        return key

    seeds = range(cfg.seeds)
    u = add("uniform", "uniform", cfg.budget)
    strategies["uniform"] = {"plans": [u] * cfg.seeds, "audio": False, "group": "main"}
    for s in cfg.strategies:
        if s == "anchored":
            for p in cfg.probes:
                key = add(f"anchored-{p}", "anchored", cfg.budget, p)
                strategies[f"anchored-{p}"] = {"plans": [key] * cfg.seeds, "audio": False, "group": "main",
                                               "probe": p}
        elif s == "random":
            strategies["random"] = {"plans": [add(f"random@{i}", "random", cfg.budget, None, i) for i in seeds],
                                    "audio": False, "group": "main"}
        elif s == "fixed-spread":
            strategies["fixed-spread"] = {"plans": [add("fixed-spread", "fixed-spread", cfg.budget)] * cfg.seeds,
                                          "audio": False, "group": "main"}
        elif s == "oracle":
            strategies["oracle"] = {"plans": [add("oracle", "oracle", cfg.budget)] * cfg.seeds, "audio": False,
                                    "group": "main"}
        elif s == "uniform-112":
            b = uniform_budget(cfg.model, cfg.low_size, segments)
            strategies["uniform-112"] = {"plans": [add(f"uniform@{b}", "uniform", b)] * cfg.seeds,
                                         "audio": False, "group": "main"}
        elif s == "audio-concat":
            strategies["audio-concat"] = {"plans": [u] * cfg.seeds, "audio": True, "group": "main"}
    b_hi = uniform_budget(cfg.model, cfg.high_size, segments)
    if cfg.resolution:
        strategies["uniform-448"] = {"plans": [add(f"uniform@{b_hi}", "uniform", b_hi)] * min(cfg.seeds,
                                                                                                  cfg.curve_seeds),
                                     "audio": False, "group": "resolution"}
    curve_probe = cfg.probes[0]
    for b in cfg.curve_budgets:
        for strat, probe in (("uniform", None), ("anchored", curve_probe)):
            name = f"curve:{strat}@{b}"
            key = f"{strat}-{probe}@{b}" if probe else f"uniform@{b}"
            if b == cfg.budget:
                key = f"anchored-{probe}" if probe else "uniform"
            strategies[name] = {"plans": [add(key, strat, b, probe)] * min(cfg.seeds, cfg.curve_seeds),
                                "audio": False, "group": "curve", "budget": b, "strategy": strat}
    if cfg.resolution:
        strategies[f"curve:uniform@{b_hi}"] = {"plans": strategies["uniform-448"]["plans"], "audio": False,
                                               "group": "curve", "budget": b_hi, "strategy": "uniform"}
    # A curve point whose plan a main strategy already trains on reuses those runs (same seeds, same numbers).
    for spec in strategies.values():
        if spec["group"] == "curve":
            twin = next((m for m, o in strategies.items() if o["group"] != "curve" and not o["audio"]
                         and o["plans"][0] == spec["plans"][0]), None)
            if twin is not None:
                spec["reuse"] = twin
    return list(reqs.values()), strategies


def check_budget(cfg: EvalConfig, width: int, height: int, segments: int) -> list[int]:
    """Fail early when the main budget cannot be planned; return curve budgets that cannot (they are skipped)."""
    cm = cost_model(cfg.model)

    def shaped(budget: int) -> None:  # the random strategy takes the anchored shape without needing an index
        plan_frames(cm, float(segments), width, height, budget, "random", (), frames=segments, k=cfg.k,
                    ratio=cfg.ratio, aspect=default_aspect(cm), seed=0)

    try:
        shaped(cfg.budget)
    except BudgetTooSmallError as e:
        raise ConfigError(f"budget {cfg.budget} cannot be met equally by uniform and anchored plans: {e}") from None
    bad = []
    for b in cfg.curve_budgets:
        try:
            shaped(b)
        except BudgetTooSmallError:
            bad.append(b)
    return bad
