"""Modality transfer: audio teaches a visual-only saliency scorer (``earmark train-transfer``, ``--probe transfer``).

Training needs an unlabelled corpus of videos *with* sound; inference needs only the picture. Per window, cheap
visual features come from one pass over 64 px thumbnails (the statistics of the ``motion``, ``cut`` and
``novelty`` change values inside the window, and the window's colour and brightness), with the neighbouring
windows' features beside them. Two small encoders map visual features and audio features (log-mel statistics, as
the ``linear`` probe reads them) into a shared space; the visual side also predicts the window's audio eventness
(the ``energy`` probe's robust z-score, clipped). The loss is the regression error plus an audio-visual
contrastive agreement term (InfoNCE between the two embeddings of the same window against the other windows of
the batch), following unsupervised, modality-transferable highlight detection. At inference the visual encoder
and its head alone score each window: no audio is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..types import VideoInfo
from .base import ProbeConfig, register_probe, window_grid
from .visual import CutProbe, MotionProbe, NoveltyProbe, VisualConfig, VisualProbe, thumbnails, window_slices
from .weights import read_checkpoint

TRANSFER_FORMAT = "earmark.transfer-probe"
VISUAL_FEATURES = ("motion_max", "motion_mean", "cut_max", "cut_mean", "novelty_max", "novelty_mean",
                   "grey_mean", "grey_std", "saturation")
TARGET_CLIP = (-3.0, 10.0)


def visual_window_features(vi: VideoInfo, hop_s: float = 1.0, window_s: float = 1.0, fps: float = 2.0,
                           size: int = 64) -> np.ndarray:
    """(windows, 3 × len(VISUAL_FEATURES)): each window's features, then its previous and next window's."""
    probes = (MotionProbe(), CutProbe(), NoveltyProbe())
    for p in probes:
        p.reset()
    times, rows = [], []
    for t, img in thumbnails(vi, fps, size):
        g = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        mx, mn = img.max(2).astype(np.float32), img.min(2).astype(np.float32)
        sat = float(((mx - mn) / np.maximum(mx, 1.0)).mean())
        rows.append([p.thumb_value(img) for p in probes] + [float(g.mean()) / 255, float(g.std()) / 255, sat])
        times.append(t)
    v = np.asarray(rows, np.float64)
    if len(v) > 1:
        v[0, :3] = v[1, :3]
    t = np.asarray(times)
    grid = window_grid(vi.duration_s, hop_s, window_s)
    out = np.zeros((grid.n, len(VISUAL_FEATURES)))
    for i, sl in enumerate(window_slices(t, grid.starts(), window_s)):
        seg = v[sl]
        out[i] = [seg[:, 0].max(), seg[:, 0].mean(), seg[:, 1].max(), seg[:, 1].mean(), seg[:, 2].max(),
                  seg[:, 2].mean(), seg[:, 3].mean(), seg[:, 4].mean(), seg[:, 5].mean()]
    prev = np.vstack([out[:1], out[:-1]])
    nxt = np.vstack([out[1:], out[-1:]])
    return np.hstack([out, prev, nxt]).astype(np.float32)


def encoders(n_vis: int, n_aud: int, dim: int, hidden: int):
    from torch import nn

    vis = nn.Sequential(nn.Linear(n_vis, hidden), nn.GELU(), nn.Linear(hidden, dim))
    aud = nn.Sequential(nn.Linear(n_aud, hidden), nn.GELU(), nn.Linear(hidden, dim))
    head = nn.Sequential(nn.GELU(), nn.Linear(dim, 1))
    return vis, aud, head


def load_transfer(path: str | Path) -> tuple[Any, dict]:
    from torch import nn

    p = Path(path)
    ck = read_checkpoint(path, "transfer", TRANSFER_FORMAT, "earmark train-transfer")
    if list(ck.get("features", [])) != list(VISUAL_FEATURES):
        raise ConfigError(f"{p}: made for other visual features ({ck.get('features')}); retrain it")
    try:
        vis, _, head = encoders(int(ck["n_in"]), 1, int(ck["dim"]), int(ck["hidden"]))
        vis.load_state_dict(ck["visual"])
        head.load_state_dict(ck["head"])
    except (KeyError, RuntimeError) as e:
        raise ConfigError(f"{p}: the transfer scorer's weights do not fit its architecture "
                          f"({str(e).splitlines()[0][:100]})") from None
    model = nn.Sequential(vis, head).eval()
    return model, ck


@dataclass(frozen=True)
class TransferConfig(VisualConfig):
    weights: str | None = None
    """A scorer from ``earmark train-transfer``."""
    min_scale: float = 0.1


@register_probe
class TransferProbe(VisualProbe):
    """Visual-only saliency learned from audio eventness (``earmark train-transfer``); reads no audio."""

    name = "transfer"
    Config = TransferConfig
    raw_unit = "predicted eventness"
    summary = "visual scorer trained to predict audio eventness (earmark train-transfer); needs no audio"
    needs = "extra 'eval' (torch) and --probe-weights from `earmark train-transfer`"
    needs_weights = True

    requires = (("torch", "eval"),)

    def __init__(self, config: ProbeConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        if not self.config.weights:
            raise ConfigError("probe 'transfer' needs weights: --probe-weights PATH (make one with "
                              "`earmark train-transfer CORPUS`)")
        self._model, ck = load_transfer(self.config.weights)
        self._norm = (np.asarray(ck["mean"], np.float32), np.asarray(ck["std"], np.float32))

    def window_raw(self, vi: VideoInfo, hop_s: float, window_s: float) -> np.ndarray:
        import torch

        x = visual_window_features(vi, hop_s, window_s, self.config.fps, self.config.size)
        with torch.no_grad():
            return self._model(torch.from_numpy((x - self._norm[0]) / self._norm[1])).squeeze(-1).double().numpy()
