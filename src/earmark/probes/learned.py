"""Learned audio probes: ``vad`` (Silero VAD, speech activity), ``linear`` (a small classifier trained on labelled
seconds, ``earmark train-probe``) and ``learned`` (a ``linear`` probe whose weights ship with earmark).

Weights always come from a local file: the ``vad`` probe uses the ONNX model that the ``silero-vad`` package ships
(MIT; ``pip install "earmark[probes]"``) unless ``weights=PATH`` names another; the ``linear`` probe loads what
``earmark train-probe`` wrote, and ``learned`` the file in ``earmark/probes/weights/``, both with
``torch.load(weights_only=True)``. None keeps audio: only per-window scores leave a probe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .._extras import missing
from ..errors import ConfigError
from .base import SAMPLE_RATE, Probe, ProbeConfig, WindowGrid, register_probe
from .dsp import log_mel
from .weights import onnx_session, read_checkpoint, silero_weights, weights_file

LINEAR_FORMAT = "earmark.linear-probe"


# ----------------------------------------------------------------------------------------------- vad


@dataclass(frozen=True)
class VadConfig(ProbeConfig):
    weights: str | None = None
    """A Silero VAD v5/v6 ONNX file (default: the one the silero-vad package ships)."""
    min_scale: float = 0.1
    """p(speech) units: changes smaller than this never make an event."""


@lru_cache(maxsize=4)
def _vad_session(path: str):
    sess = onnx_session(path)
    names = sorted(i.name for i in sess.get_inputs())
    if names != ["input", "sr", "state"]:
        raise ConfigError(f"{path}: expected a Silero VAD v5/v6 ONNX model (inputs input, state, sr); "
                          f"this one takes {', '.join(names)}")
    return sess


@register_probe
class VadProbe(Probe):
    """Speech probability per window (Silero VAD on 32 ms chunks with 4 ms of context; the window's mean).

    As an eventness probe it finds speech; ``earmark.index(..., ignore_speech=True)`` uses it to remove speech
    from another probe's eventness.
    """

    name = "vad"
    Config = VadConfig
    raw_unit = "p(speech)"
    frame_length = 160
    reduce = "mean"
    summary = "speech activity (Silero VAD); also --ignore-speech"
    needs = "extra 'probes' (silero-vad, onnxruntime)"
    CHUNK = 512
    CONTEXT = 64

    @classmethod
    def unavailable(cls) -> str | None:
        return missing("onnxruntime", "probes") or (None if silero_weights() else
                                                    missing("silero_vad", "probes"))

    def reset(self) -> None:
        self._buf = np.zeros(0, np.float32)
        self._context = np.zeros(self.CONTEXT, np.float32)
        self._state = np.zeros((2, 1, 128), np.float32)
        self._last = 0.0
        self._sess = None

    def _session(self):
        if self._sess is None:
            why = missing("onnxruntime", "probes")
            if why:
                raise ConfigError(f"probe 'vad' {why}")
            path = self.config.weights or silero_weights()
            if path is None:
                raise ConfigError("probe 'vad' needs the Silero VAD model: pip install \"earmark[probes]\" "
                                  "(silero-vad ships it) or give weights=PATH to a silero_vad.onnx")
            self._sess = _vad_session(str(weights_file(path, "vad", "a silero_vad.onnx file")))
        return self._sess

    def frame_values(self, frames: np.ndarray) -> np.ndarray:
        """Each 10 ms frame gets the speech probability of the latest complete 32 ms chunk."""
        sess = self._session()
        data = np.concatenate([self._buf, frames.reshape(-1)])
        out = np.empty(len(frames))
        sr = np.array(SAMPLE_RATE, dtype=np.int64)
        n_chunks = len(data) // self.CHUNK
        probs = np.empty(n_chunks)
        for i in range(n_chunks):
            x = data[i * self.CHUNK:(i + 1) * self.CHUNK]
            inp = np.concatenate([self._context, x])[None, :].astype(np.float32)
            p, self._state = sess.run(None, {"input": inp, "state": self._state, "sr": sr})
            self._context = x[-self.CONTEXT:]
            probs[i] = float(np.asarray(p).reshape(-1)[0])
        # Frame j ends at sample (j + 1) * 160 of ``frames``; offset by what was buffered before.
        ends = len(self._buf) + (np.arange(len(frames)) + 1) * frames.shape[1]
        done = ends // self.CHUNK  # chunks complete when frame j ends
        for j, d in enumerate(done):
            out[j] = probs[d - 1] if d > 0 else self._last
        if n_chunks:
            self._last = float(probs[-1])
        self._buf = data[n_chunks * self.CHUNK:]
        return out


# ----------------------------------------------------------------------------------------------- linear


EMBEDDINGS = ("logmel-stats", "ast:FOLDER", "clap:FOLDER", "panns:FILE", "yamnet:FILE")
TAGGER_EMBEDDINGS = ("ast", "clap", "panns", "yamnet")


def parse_embed(spec: str) -> tuple[str, str | None]:
    """``logmel-stats`` or ``TAGGER:PATH`` -> (kind, weights); clear errors for anything else."""
    if spec == "logmel-stats":
        return spec, None
    kind, _, path = spec.partition(":")
    if kind not in TAGGER_EMBEDDINGS or not path:
        raise ConfigError(f"unknown embedding {spec!r}: use {', '.join(EMBEDDINGS)}")
    return kind, path


@dataclass(frozen=True)
class LinearConfig(ProbeConfig):
    weights: str | None = None
    """A probe from ``earmark train-probe`` (torch, loaded with weights_only=True)."""
    n_mels: int = 32
    embed: str | None = None
    """``TAGGER:PATH`` when the classifier reads a tagger's embedding (set from the checkpoint; give it to point
    at the tagger's weights elsewhere, e.g. ``panns:/models/Cnn14.pth``); None: log-mel statistics."""
    context_s: float = 0.0
    """Seconds on each side of a window whose median features are subtracted from the window's and appended to
    them (how the window differs from its surroundings); 0: none. Set from the checkpoint."""
    min_scale: float = 0.5
    """Logit units."""

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {"n_mels": (1, 256), "context_s": (0.0, 60.0)}


def logmel_frames(frames: np.ndarray, n_mels: int, n_fft: int = 512) -> np.ndarray:
    """(m, 400) frames -> (m, 2 * n_mels): log-mel (dB) and its square, so window means give mean and variance."""
    mel = log_mel(frames, n_fft, n_mels, 30.0, 8000.0)
    return np.concatenate([mel, mel * mel], 1)


def logmel_stats(window_means: np.ndarray) -> np.ndarray:
    """Window means of :func:`logmel_frames` -> (n, 2 * n_mels) features: per-band mean and standard deviation."""
    d = window_means.shape[1] // 2
    mean = window_means[:, :d]
    std = np.sqrt(np.maximum(window_means[:, d:] - mean * mean, 0.0))
    return np.concatenate([mean, std], 1).astype(np.float32)


def context_features(features: np.ndarray, radius: int, block: int = 2048) -> np.ndarray:
    """(n, d) window features -> (n, 2 d): each row, then the row minus the per-feature median of the rows within
    ``radius`` windows of it (fewer at the ends), computed ``block`` rows at a time (bounded memory on long files).
    """
    f = np.asarray(features, np.float32)
    n = len(f)
    padded = np.concatenate([np.full((radius, f.shape[1]), np.nan, np.float32), f,
                             np.full((radius, f.shape[1]), np.nan, np.float32)])
    med = np.empty_like(f)
    for a in range(0, n, block):
        b = min(n, a + block)
        view = np.lib.stride_tricks.sliding_window_view(padded[a: b + 2 * radius], 2 * radius + 1, axis=0)
        med[a:b] = np.nanmedian(view, axis=2)
    return np.concatenate([f, f - med], 1)


def build_classifier(n_in: int, hidden: int):
    from torch import nn

    if hidden <= 0:
        return nn.Linear(n_in, 1)
    return nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Linear(hidden, 1))


def load_linear(path: str | Path) -> tuple[Any, dict]:
    """(classifier, checkpoint metadata) from an ``earmark train-probe`` file; clear errors for anything else."""
    p = Path(path)
    ck = read_checkpoint(path, "linear", LINEAR_FORMAT, "earmark train-probe")
    try:
        clf = build_classifier(int(ck["n_in"]), int(ck["hidden"]))
        clf.load_state_dict(ck["state_dict"])
    except (KeyError, RuntimeError) as e:
        raise ConfigError(f"{p}: the linear probe's weights do not fit its architecture "
                          f"({str(e).splitlines()[0][:100]})") from None
    clf.eval()
    return clf, ck


@register_probe
class LinearProbe(Probe):
    """A classifier of labelled seconds on log-mel statistics (per band mean and std over the window)."""

    name = "linear"
    Config = LinearConfig
    raw_unit = "logit"
    frame_length = 400
    reduce = "mean"
    summary = "classifier trained on labelled seconds (earmark train-probe); learned eventness"
    needs = "extra 'eval' (torch) and --probe-weights from `earmark train-probe`"
    needs_weights = True

    requires = (("torch", "eval"),)

    def weights_path(self) -> str | None:
        """The checkpoint to load (``linear``: the ``weights`` setting; no default)."""
        return self.config.weights

    def __init__(self, config: ProbeConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self._clf = None
        self._weights = self.weights_path()
        if self._weights:  # a bad file fails before any decoding
            why = self.unavailable()
            if why:
                raise ConfigError(f"probe {self.name!r} {why}")
            self._clf, ck = load_linear(self._weights)
            # The checkpoint says what front end it was trained on.
            embed = ck.get("embed", "logmel-stats")
            if embed != "logmel-stats" and not self.config.embed:
                self.config = dataclasses.replace(self.config, embed=str(embed))
            elif embed == "logmel-stats" and self.config.embed:
                raise ConfigError(f"{self._weights}: trained on log-mel statistics, not on {self.config.embed}")
            trained = {"n_mels": int(ck["n_mels"]), "context_s": float(ck.get("context_s", 0.0))}
            if any(getattr(self.config, k) != v for k, v in trained.items()):
                self.config = dataclasses.replace(self.config, **trained)
            self._norm = (np.asarray(ck["mean"], np.float32), np.asarray(ck["std"], np.float32))
        self._tagger = None
        if self.config.embed:
            from .base import get_probe

            kind, path = parse_embed(self.config.embed)
            self._tagger = get_probe(kind, weights=path)
            self.frame_length = self._tagger.frame_length  # the tagger reads samples, not log-mel frames
        if self._clf is not None:
            n_in = int(ck["n_in"])
            n_stats = 2 * self.config.n_mels * (2 if self.config.context_s > 0 else 1)
            if self._tagger is None and n_in != n_stats:
                raise ConfigError(f"{self._weights}: expects {n_in} inputs, log-mel statistics give {n_stats}")

    def frame_values(self, frames: np.ndarray) -> np.ndarray:
        if self._tagger is not None:
            return self._tagger.frame_values(frames)
        return logmel_frames(frames, self.config.n_mels)

    def features(self, frame_values: np.ndarray, grid: WindowGrid) -> np.ndarray:
        """The classifier's input per window: the embedding (log-mel statistics or a tagger's), and with
        ``context_s`` its difference from the median of the surrounding windows."""
        if self._tagger is not None:
            f = self._tagger.embeddings(frame_values, grid)
        else:
            f = logmel_stats(super().window_values(frame_values, grid))
        if self.config.context_s > 0:
            f = context_features(f, max(1, round(self.config.context_s / grid.hop_s)))
        return f

    def hidden(self, frame_values: np.ndarray, grid: WindowGrid) -> np.ndarray:
        """The classifier's hidden layer per window (n, hidden): a frozen embedding taught by the probe's labels
        (``earmark highlights --scorer activation --embedding learned``). Logistic-regression probes have none."""
        import torch

        if self._clf is None:
            weights_file(None, "linear", "--probe-weights PATH (make one with `earmark train-probe`)")
        if not hasattr(self._clf, "__getitem__"):
            raise ConfigError(f"{self._weights}: a logistic-regression probe (--hidden 0) has no hidden layer")
        x = (self.features(frame_values, grid) - self._norm[0]) / self._norm[1]
        with torch.no_grad():
            return self._clf[1](self._clf[0](torch.from_numpy(x))).double().numpy()

    def window_values(self, frame_values: np.ndarray, grid: WindowGrid) -> np.ndarray:
        import torch

        if self._clf is None:
            weights_file(None, "linear", "--probe-weights PATH (make one with `earmark train-probe`)")
        f = self.features(frame_values, grid)
        if f.shape[1] != len(self._norm[0]):
            raise ConfigError(f"{self._weights}: trained on {len(self._norm[0])} features, "
                              f"{self.config.embed or 'log-mel statistics'} gives {f.shape[1]}")
        x = (f - self._norm[0]) / self._norm[1]
        with torch.no_grad():
            return self._clf(torch.from_numpy(x)).squeeze(-1).double().numpy()


# ----------------------------------------------------------------------------------------------- learned

LEARNED_WEIGHTS = "weights/learned_v1.pt"
"""The shipped checkpoint, relative to the ``earmark.probes`` package."""


def learned_weights() -> Path:
    """Where the shipped ``learned`` checkpoint is (inside the installed package)."""
    from importlib import resources

    return Path(str(resources.files("earmark.probes").joinpath(LEARNED_WEIGHTS)))


@register_probe
class LearnedProbe(LinearProbe):
    """Eventness learned from real recordings, out of the box: a ``linear`` probe whose weights ship with earmark.

    An MLP (128 -> 32 -> 1, GELU) on each window's log-mel statistics (32 bands, mean and std) and their
    difference from the median of the windows within 10 s: how likely an object sound (an animal, a tool, an
    instrument, a vehicle ...) is on, as opposed to room tone, music or speech. Trained on mixtures of real
    recordings from Debian packages, reproducibly::

        apt-get install tuxpaint-stamps-default asterisk-moh-opsound-wav asterisk-core-sounds-en-wav
        earmark train-probe --dataset sounds --context 10 --seed 0 --out src/earmark/probes/weights/learned_v1.pt

    (600 mixtures of 60 s, seed 0: Tux Paint's object sounds at SNRs drawn from -6..+12 dB over Asterisk's music
    on hold, Tux Paint's spoken names and Asterisk's English prompts, or room tone; see
    :mod:`earmark.realsound`). benchmarks/learned_probe.py measures it against energy, flux and onset on sounds
    from other packages. ``weights=PATH`` loads another ``earmark train-probe`` checkpoint instead.

    >>> import earmark                                               # doctest: +SKIP
    >>> tl = earmark.index("clip.mp4", probe="learned")               # doctest: +SKIP
    """

    name = "learned"
    summary = "object sounds vs room tone, music and speech (MLP on log-mel statistics, shipped weights)"
    needs = "extra 'probes' (torch); the weights ship with earmark"
    needs_weights = False

    requires = (("torch", "probes"),)

    def weights_path(self) -> str | None:
        return self.config.weights or str(learned_weights())
