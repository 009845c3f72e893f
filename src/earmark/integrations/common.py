"""The options every drop-in takes (budget, model, strategy ...) and the one path from a video to planned frames.

A drop-in reads an ``earmark`` options dict where its runtime's users already put settings (a Qwen message entry, a
vLLM request), checks it here (unknown keys and wrong types are one clear error, never ignored), then
:func:`plan_video` indexes the audio, plans the budget and extracts exactly the planned frames.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..types import Frame, Plan


@dataclass(frozen=True)
class EarmarkOptions:
    """What to plan for one video: ``earmark.plan``'s arguments, by the names the CLI uses."""

    budget: int
    """Visual tokens to spend on the video (every strategy spends the same, see ``earmark plan``)."""
    model: str | None = None
    """Cost model (``qwen2.5-vl-video``, ``qwen3-vl``, ``internvl`` ...); each drop-in has its default."""
    strategy: str = "anchored"
    probe: str = "energy"
    """Probe that indexes the audio."""
    k: int = 2
    """Anchors."""
    frames: int | None = None
    ratio: float = 4.0
    seed: int = 0
    upscale: bool = False
    question: str | None = None
    """Plan for this question as well as the sound (needs ``text_image_model``; see
    :func:`earmark.index.condition_on_question`)."""
    text_image_model: str | None = None
    """A local CLIP or SigLIP folder that scores each second's picture against ``question``."""
    alpha: float | None = None
    """Sound vs question: 0 sound only, 1 question only (default 0.5)."""
    question_norm: str | None = None
    """``global`` or ``segment`` (default) robust z-scores."""

    def __post_init__(self) -> None:
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 1:
            raise ConfigError(f"earmark option budget must be a positive number of tokens, got {self.budget!r}")
        for name in ("model", "strategy", "probe"):
            v = getattr(self, name)
            if not (v is None and name == "model") and not (isinstance(v, str) and v):
                raise ConfigError(f"earmark option {name} must be a name (a string), got {v!r}")
        for name, lo in (("k", 0), ("seed", 0), ("frames", 1)):
            v = getattr(self, name)
            if v is None and name == "frames":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"earmark option {name} must be an integer >= {lo}, got {v!r}")
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, float)) or not (
                math.isfinite(self.ratio) and self.ratio >= 1):
            raise ConfigError(f"earmark option ratio must be a finite number >= 1, got {self.ratio!r}")
        if not isinstance(self.upscale, bool):
            raise ConfigError(f"earmark option upscale must be true or false, got {self.upscale!r}")
        for name in ("question", "text_image_model", "question_norm"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, str) and v.strip()):
                raise ConfigError(f"earmark option {name} must be a non-empty text, got {v!r}")
        if self.alpha is not None and (isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float))
                                       or not 0 <= self.alpha <= 1):
            raise ConfigError(f"earmark option alpha must be between 0 (sound only) and 1 (question only), got "
                              f"{self.alpha!r}")
        if (self.question is None) != (self.text_image_model is None):
            raise ConfigError("earmark options question and text_image_model go together: the model scores each "
                              "second's picture against the question")
        if self.question is None and (self.alpha is not None or self.question_norm is not None):
            raise ConfigError("earmark options alpha and question_norm weigh a question: give question and "
                              "text_image_model")

    @classmethod
    def from_mapping(cls, options: Any, where: str = "earmark") -> EarmarkOptions:
        """Options from a plain dict (``{"budget": 1024, "strategy": "anchored"}``); ``where`` names the dict in
        errors. Unknown keys are refused: a setting that would be silently ignored is a bug."""
        if isinstance(options, EarmarkOptions):
            return options
        if not isinstance(options, Mapping):
            raise ConfigError(f"{where}: expected a dict of earmark options ({', '.join(OPTION_KEYS)}), got "
                              f"{type(options).__name__}")
        unknown = sorted(str(k) for k in options if k not in OPTION_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown earmark option {unknown[0]!r}; valid: {', '.join(OPTION_KEYS)}")
        if "budget" not in options:
            raise ConfigError(f"{where}: the earmark options need a budget (visual tokens for this video)")
        try:
            return cls(**dict(options))
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


OPTION_KEYS: tuple[str, ...] = tuple(f.name for f in fields(EarmarkOptions))
"""The keys an ``earmark`` options dict may hold."""


def plan_video(video: str | Path, options: EarmarkOptions, default_model: str) -> tuple[Plan, list[Frame]]:
    """Index ``video``'s audio, plan ``options.budget`` tokens of ``options.model`` (or ``default_model``) and decode
    the planned frames (each at its planned size, with its real presentation time)."""
    from ..anchors import AnchorConfig, check_anchor_config, with_anchors
    from ..budget.costs import cost_model
    from ..budget.planner import plan
    from ..index import condition_on_question, index
    from ..media.container import info
    from ..media.frames import extract
    from ..probes import window_grid

    video = str(video)
    model = options.model or default_model
    cost_model(model)  # an unknown name fails before any decoding
    text_image = None
    if options.question is not None:  # a bad model folder fails before any decoding too
        from ..probes.question import TextImageModel

        text_image = TextImageModel.from_pretrained(options.text_image_model)
    vi = info(video)
    cfg = AnchorConfig(k=max(1, options.k))
    check_anchor_config(cfg, window_grid(vi.duration_s, 1.0, 1.0).n, vi.duration_s, video)
    source = with_anchors(vi, index(video, probe=options.probe, video_info=vi), cfg)
    if text_image is not None:
        source = condition_on_question(source, options.question, text_image, alpha=options.alpha,
                                       norm=options.question_norm)
    overrides: dict[str, Any] = {"ratio": float(options.ratio), "seed": options.seed, "upscale": options.upscale}
    if options.frames is not None:
        overrides["frames"] = options.frames
    p = plan(source, model, options.budget, options.strategy, k=options.k, **overrides)
    return p, list(extract(video, p, video_info=vi))
