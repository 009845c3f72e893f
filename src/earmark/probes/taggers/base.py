"""The tagger interface: a model maps each window's samples to class probabilities (and an embedding); eventness,
top labels and confidence follow from them the same way for every family. Plus the loaders' shared helpers
(transformers folders, resampling, class maps)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import numpy as np

from ...errors import ConfigError
from ..base import FRAME_HOP, SAMPLE_RATE, Probe, ProbeConfig, WindowGrid, _frame_ranges
from ..weights import quiet_loading, transformers_folder

Score = Literal["max", "entropy", "margin"]
"""How class probabilities become eventness: the most probable class outside ``ignore_labels``, 1 - normalised
entropy, or top-1 minus top-2."""
SCORES: tuple[Score, ...] = get_args(Score)
Activation = Literal["", "sigmoid", "softmax"]
"""sigmoid (multi-label taggers) or softmax; empty: the model family's own."""
ACTIVATIONS: tuple[Activation, ...] = get_args(Activation)


@dataclass(frozen=True)
class TaggerConfig(ProbeConfig):
    weights: str | None = None
    """The model: a transformers folder (ast, clap), a .pth checkpoint (panns) or an .onnx file (yamnet)."""
    score: Score = "max"
    ignore_labels: tuple[str, ...] = ("Silence",)
    """Classes that never count as events for ``score=max``."""
    activation: Activation = ""
    """sigmoid (multi-label taggers) or softmax; empty: the model family's own (CLAP: softmax, others: sigmoid)."""
    labels: tuple[str, ...] = ()
    """Class names: CLAP's zero-shot vocabulary (default AVE_LABELS; a file with one per line also works);
    for panns/yamnet, read from ``class_map`` when empty."""
    class_map: str | None = None
    """panns / yamnet: a CSV of class names (AudioSet's ``index,mid,display_name``); default: a
    ``*class*.csv`` beside the weights file, else "class N"."""
    prompt: str = "This is a sound of {}."
    """CLAP: the text prompt per label."""
    top: int = 3
    batch: int = 16
    min_scale: float = 0.05

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {"top": (1, 1000), "batch": (1, 1024)}


def _tuple(v: Any) -> Any:
    if isinstance(v, str):
        p = Path(v)
        if "\n" not in v and p.suffix in (".txt", ".csv") and p.is_file():
            return tuple(line.strip() for line in p.read_text().splitlines() if line.strip())
        return tuple(s.strip() for s in v.split(",") if s.strip()) if "," in v or v else ()
    return tuple(v)


class TaggerProbe(Probe):
    """A model that maps each window's samples to class probabilities (and an embedding)."""

    Config = TaggerConfig
    raw_unit = "tagger score"
    frame_length = FRAME_HOP
    default_activation: ClassVar[Activation] = "sigmoid"
    weights_help: ClassVar[str] = ""
    needs_weights = True

    def __init__(self, config: ProbeConfig | None = None, **overrides: Any) -> None:
        for key in ("ignore_labels", "labels"):
            if key in overrides:
                overrides[key] = _tuple(overrides[key])
        super().__init__(config, **overrides)
        c = self.config
        if c.score not in SCORES:
            raise ConfigError(f"tagger score must be one of {', '.join(SCORES)}, got {c.score!r}")
        if c.activation not in ACTIVATIONS:
            raise ConfigError(f"tagger activation must be sigmoid or softmax, got {c.activation!r}")
        if not c.weights:
            raise ConfigError(f"probe {self.name!r} needs weights: --probe-weights {self.weights_help}")
        why = self.unavailable()
        if why:
            raise ConfigError(f"probe {self.name!r} {why}")
        self.model = self.load()  # a bad path fails before any decoding
        self.labels_out: tuple[tuple[str, ...], ...] | None = None
        self.confidence_out: np.ndarray | None = None

    # -- what a model family implements
    def load(self) -> Any:
        raise NotImplementedError

    def class_names(self) -> list[str]:
        raise NotImplementedError

    def infer(self, waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """16 kHz windows -> (logits or probabilities (n, classes) float64, embeddings (n, E) float32)."""
        raise NotImplementedError

    # -- shared
    @property
    def activation(self) -> str:
        return self.config.activation or self.default_activation

    def probabilities(self, out: np.ndarray) -> np.ndarray:
        if self.activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-out))
        e = np.exp(out - out.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def frame_values(self, frames: np.ndarray) -> np.ndarray:
        return frames.astype(np.float32, copy=True)  # the samples themselves; tagged per window below

    def windows(self, frame_values: np.ndarray, grid: WindowGrid):
        """Batches of each window's samples (a frame belongs to the window of its newest sample)."""
        lo, hi = _frame_ranges(grid, self.frame_length)
        hi = np.minimum(hi, len(frame_values))
        lo = np.minimum(lo, hi - 1)
        for b in range(0, grid.n, self.config.batch):
            yield [frame_values[a:z].reshape(-1) for a, z in zip(lo[b:b + self.config.batch],
                                                                 hi[b:b + self.config.batch])]

    def embeddings(self, frame_values: np.ndarray, grid: WindowGrid) -> np.ndarray:
        """(windows, E) float32: the model's embedding of each window (``train-probe --embed``)."""
        return np.concatenate([self.infer(w)[1] for w in self.windows(frame_values, grid)]).astype(np.float32)

    def window_values(self, frame_values: np.ndarray, grid: WindowGrid) -> np.ndarray:
        names = self.class_names()
        keep = np.array([n not in self.config.ignore_labels for n in names])
        scores, labels, margins = [], [], []
        for waves in self.windows(frame_values, grid):
            prob = self.probabilities(np.asarray(self.infer(waves)[0], np.float64))
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


def load_pretrained(path: str, model_type: str, what: str, processor: str, model: str, failure: str
                    ) -> tuple[Any, Any]:
    """(processor, model in eval mode) of a transformers folder holding a ``model_type`` model: ``processor`` and
    ``model`` name transformers classes; anything else is one ConfigError line naming the folder (``what`` was
    expected, ``failure`` could not be loaded)."""
    p, _ = transformers_folder(path, (model_type,), what)
    import transformers

    try:
        with quiet_loading():
            proc = getattr(transformers, processor).from_pretrained(p, local_files_only=True)
            net = getattr(transformers, model).from_pretrained(p, local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"{p}: cannot load {failure} ({str(e).splitlines()[0][:120]})") from None
    net.eval()
    return proc, net


def resample(wave: np.ndarray, rate: int) -> np.ndarray:
    """16 kHz samples at ``rate`` (polyphase, scipy)."""
    if rate == SAMPLE_RATE:
        return wave
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, SAMPLE_RATE)
    return resample_poly(wave, rate // g, SAMPLE_RATE // g).astype(np.float32)


def read_class_map(path: str | Path) -> list[str]:
    """Class names from a CSV: AudioSet's ``index,mid,display_name`` (header optional) or one name per line."""
    import csv

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: class map file does not exist")
    rows = [r for r in csv.reader(p.read_text().splitlines()) if r]
    if rows and rows[0] and rows[0][0].strip().lower() in ("index", "idx"):
        rows = rows[1:]
    return [r[-1].strip() for r in rows]


def class_names_for(weights: str, class_map: str | None, n: int) -> list[str]:
    """``n`` class names: from ``class_map``, else a ``*class*.csv`` beside the weights, else "class N"."""
    path = class_map
    if path is None:
        near = sorted(Path(weights).parent.glob("*class*.csv"))
        path = str(near[0]) if near else None
    if path is None:
        return [f"class {i}" for i in range(n)]
    names = read_class_map(path)
    if len(names) != n:
        raise ConfigError(f"{path}: lists {len(names)} classes, the model {weights} has {n}")
    return names
