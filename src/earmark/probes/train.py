"""``earmark train-probe``: fit the ``linear`` probe on labelled seconds of an AVE-layout dataset (AVE or SynthAVE).

Per clip, the probe's own front end (:class:`earmark.probes.learned.LinearProbe`, log-mel statistics per window)
gives one feature row per second; the target is "an event is on" (the second's AVE label is not background).
A small classifier (logistic regression with ``hidden=0``, else one hidden layer) is trained with AdamW on the
train split, standardised by train statistics; val/test ROC AUC and anchor Recall@K are reported. The file is a
plain dict of tensors and numbers (``torch.load(weights_only=True)`` reads it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import window_grid


@dataclass(frozen=True)
class TrainProbeConfig:
    dataset: str = "synth"
    root: str = ""
    embed: str = "logmel-stats"
    hidden: int = 32
    epochs: int = 40
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 256
    seed: int = 0
    n_mels: int = 32
    limit: dict[str, int] | None = None
    workers: int | None = None


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


def clip_features(path: str, segments: int, n_mels: int = 32, embed: str = "logmel-stats") -> np.ndarray:
    """(segments, features) for a clip's one-second windows, the linear probe's input: log-mel statistics
    (2 * n_mels), or a tagger's per-window embedding (``embed="panns:Cnn14.pth"`` etc.)."""
    from ..index import frame_values
    from ..media.audio import select_audio_stream
    from ..media.probe import info
    from .learned import LinearProbe

    vi = info(path)
    prb = LinearProbe(n_mels=n_mels, embed=None if embed == "logmel-stats" else embed)
    grid = window_grid(float(segments), 1.0, 1.0)
    values, _, _ = frame_values(vi, select_audio_stream(vi, None), prb, grid, jobs=1)
    return prb.features(values, grid)


def _clip_job(args: tuple[str, int, int, str]) -> np.ndarray:
    return clip_features(*args)


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), via ranks."""
    from scipy.stats import rankdata

    pos = y.astype(bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def train_probe(cfg: TrainProbeConfig, out: str | Path,
                progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Train the linear probe and write it to ``out``; returns the metrics (also stored in the file)."""
    import torch
    from torch.nn import functional as F

    from .._io import atomic_path
    from ..eval.datasets import load_ave
    from .learned import LINEAR_FORMAT, build_classifier

    kind, weights = parse_embed(cfg.embed)
    if weights is not None:  # a bad tagger path fails before any decoding; the file records where it is
        from dataclasses import replace

        from .base import get_probe

        get_probe(kind, weights=weights)
        cfg = replace(cfg, embed=f"{kind}:{Path(weights).resolve()}")
    if cfg.dataset not in ("ave", "synth"):
        raise ConfigError(f"unknown dataset {cfg.dataset!r}: use ave or synth")
    if not cfg.root:
        raise ConfigError("train-probe needs --root DIR (an AVE or SynthAVE folder)")
    root = Path(cfg.root)
    kw: dict[str, Any] = {}
    if cfg.dataset == "synth":
        manifest = root / "synthave.json"
        if not manifest.exists():
            raise ConfigError(f"{root}: no synthave.json; make the folder with `earmark eval synth --make {root}`")
        m = json.loads(manifest.read_text())
        kw = {"segments": int(m["segments"]), "name": "synthave", "classes": tuple(m["classes"])}
    ds = load_ave(root, limit=cfg.limit, **kw)
    feats: dict[str, tuple[np.ndarray, np.ndarray, list]] = {}
    workers = cfg.workers or 2
    for split in ("train", "val", "test"):
        clips = ds.available(split)
        if not clips:
            continue
        jobs = [(str(c.path), ds.segments, cfg.n_mels, cfg.embed) for c in clips]
        if workers > 1 and len(jobs) > 4:
            # A tagger runs torch in the workers: fork after torch has started its OpenMP pool is not safe
            # (a forked worker crashed in CI), so those workers start fresh.
            import multiprocessing as mp

            ctx = mp.get_context("spawn") if weights is not None else None
            with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                xs = list(pool.map(_clip_job, jobs, chunksize=8))
        else:
            xs = [_clip_job(j) for j in jobs]
        if progress:
            progress(split, len(xs), len(xs))
        y = np.stack([(c.labels != ds.background).astype(np.float32) for c in clips])
        feats[split] = (np.stack(xs), y, clips)
    if "train" not in feats:
        raise ConfigError(f"{root}: no clips with videos in the train split")
    xtr, ytr, _ = feats["train"]
    flat = xtr.reshape(-1, xtr.shape[-1])
    mean, std = flat.mean(0), flat.std(0) + 1e-6
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    clf = build_classifier(flat.shape[1], cfg.hidden)
    opt = torch.optim.AdamW(clf.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x = torch.from_numpy((flat - mean) / std)
    y = torch.from_numpy(ytr.reshape(-1))
    pos_weight = torch.tensor(float((1 - y).sum() / y.sum().clamp_min(1)))
    for _ in range(cfg.epochs):
        clf.train()
        order = torch.from_numpy(rng.permutation(len(x)))
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = F.binary_cross_entropy_with_logits(clf(x[idx]).squeeze(-1), y[idx], pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
    clf.eval()
    metrics: dict[str, Any] = {}
    for split, (xs, ys, clips) in feats.items():
        with torch.no_grad():
            s = clf(torch.from_numpy((xs.reshape(-1, xs.shape[-1]) - mean) / std)).squeeze(-1).numpy()
        s = s.reshape(ys.shape)
        metrics[split] = {"clips": len(clips), "auc": roc_auc(ys.ravel(), s.ravel()), **top_k_metrics(s, ys, 2)}
    ck = {"format": LINEAR_FORMAT, "version": 1, "embed": cfg.embed, "n_mels": cfg.n_mels, "n_in": int(flat.shape[1]),
          "hidden": cfg.hidden, "state_dict": clf.state_dict(), "mean": torch.from_numpy(mean),
          "std": torch.from_numpy(std), "config": json.dumps(asdict(cfg), sort_keys=True),
          "metrics": json.dumps(metrics, sort_keys=True)}
    with atomic_path(out) as tmp:
        torch.save(ck, tmp)
    return metrics


def top_k_metrics(scores: np.ndarray, targets: np.ndarray, k: int) -> dict[str, float]:
    """Recall@K (a top-``k`` second is an event) and anchor precision over clips with an event, as the eval does."""
    from ..eval.stats import anchor_precision, recall_at_k

    rec, prec = [], []
    for s, y in zip(scores, targets):
        ev = np.flatnonzero(y)
        top = np.argsort(-s, kind="stable")[:k]
        if len(ev):
            rec.append(recall_at_k(top, ev))
            prec.append(anchor_precision(top, ev))
    return {f"recall@{k}": float(np.mean(rec)) if rec else float("nan"),
            f"precision@{k}": float(np.mean(prec)) if prec else float("nan")}
