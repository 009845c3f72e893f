"""Semantic probes: AudioSet-style taggers whose class probabilities become eventness, with top labels per window.

Four model families, each loaded from a local path the user gives (``--probe-weights PATH``; never the network):

- ``ast``: Audio Spectrogram Transformer, a transformers folder (``ASTForAudioClassification`` + its feature
  extractor, ``from_pretrained(path, local_files_only=True)``), e.g. ``MIT/ast-finetuned-audioset-10-10-0.4593``.
- ``clap``: a CLAP model folder (``ClapModel`` + ``ClapProcessor``, e.g. ``laion/clap-htsat-unfused``), zero-shot:
  the window's audio embedding against text prompts for ``labels`` (default: AVE's 28 classes + Silence).
- ``panns``: a PANNs CNN14 checkpoint (``Cnn14_mAP=0.431.pth`` or ``Cnn14_16k_mAP=0.438.pth``), read with
  ``torch.load(weights_only=True)`` into earmark's own CNN14 (:mod:`earmark.probes.panns`).
- ``yamnet``: YAMNet as ONNX (TF-Hub's signature: a 16 kHz waveform in; per 0.96 s frame ``scores`` (frames, 521)
  and ``embeddings`` out) run by onnxruntime, with its class map CSV (``index,mid,display_name``).

Each window's samples go to the model; probabilities (sigmoid for multi-label taggers, softmax for CLAP's
zero-shot and single-label models) become eventness by ``score``: ``max`` (the most probable class outside
``ignore_labels``, e.g. Silence), ``entropy`` (1 − normalised entropy) or ``margin`` (top-1 minus top-2). The
``top`` labels per window go to ``Timeline.labels``; a window's confidence is the top-1/top-2 margin (times
audio coverage), which anchor widening and the uniform fallback read. No audio or text is kept.

Every tagger also gives a per-window *embedding* (AST: mean of the last hidden state; CLAP: the normalised audio
embedding; PANNs: the 2048-d ``fc1`` output; YAMNet: its 1024-d embedding), which ``earmark train-probe --embed
TAGGER:PATH`` trains the ``linear`` probe on.

The probes receive 10 ms frames of samples (vector frame values), so long files are decoded in segments like every
audio probe; they hold the file's samples (float32, ~230 MB per hour) until the windows are tagged in batches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError
from .base import FRAME_HOP, SAMPLE_RATE, Probe, ProbeConfig, WindowGrid, _frame_ranges, register_probe
from .weights import weights_file

SCORES = ("max", "entropy", "margin")

AVE_LABELS = (
    "Accordion", "Acoustic guitar", "Baby cry, infant cry", "Banjo", "Bark", "Bus", "Cat", "Chainsaw",
    "Church bell", "Clock", "Female speech, woman speaking", "Fixed-wing aircraft, airplane", "Flute",
    "Frying (food)", "Goat", "Helicopter", "Horse", "Male speech, man speaking", "Mandolin", "Motorcycle",
    "Race car, auto racing", "Rodents, rats, mice", "Shofar", "Toilet flush", "Train horn", "Truck", "Ukulele",
    "Violin, fiddle", "Silence",
)
"""CLAP's default zero-shot vocabulary: the AVE event classes, plus Silence (ignored by ``score=max``)."""


@dataclass(frozen=True)
class TaggerConfig(ProbeConfig):
    weights: str | None = None
    """The model: a transformers folder (ast, clap), a .pth checkpoint (panns) or an .onnx file (yamnet)."""
    score: str = "max"
    ignore_labels: tuple[str, ...] = ("Silence",)
    """Classes that never count as events for ``score=max``."""
    activation: str = ""
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
    default_activation: ClassVar[str] = "sigmoid"
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
        if c.activation not in ("", "sigmoid", "softmax"):
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


def _hf_folder(path: str, expected: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: tagger folder does not exist")
    if not p.is_dir() or not (p / "config.json").exists():
        raise ConfigError(f"{p}: expected a transformers folder (config.json + weights, from save_pretrained)")
    try:
        kind = json.loads((p / "config.json").read_text()).get("model_type")
    except (OSError, ValueError):
        raise ConfigError(f"{p}/config.json: not a JSON model config") from None
    if kind != expected:
        raise ConfigError(f"{p}: holds a {kind!r} model, expected {what} ({expected!r})")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return p


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


# ------------------------------------------------------------------------------------------- ast


@lru_cache(maxsize=2)
def load_ast(path: str) -> tuple[Any, Any]:
    """(feature extractor, model) of an AST audio-classification folder; clear errors for anything else."""
    p = _hf_folder(path, "audio-spectrogram-transformer", "an AST audio-classification model")
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    try:
        fe = AutoFeatureExtractor.from_pretrained(p, local_files_only=True)
        model = AutoModelForAudioClassification.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{p}: cannot load the tagger ({str(e).splitlines()[0][:120]})") from None
    model.eval()
    return fe, model


@register_probe
class AstProbe(TaggerProbe):
    name = "ast"
    summary = "AudioSet tagger (AST) class probabilities -> eventness, with top labels per window"
    needs = "extra 'eval' (torch, transformers) and --probe-weights FOLDER (an AST model)"
    weights_help = "FOLDER (a local AST model folder)"

    requires = (("transformers", "eval"), ("torch", "eval"))

    def load(self) -> Any:
        return load_ast(str(self.config.weights))

    def class_names(self) -> list[str]:
        cfg = self.model[1].config
        return [cfg.id2label[i] for i in range(cfg.num_labels)]

    def infer(self, waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        fe, model = self.model
        inp = fe(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with torch.no_grad():
            out = model(**inp, output_hidden_states=True)
        emb = out.hidden_states[-1].mean(1)
        return out.logits.double().numpy(), emb.float().numpy()


# ------------------------------------------------------------------------------------------- clap


@lru_cache(maxsize=2)
def load_clap(path: str) -> tuple[Any, Any]:
    p = _hf_folder(path, "clap", "a CLAP model")
    from transformers import ClapModel, ClapProcessor

    try:
        proc = ClapProcessor.from_pretrained(p, local_files_only=True)
        model = ClapModel.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"{p}: cannot load the CLAP model ({str(e).splitlines()[0][:120]})") from None
    model.eval()
    return proc, model


def _features(out: Any) -> Any:
    """transformers 4 returns the projected features as a tensor, 5 as ``pooler_output`` of an output object."""
    return out if hasattr(out, "shape") else out.pooler_output


@register_probe
class ClapProbe(TaggerProbe):
    name = "clap"
    default_activation = "softmax"
    summary = "CLAP zero-shot: audio vs text prompts for a label set (default AVE's classes) -> eventness + labels"
    needs = "extra 'eval' (torch, transformers) and --probe-weights FOLDER (a CLAP model)"
    weights_help = "FOLDER (a local CLAP model folder, e.g. laion/clap-htsat-unfused)"

    requires = (("transformers", "eval"), ("torch", "eval"))

    def load(self) -> Any:
        import torch

        proc, model = load_clap(str(self.config.weights))
        names = self.class_names()
        text = proc.tokenizer([self.config.prompt.format(n) for n in names], padding=True, return_tensors="pt")
        with torch.no_grad():
            t = torch.nn.functional.normalize(_features(model.get_text_features(**text)), dim=-1)
        return proc, model, t

    def class_names(self) -> list[str]:
        return list(self.config.labels or AVE_LABELS)

    def infer(self, waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        proc, model, text = self.model
        fe = proc.feature_extractor
        rate = int(fe.sampling_rate)
        fused = bool(getattr(model.config.audio_config, "enable_fusion", False))
        inp = fe([resample(w, rate) for w in waves], sampling_rate=rate, return_tensors="pt",
                 truncation="fusion" if fused else "rand_trunc")  # windows are shorter than max_length: no crop
        with torch.no_grad():
            a = torch.nn.functional.normalize(_features(model.get_audio_features(**inp)), dim=-1)
            logits = model.logit_scale_a.exp() * a @ text.T
        return logits.double().numpy(), a.float().numpy()


# ------------------------------------------------------------------------------------------- panns


@register_probe
class PannsProbe(TaggerProbe):
    name = "panns"
    summary = "AudioSet tagger (PANNs CNN14, torch checkpoint) -> eventness, with top labels per window"
    needs = "extra 'eval' (torch) and --probe-weights FILE (a PANNs Cnn14*.pth)"
    weights_help = "FILE (a PANNs Cnn14_mAP=0.431.pth or Cnn14_16k_mAP=0.438.pth)"

    requires = (("torch", "eval"),)

    def load(self) -> Any:
        from .panns import load_cnn14

        model = load_cnn14(str(weights_file(self.config.weights, "panns", self.weights_help)))
        names = class_names_for(str(self.config.weights), self.config.class_map, model.classes)
        return model, names

    def class_names(self) -> list[str]:
        return list(self.config.labels) or self.model[1]

    def infer(self, waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        model = self.model[0]
        x = np.stack([resample(w, model.sample_rate) for w in _same_length(waves)])
        with torch.no_grad():
            logits, emb = model(torch.from_numpy(x))
        return logits.double().numpy(), emb.float().numpy()


def _same_length(waves: list[np.ndarray]) -> list[np.ndarray]:
    n = max(len(w) for w in waves)
    return [np.pad(w, (0, n - len(w))) for w in waves]


# ------------------------------------------------------------------------------------------- yamnet

YAMNET_FRAME = 15_360  # 0.96 s at 16 kHz: YAMNet's analysis frame


@lru_cache(maxsize=2)
def load_yamnet(path: str) -> tuple[Any, str, str, str | None]:
    """(session, input name, scores output, embeddings output or None) of a YAMNet-like ONNX model."""
    from .weights import onnx_session

    sess = onnx_session(path)
    ins = sess.get_inputs()
    if len(ins) != 1 or "float" not in ins[0].type or len(ins[0].shape) not in (1, 2):
        got = ", ".join(f"{i.name} {i.type} {i.shape}" for i in ins)
        raise ConfigError(f"{path}: expected a YAMNet-like model (one float waveform input), this one takes {got}")
    outs = {o.name: o for o in sess.get_outputs()}
    scores = next((n for n in outs if "score" in n.lower()), None) or next(iter(outs))
    emb = next((n for n in outs if "embed" in n.lower()), None)
    return sess, ins[0].name, scores, emb


@register_probe
class YamnetProbe(TaggerProbe):
    name = "yamnet"
    summary = "AudioSet tagger (YAMNet, ONNX) -> eventness, with top labels per window"
    needs = "extra 'probes' (onnxruntime) and --probe-weights FILE (yamnet.onnx + its class map CSV)"
    weights_help = "FILE (a YAMNet .onnx: 16 kHz waveform in, scores and embeddings out)"

    requires = (("onnxruntime", "probes"),)

    def load(self) -> Any:
        path = str(weights_file(self.config.weights, "yamnet", self.weights_help))
        sess, inp, scores, emb = load_yamnet(path)
        probe = sess.run([scores], {inp: np.zeros(self._shape(sess, YAMNET_FRAME), np.float32)})[0]
        if probe.ndim != 2:
            raise ConfigError(f"{path}: output {scores!r} has shape {probe.shape}, expected (frames, classes)")
        return sess, inp, scores, emb, class_names_for(path, self.config.class_map, probe.shape[1])

    @staticmethod
    def _shape(sess: Any, n: int) -> tuple[int, ...]:
        return (n,) if len(sess.get_inputs()[0].shape) == 1 else (1, n)

    def class_names(self) -> list[str]:
        return list(self.config.labels) or self.model[4]

    def infer(self, waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        sess, inp, scores, emb, _ = self.model
        probs, embs = [], []
        for w in waves:  # YAMNet takes one waveform; a 1 s window is one or two 0.96 s frames
            w = np.pad(w, (0, max(0, YAMNET_FRAME - len(w)))).astype(np.float32)
            out = sess.run([scores] + ([emb] if emb else []), {inp: w.reshape(self._shape(sess, len(w)))})
            probs.append(np.asarray(out[0], np.float64).max(0))  # the window's loudest frame per class
            embs.append(np.asarray(out[1], np.float32).mean(0) if emb else np.asarray(out[0], np.float32).mean(0))
        p = np.clip(np.stack(probs), 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p)), np.stack(embs)  # scores are probabilities already: back to logits
