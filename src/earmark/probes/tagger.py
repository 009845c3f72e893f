"""``ast``: an AudioSet tagger (Audio Spectrogram Transformer) from a local transformers folder, as a semantic probe.

Each window's audio goes through the folder's own feature extractor and ``ASTForAudioClassification``
(``from_pretrained(path, local_files_only=True)``: no network). The class probabilities become eventness by
``score``: ``max`` (the most probable class outside ``ignore_labels``, e.g. Silence), ``entropy`` (1 − normalised
entropy: a confident tagger) or ``margin`` (top-1 minus top-2). The ``top`` labels per window are stored in the
Timeline (``Timeline.labels``); no audio or text is kept. A window's confidence is the tagger's own: the
margin between its two most probable classes (times audio coverage), which anchor widening and the uniform
fallback read instead of the z-score's. For AudioSet, point ``weights`` at a folder holding
e.g. ``MIT/ast-finetuned-audioset-10-10-0.4593`` (BSD-3-Clause), downloaded once by the user.

The probe receives the window's samples as 10 ms frames (vector frame values), so long files are decoded in
segments like every audio probe; it holds the file's samples (float32, ~230 MB per hour) until the windows are
tagged in batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import FRAME_HOP, SAMPLE_RATE, Probe, ProbeConfig, WindowGrid, _frame_ranges, register_probe
from .learned import missing

SCORES = ("max", "entropy", "margin")


@dataclass(frozen=True)
class TaggerConfig(ProbeConfig):
    weights: str | None = None
    """A local folder with an AST audio-classification model and its feature extractor (save_pretrained)."""
    score: str = "max"
    ignore_labels: tuple[str, ...] = ("Silence",)
    """Classes that never count as events for ``score=max``."""
    activation: str = "sigmoid"
    """sigmoid for multi-label taggers (AudioSet), softmax for single-label ones."""
    top: int = 3
    batch: int = 16
    min_scale: float = 0.05


@lru_cache(maxsize=2)
def load_tagger(path: str) -> tuple[Any, Any]:
    """(feature extractor, model) from a local folder; clear errors for anything else."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: tagger folder does not exist")
    if not p.is_dir() or not (p / "config.json").exists():
        raise ConfigError(f"{p}: expected a transformers folder (config.json + weights, from save_pretrained)")
    import json

    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    kind = json.loads((p / "config.json").read_text()).get("model_type")
    if kind != "audio-spectrogram-transformer":
        raise ConfigError(f"{p}: holds a {kind!r} model, expected an audio-spectrogram-transformer (AST) "
                          "audio-classification model")
    try:
        fe = AutoFeatureExtractor.from_pretrained(p, local_files_only=True)
        model = AutoModelForAudioClassification.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{p}: cannot load the tagger ({str(e).splitlines()[0][:120]})") from None
    model.eval()
    return fe, model


@register_probe
class AstProbe(Probe):
    name = "ast"
    Config = TaggerConfig
    raw_unit = "tagger score"
    frame_length = FRAME_HOP
    summary = "AudioSet tagger (AST) class probabilities -> eventness, with top labels per window"
    needs = "extra 'eval' (torch, transformers) and --probe-weights FOLDER (an AST model)"

    @classmethod
    def unavailable(cls) -> str | None:
        return missing("transformers", "eval") or missing("torch", "eval")

    def __init__(self, config: ProbeConfig | None = None, **overrides: Any) -> None:
        if isinstance(overrides.get("ignore_labels"), (list, str)):
            v = overrides["ignore_labels"]
            overrides["ignore_labels"] = tuple(v.split(",") if isinstance(v, str) else v)
        super().__init__(config, **overrides)
        c = self.config
        if c.score not in SCORES:
            raise ConfigError(f"tagger score must be one of {', '.join(SCORES)}, got {c.score!r}")
        if c.activation not in ("sigmoid", "softmax"):
            raise ConfigError(f"tagger activation must be sigmoid or softmax, got {c.activation!r}")
        if not c.weights:
            raise ConfigError("probe 'ast' needs weights: --probe-weights FOLDER (a local AST model folder)")
        load_tagger(str(c.weights))  # a bad folder fails before any decoding
        self.labels_out: tuple[tuple[str, ...], ...] | None = None
        self.confidence_out: np.ndarray | None = None

    def frame_values(self, frames: np.ndarray) -> np.ndarray:
        return frames.astype(np.float32, copy=True)  # the samples themselves; tagged per window below

    def window_values(self, frame_values: np.ndarray, grid: WindowGrid) -> np.ndarray:
        import torch

        fe, model = load_tagger(str(self.config.weights))
        lo, hi = _frame_ranges(grid, self.frame_length)
        hi = np.minimum(hi, len(frame_values))
        lo = np.minimum(lo, hi - 1)
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        keep = np.array([n not in self.config.ignore_labels for n in names])
        scores, labels, margins = [], [], []
        for b in range(0, grid.n, self.config.batch):
            waves = [frame_values[a:z].reshape(-1) for a, z in zip(lo[b:b + self.config.batch],
                                                                   hi[b:b + self.config.batch])]
            inp = fe(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            with torch.no_grad():
                logits = model(**inp).logits.double()
            prob = (torch.sigmoid(logits) if self.config.activation == "sigmoid" else torch.softmax(logits, -1)).numpy()
            scores.append(self._score(prob, keep))
            top2 = -np.sort(-prob, 1)[:, :2]
            margins.append(top2[:, 0] - (top2[:, 1] if prob.shape[1] > 1 else 0.0))
            for row in prob:
                order = np.argsort(-row, kind="stable")[: self.config.top]
                labels.append(tuple(names[i] for i in order))
        self.labels_out = tuple(labels)
        # Calibrated confidence: how clearly the tagger prefers its top class (used by anchor widening/fallback).
        self.confidence_out = np.concatenate(margins)
        return np.concatenate(scores)

    def _score(self, prob: np.ndarray, keep: np.ndarray) -> np.ndarray:
        if self.config.score == "max":
            return prob[:, keep].max(1) if keep.any() else prob.max(1)
        if self.config.score == "margin":
            top2 = -np.sort(-prob, 1)[:, :2]
            return top2[:, 0] - (top2[:, 1] if prob.shape[1] > 1 else 0.0)
        p = prob / prob.sum(1, keepdims=True)
        ent = -(p * np.log(np.maximum(p, 1e-12))).sum(1)
        return 1.0 - ent / np.log(max(2, prob.shape[1]))
