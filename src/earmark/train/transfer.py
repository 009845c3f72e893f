"""``earmark train-transfer``: teach the picture-only ``transfer`` probe (:mod:`earmark.probes.transfer`) from the
sound of an unlabelled corpus. Per video (on :mod:`earmark.runner`): the visual window features, the ``linear``
probe's log-mel statistics and the ``energy`` probe's z-score as the target; then two small encoders and a head
trained with AdamW (regression plus an audio-visual InfoNCE term); the visual encoder and head are saved."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._fit import adamw_epochs
from ..errors import ConfigError
from ..probes.base import window_grid
from ..probes.transfer import TARGET_CLIP, TRANSFER_FORMAT, VISUAL_FEATURES, encoders, visual_window_features
from ..runner import run_map
from ..types import Progress


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
    from ..media.container import info
    from ..probes.learned import LinearProbe

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
                   progress: Progress | None = None) -> dict[str, Any]:
    """Train the visual scorer on ``corpus`` (videos with sound) and write it to ``out``; returns a summary."""
    import torch
    from torch.nn import functional as F

    from .._io import atomic_path

    files = corpus_files(corpus)
    jobs = [str(f) for f in files]
    results = run_map(_video_job, jobs, workers=cfg.workers if len(jobs) > 2 else 1,
                      progress=progress, stage="features")
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
    vis, aud, head = encoders(xv.shape[1], xa.shape[1], cfg.dim, cfg.hidden)
    tv = torch.from_numpy((xv - mv) / sv)
    ta = torch.from_numpy((xa - ma) / sa)
    ty = torch.from_numpy((y - ym) / ys)

    def batch_loss(idx: np.ndarray):
        i = torch.from_numpy(idx)
        ev, ea = vis(tv[i]), aud(ta[i])
        loss = F.mse_loss(head(ev).squeeze(-1), ty[i])
        if cfg.contrastive > 0 and len(i) > 1:  # audio-visual InfoNCE, both directions
            logits = F.normalize(ev, dim=-1) @ F.normalize(ea, dim=-1).T / cfg.temperature
            target = torch.arange(len(i))
            loss = loss + cfg.contrastive * 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        return loss

    adamw_epochs([vis, aud, head], len(tv), batch_loss, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                 weight_decay=cfg.weight_decay, rng=rng)
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
