"""What an eval run is: its config (every CLI option maps to a field), the names it accepts, and the
clip-length defaults. Imports no torch, so the CLI can show and check these without the [eval] extra."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..anchors import AnchorConfig, check_anchor_config
from ..budget.costs import cost_model
from ..errors import ConfigError

HEADS = ("mlp", "temporal", "transformer", "gated", "ave")
"""Heads ``earmark.eval.heads`` builds (``--head``)."""

MAIN_STRATEGIES = ("uniform", "anchored", "fixed-spread", "random", "oracle", "uniform-112", "audio-concat")
"""What ``--strategies`` names; ``anchored`` expands to one ``anchored-<probe>`` per probe. ``uniform-448``
(all seconds at 4× the tokens) is run too, for the resolution table, unless ``resolution`` is off.
``fixed-spread`` is the anchored shape at the evenly spaced slots the anchors fall back to, for every clip, with
no audio read: anchored minus fixed-spread is what the index adds."""
CLASS_WEIGHTS = ("none", "balanced")


_A = AnchorConfig()
DATASETS = ("synth", "realstamp", "ave")
GENERATED = ("synth", "realstamp")
DEFAULT_ENCODER = {"synth": "gabor", "realstamp": "efficientnet-lite0", "ave": "gabor"}
"""SynthAVE's glyphs were made for the built-in gabor encoder; real photographs get a real pretrained one."""
"""Datasets earmark writes itself (in the AVE layout) from a config, before running the protocol."""


@dataclass(frozen=True)
class EvalConfig:
    """A whole eval run (saved in ``results.json``); every CLI option maps to a field."""

    dataset: str = "synth"
    root: str | None = None
    encoder: str | None = None
    """None: :data:`DEFAULT_ENCODER` for the dataset."""
    head: str = "ave"
    model: str = "vit-p16"
    budget: int | None = None
    """Visual tokens per clip for every main strategy; None: Uniform-224 for every second (1960 at ``vit-p16`` for
    AVE's 10 s; 11760 for a 60 s clip)."""
    k: int | None = None
    """Anchors per clip; None: one per 5 seconds (2 for AVE's 10 s: the 2×448 + 8×112 shape; 12 for 60 s)."""
    ratio: float = 4.0
    probes: tuple[str, ...] = ("energy",)
    """One Anchored-Top2 strategy (5 more training runs) and one Recall@K row per probe. The default run trains
    energy's (the full-size default run then takes 17 min from nothing on two cores, measured);
    ``--probes energy,flux,onset`` adds the other DSP probes (10 more runs and two more indexes:
    +2 min measured, 18.7 min in all)."""
    probe_weights: dict[str, str] = field(default_factory=dict)
    """Weights of model probes among ``probes`` (e.g. ``{"panns": "Cnn14_16k.pth"}``)."""
    strategies: tuple[str, ...] = MAIN_STRATEGIES
    seeds: int | None = None
    """Head seeds per strategy; None: 5 (1 with ``quick``; see :data:`RUN_DEFAULTS`)."""
    epochs: int | None = None
    """None: 20 (12 with ``quick``)."""
    lr: float | None = None
    """None: 1e-3 (3e-3 with ``quick``)."""
    weight_decay: float = 0.01
    batch_size: int | None = None
    """None: 32 (8 with ``quick``)."""
    hidden: int = 32
    class_weight: str = "none"
    """``none`` or ``balanced``: weight the training loss per label by n / (classes present × count), as
    scikit-learn's ``class_weight="balanced"``. For long clips with sparse events, where the background label
    dominates (86 % of 60 s SynthAVE seconds) and an unweighted head learns to call few events. Measured there
    (benchmarks/README.md) it hurts: the heads then call events on background seconds (Uniform 86.5 -> 5.3 %)
    without calling more of the real ones; more training clips helped instead. Kept for experiments."""
    patience: int | None = None
    """Early stopping on val accuracy: stop after this many epochs without a better one and keep the best
    epoch's weights (``epochs`` is then the cap); None (default): fixed epochs. Measured on full SynthAVE with
    patience 3: seeds that stopped at epoch 10 lost 15-20 points to those that ran 20, and the harder strategies
    (Uniform-112) stopped at epoch 4 on the trivial solution, so fixed epochs are the default."""
    curve_budgets: tuple[int, ...] | None = None
    """Budgets of the accuracy–token curve (uniform also gets the all-448 point from the resolution table); None:
    Uniform-112's, 1000 per 10 s and the main budget (490, 1000, 1960 for AVE's 10 s; ``--quick``: the first and
    last)."""
    curve_seeds: int | None = None
    """None: 1. Seeds of the curve-only runs (budgets between the main ones, and uniform-448); more give error bars."""
    anchor: AnchorConfig = field(default_factory=AnchorConfig)
    """How anchors are chosen: the index's own defaults (what users get; ``earmark index --mode --min-score
    --min-gap --dilate --offset --fill --threshold``). The count is :attr:`k` (copied into ``anchor.k`` once the
    clip length is known). The SynthAVE numbers published before 2026-12 used topk, gap 1 s and min-score 3:
    ``--anchor-mode topk --min-gap 1 --min-score 3`` reproduces them."""
    low_size: int = 112
    high_size: int = 448
    resolution: bool | None = None
    """Also train Uniform-448 (every second at ``high_size``: the resolution table and the curve's last point);
    None: yes, except for RealStamp ``quick`` runs (see :data:`QUICK_RUN`)."""
    workers: int | None = None
    quick: bool = False
    """A small run for smoke tests and CI: the settings left as None take :data:`QUICK_DEFAULTS`, a generated
    dataset takes :data:`QUICK_GENERATOR`'s size unless ``generator`` says otherwise; settings given are kept."""
    limit: dict[str, int] | None = None
    cache: str | None = None
    strict: bool = False
    generator: dict[str, Any] = field(default_factory=dict)
    """Settings of a generated dataset: :class:`earmark.eval.synthave.SynthConfig` fields for ``synth``,
    :class:`earmark.eval.realstamp.RealStampConfig` fields for ``realstamp``."""

    def check(self) -> None:
        from ..probes import probe_names

        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}: use {', '.join(DATASETS)}")
        if self.head not in HEADS:
            raise ConfigError(f"unknown head {self.head!r}: use one of {', '.join(HEADS)}")
        for p in self.probes:
            if p not in probe_names():
                raise ConfigError(f"unknown probe {p!r}: use one of {', '.join(probe_names())}")
        for p in self.probe_weights:
            if p not in self.probes:
                raise ConfigError(f"--probe-weights names {p!r}, which is not among the probes "
                                  f"({', '.join(self.probes)})")
        from ..probes import get_probe, probe_classes

        for p in self.probes:  # a model probe without weights, or with bad ones, fails before any clip is prepared
            if probe_classes()[p].kind == "audio":
                kw = {"weights": self.probe_weights[p]} if p in self.probe_weights else {}
                get_probe(p, **kw)
        for s in self.strategies:
            if s not in MAIN_STRATEGIES:
                raise ConfigError(f"unknown strategy {s!r}: use any of {', '.join(MAIN_STRATEGIES)}")
        if "uniform" not in self.strategies:
            raise ConfigError("the strategies must include uniform (every comparison is against it)")
        if self.class_weight not in CLASS_WEIGHTS:
            raise ConfigError(f"unknown class weighting {self.class_weight!r}: use {' or '.join(CLASS_WEIGHTS)}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 (or None: fixed epochs), got {self.patience}")
        for name in ("seeds", "epochs", "batch_size", "curve_seeds", "k"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if self.anchor.k not in (_A.k, self.k):
            raise ConfigError(f"the anchor count is EvalConfig.k (got anchor.k={self.anchor.k}, k={self.k})")
        check_anchor_config(replace(self.anchor, k=self.k or 1), 10**6, float("inf"))
        cost_model(self.model)  # unknown model names fail here


RUN_DEFAULTS: dict[str, Any] = {"seeds": 5, "epochs": 20, "batch_size": 32, "lr": 1e-3, "curve_seeds": 1}
"""Training settings of a full run (fields of :class:`EvalConfig` left as None)."""
QUICK_DEFAULTS: dict[str, Any] = {"seeds": 1, "epochs": 40, "batch_size": 16, "lr": 3e-3, "curve_seeds": 1}
"""The same for ``quick`` runs (what the tests and CI run): one seed, trained long enough on few clips that
the heads beat the trivial answer, so the quick orderings can be tested."""
QUICK_RUN: dict[str, dict[str, Any]] = {"realstamp": {"resolution": False}}
"""Per dataset, what a quick run leaves out (settings given explicitly are kept). RealStamp's pretrained encoder
spends most of a quick run on Uniform-448's 448-px pictures of every second (and its head on their tokens): the
quick RealStamp check compares the shapes at equal tokens instead (Oracle's 448-px frames on the event against
Uniform-112 show that pixels matter)."""
QUICK_GENERATOR: dict[str, dict[str, Any]] = {
    "synth": {"n": 300},
    "realstamp": {"n": 140, "n_classes": 8, "event_s": 2},
}
"""What a quick run generates (settings given explicitly are kept): small, but with events short enough that
where the big frames go matters, so the quick orderings (tests/test_eval.py) can fail."""


def with_defaults(cfg: EvalConfig) -> EvalConfig:
    """``cfg`` with the training settings left as None filled in (quick or full); given ones are kept."""
    defaults = QUICK_DEFAULTS if cfg.quick else RUN_DEFAULTS
    fill: dict[str, Any] = {k: v for k, v in defaults.items() if getattr(cfg, k) is None}
    if cfg.encoder is None:
        fill["encoder"] = DEFAULT_ENCODER.get(cfg.dataset, "gabor")
    if cfg.resolution is None:
        fill["resolution"] = QUICK_RUN.get(cfg.dataset, {}).get("resolution", True) if cfg.quick else True
    if cfg.quick and cfg.dataset in GENERATED:
        fill["generator"] = {**cfg.generator, **{k: v for k, v in QUICK_GENERATOR[cfg.dataset].items()
                                                 if cfg.generator.get(k) is None}}
    return replace(cfg, **fill)


def for_segments(cfg: EvalConfig, segments: int) -> EvalConfig:
    """``cfg`` with the clip-length defaults filled in (budget, k, curve budgets; see :class:`EvalConfig`)."""
    uniform_size = int(round(math.sqrt(cfg.low_size * cfg.high_size)))  # 224 between 112 and 448
    budget = cfg.budget if cfg.budget is not None else uniform_budget(cfg.model, uniform_size, segments)
    k = cfg.k if cfg.k is not None else max(1, int(round(segments / 5)))
    curve = cfg.curve_budgets
    if curve is None:
        low = uniform_budget(cfg.model, cfg.low_size, segments)
        curve = (low, budget) if cfg.quick else (low, int(round(100 * segments)), budget)
    return replace(cfg, budget=budget, k=k, anchor=replace(cfg.anchor, k=k), curve_budgets=tuple(dict.fromkeys(curve)))


def uniform_budget(model: str, size: int, segments: int) -> int:
    cm = cost_model(model)
    return segments * cm.tokens(*cm.legal_size(size, size))
