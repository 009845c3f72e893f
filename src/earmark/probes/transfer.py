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

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..runner import run_map
from ..types import VideoInfo
from .base import ProbeConfig, register_probe, window_grid
from .learned import missing, read_checkpoint
from .visual import CutProbe, MotionProbe, NoveltyProbe, VisualConfig, VisualProbe, thumbnails, window_slices

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


def _encoders(n_vis: int, n_aud: int, dim: int, hidden: int):
    from torch import nn

    vis = nn.Sequential(nn.Linear(n_vis, hidden), nn.GELU(), nn.Linear(hidden, dim))
    aud = nn.Sequential(nn.Linear(n_aud, hidden), nn.GELU(), nn.Linear(hidden, dim))
    head = nn.Sequential(nn.GELU(), nn.Linear(dim, 1))
    return vis, aud, head


@dataclass(frozen=True)
class TransferTrainConfig:
    epochs: int = 60
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 256
    dim: int = 16
    hidden: int = 32
    contrastive: float = 0.5
    """Weight of the audio-visual agreement (InfoNCE) term."""
    temperature: float = 0.1
    seed: int = 0
    workers: int | None = None


def corpus_files(corpus: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(corpus, (str, Path)):
        root = Path(corpus)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".mp4", ".mkv", ".webm", ".mov"))
        elif root.is_file():
            files = [root]
        else:
            raise ConfigError(f"{root}: corpus does not exist (a folder of videos or one video)")
    else:
        files = [Path(p) for p in corpus]
    if not files:
        raise ConfigError(f"{corpus}: no videos (.mp4, .mkv, .webm, .mov) in the corpus")
    return files


def _video_job(path: str) -> tuple[str, np.ndarray | None, np.ndarray | None, np.ndarray | None, str | None]:
    """(path, visual features, audio features, audio eventness target) of one corpus video, or its error."""
    from ..errors import EarmarkError
    from ..index import frame_values
    from ..index import index as run_index
    from ..media.audio import select_audio_stream
    from ..media.probe import info
    from .learned import LinearProbe

    try:
        vi = info(path)
        if not vi.has_audio or vi.video is None:
            return path, None, None, None, "needs both audio and picture"
        vis = visual_window_features(vi)
        energy = run_index(path, probe="energy", video_info=vi, jobs=1, fallback=None)
        prb = LinearProbe()
        grid = window_grid(vi.duration_s, 1.0, 1.0)
        values, _, _ = frame_values(vi, select_audio_stream(vi, None), prb, grid, jobs=1)
        aud = prb.features(values, grid)
        target = np.clip(energy.scores, *TARGET_CLIP).astype(np.float32)
        return path, vis, aud, target, None
    except EarmarkError as e:
        return path, None, None, None, str(e)


def train_transfer(corpus: str | Path | Sequence[str | Path], out: str | Path,
                   cfg: TransferTrainConfig = TransferTrainConfig(),
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Train the visual scorer on ``corpus`` (videos with sound) and write it to ``out``; returns a summary."""
    import torch
    from torch.nn import functional as F

    from .._io import atomic_path

    files = corpus_files(corpus)
    jobs = [str(f) for f in files]
    results = run_map(_video_job, jobs, workers=cfg.workers if len(jobs) > 2 else 1,
                      progress=(lambda done: progress(done, len(jobs))) if progress else None)
    used = [r for r in results if r[4] is None]
    skipped = [f"{r[0]}: {r[4]}" for r in results if r[4] is not None]
    if not used:
        raise ConfigError(f"{corpus}: no usable video in the corpus (each needs audio and picture); "
                          + "; ".join(skipped[:3]))
    xv = np.concatenate([r[1] for r in used])
    xa = np.concatenate([r[2] for r in used])
    y = np.concatenate([r[3] for r in used])
    mv, sv = xv.mean(0), xv.std(0) + 1e-6
    ma, sa = xa.mean(0), xa.std(0) + 1e-6
    ym, ys = float(y.mean()), float(y.std() + 1e-6)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    vis, aud, head = _encoders(xv.shape[1], xa.shape[1], cfg.dim, cfg.hidden)
    params = [*vis.parameters(), *aud.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    tv = torch.from_numpy((xv - mv) / sv)
    ta = torch.from_numpy((xa - ma) / sa)
    ty = torch.from_numpy((y - ym) / ys)
    for _ in range(cfg.epochs):
        order = torch.from_numpy(rng.permutation(len(tv)))
        for i in range(0, len(tv), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            ev, ea = vis(tv[idx]), aud(ta[idx])
            loss = F.mse_loss(head(ev).squeeze(-1), ty[idx])
            if cfg.contrastive > 0 and len(idx) > 1:
                logits = F.normalize(ev, dim=-1) @ F.normalize(ea, dim=-1).T / cfg.temperature
                target = torch.arange(len(idx))
                loss = loss + cfg.contrastive * 0.5 * (F.cross_entropy(logits, target) +
                                                       F.cross_entropy(logits.T, target))
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = head(vis(tv)).squeeze(-1).numpy()
    corr = float(np.corrcoef(pred, ty.numpy())[0, 1]) if len(pred) > 2 else float("nan")
    summary = {"videos": len(used), "skipped": len(skipped), "windows": int(len(y)), "train_corr": corr,
               "skipped_examples": skipped[:5]}
    ck = {"format": TRANSFER_FORMAT, "version": 1, "features": list(VISUAL_FEATURES), "n_in": int(xv.shape[1]),
          "dim": cfg.dim, "hidden": cfg.hidden, "visual": vis.state_dict(), "head": head.state_dict(),
          "mean": torch.from_numpy(mv), "std": torch.from_numpy(sv), "config": json.dumps(asdict(cfg)),
          "summary": json.dumps(summary)}
    with atomic_path(out) as tmp:
        torch.save(ck, tmp)
    return summary


def load_transfer(path: str | Path) -> tuple[Any, dict]:
    from torch import nn

    p = Path(path)
    ck = read_checkpoint(path, "transfer", TRANSFER_FORMAT, "earmark train-transfer")
    if list(ck.get("features", [])) != list(VISUAL_FEATURES):
        raise ConfigError(f"{p}: made for other visual features ({ck.get('features')}); retrain it")
    try:
        vis, _, head = _encoders(int(ck["n_in"]), 1, int(ck["dim"]), int(ck["hidden"]))
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

    @classmethod
    def unavailable(cls) -> str | None:
        return missing("torch", "eval")

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
