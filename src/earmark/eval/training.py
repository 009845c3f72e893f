"""Training and testing one head on one plan's features: packing, batching, the loss, early stopping, the gate
analysis. What :mod:`earmark.eval.protocol` runs per (strategy, seed); torch is imported inside the functions.

Runs are seeded and single-threaded, so a number never depends on which worker process trained it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._fit import adamw_epochs
from ..errors import ConfigError
from ..types import Progress
from .config import EvalConfig, with_defaults
from .datasets import Clip
from .prepare import AUDIO_DIM, ClipResult, time_key


@dataclass
class SplitData:
    """Packed features of one split for one plan choice: ready to batch without per-second Python work."""

    tokens: Any  # torch (N, D) float32 patch tokens, clip after clip, second after second
    sec_start: np.ndarray  # (clips * T + 1,) token offset of every second
    cls: Any  # torch (clips, T, D)
    audio: Any  # torch (clips, T, A)
    y: Any  # torch (clips, T) int64

    def __len__(self) -> int:
        return int(self.y.shape[0])


def pack(clips: Sequence[Clip], results: dict[str, ClipResult], plan_key: str) -> SplitData:
    import torch

    toks, cls, lens = [], [], []
    for c in clips:
        r = results[c.video_id]
        for f in r.plans[plan_key].frames:
            c_, t_ = r.features[(time_key(f.time_s), f.width, f.height)]
            toks.append(t_)
            cls.append(c_)
            lens.append(len(t_))
    T = clips[0].labels.shape[0]
    return SplitData(torch.from_numpy(np.concatenate(toks).astype(np.float32)),
                     np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
                     torch.from_numpy(np.stack(cls).astype(np.float32).reshape(len(clips), T, -1)),
                     torch.from_numpy(np.stack([results[c.video_id].audio for c in clips])),
                     torch.from_numpy(np.stack([c.labels for c in clips])))


def batch_of(data: SplitData, idx: np.ndarray, audio: bool):
    """Clips ``idx`` as a :class:`~earmark.eval.heads.Batch` whose tokens are grouped by token count."""
    import torch

    from .heads import Batch, Group

    T = int(data.y.shape[1])
    secs = (idx[:, None] * T + np.arange(T)).reshape(-1)  # the batch's seconds, in order
    starts, lens = data.sec_start[secs], data.sec_start[secs + 1] - data.sec_start[secs]
    order = np.argsort(lens, kind="stable")  # seconds of one size together
    n = int(lens.sum())
    offsets = np.concatenate([[0], np.cumsum(lens[order])[:-1]])
    rows = np.repeat(starts[order] - offsets, lens[order]) + np.arange(n)
    seg = np.repeat(order, lens[order])
    groups, i = [], 0
    for length, count in zip(*np.unique(lens[order], return_counts=True)):
        groups.append(Group(int(offsets[i]), int(count), int(length), torch.from_numpy(order[i:i + count])))
        i += count
    ti = torch.from_numpy(idx)
    return Batch(tokens=data.tokens[torch.from_numpy(rows)], seg=torch.from_numpy(seg),
                 cls=data.cls[ti].reshape(len(idx) * T, -1),
                 audio=data.audio[ti].reshape(len(idx) * T, -1) if audio else None, y=data.y[ti],
                 groups=tuple(groups) if lens.min() > 0 else None)


@dataclass
class TrainResult:
    accuracy: float
    per_clip: np.ndarray  # (clips,) test accuracy per clip
    predictions: np.ndarray  # (clips, T)
    epochs: int
    seconds: float
    gate_grad_spearman: float | None


def train_and_test(cfg: EvalConfig, train: SplitData, val: SplitData | None, test: SplitData, n_classes: int,
                   seed: int, audio: bool) -> TrainResult:
    import torch
    from torch.nn import functional as F

    from .heads import Head

    cfg = with_defaults(cfg)
    if cfg.patience is not None and (val is None or not len(val.y)):
        raise ConfigError("early stopping (--patience) chooses epochs on the val split, and there is none; "
                          "it never reads test: drop --patience or give a dataset with a val split")
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = Head(cfg.head, train.tokens.shape[1], n_classes, cfg.hidden, AUDIO_DIM if audio else 0)
    weight = (torch.from_numpy(balanced_weights(train.y.numpy(), n_classes))
              if cfg.class_weight == "balanced" else None)
    early = {"best": -1.0, "state": None, "since": 0}

    def batch_loss(idx: np.ndarray):
        b = batch_of(train, idx, audio)
        return F.cross_entropy(head(b).reshape(-1, n_classes), b.y.reshape(-1), weight=weight)

    def after_epoch(_: int) -> bool:  # early stopping reads val, never test
        if cfg.patience is None or val is None:
            return False
        acc = float((_predict(head, val, audio) == val.y.numpy()).mean())
        if acc > early["best"]:
            early.update(best=acc, since=0, state={k: v.clone() for k, v in head.state_dict().items()})
            return False
        early["since"] += 1
        return early["since"] >= cfg.patience

    epochs = adamw_epochs([head], len(train), batch_loss, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                          weight_decay=cfg.weight_decay, rng=rng, after_epoch=after_epoch)
    best_state = early["state"]
    if best_state is not None:
        head.load_state_dict(best_state)
    pred = _predict(head, test, audio)
    correct = pred == test.y.numpy()
    rho = _gate_vs_gradient(head, test, audio) if cfg.head == "gated" else None
    return TrainResult(float(correct.mean()), correct.mean(1), pred, epochs, time.perf_counter() - t0, rho)


def balanced_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class loss weights n / (present classes × count) (scikit-learn's "balanced"); 1 for absent classes,
    which never appear as a target."""
    counts = np.bincount(np.asarray(labels).reshape(-1), minlength=n_classes).astype(np.float64)
    present = counts > 0
    w = np.ones(n_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w.astype(np.float32)


def _predict(head, data: SplitData, audio: bool, batch: int = 128) -> np.ndarray:
    import torch

    head.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(data), batch):
            out.append(head(batch_of(data, np.arange(i, min(i + batch, len(data))), audio)).argmax(-1).numpy())
    return np.concatenate(out)


def _gate_vs_gradient(head, data: SplitData, audio: bool, clips: int = 32) -> float | None:
    """Mean Spearman correlation, per second, between the head's refined gates and |gradient × input|."""
    from scipy.stats import spearmanr

    from .heads import gradient_importance

    head.eval()
    b = batch_of(data, np.arange(min(clips, len(data))), audio)
    _, refined = head.importance(b)
    grad = gradient_importance(head, b)
    seg = b.seg.numpy()
    rhos = []
    for s in np.unique(seg):
        m = seg == s
        if m.sum() >= 4:
            r = spearmanr(refined.numpy()[m], grad.numpy()[m]).statistic
            if np.isfinite(r):
                rhos.append(r)
    return float(np.mean(rhos)) if rhos else None


# ------------------------------------------------------------------------------------------- workers

_SHARED: tuple | None = None
"""(config, splits, clip results, classes) while :func:`train_all` runs: forked training workers inherit it (the
packed features of a whole dataset are never pickled)."""


def _train_key(job: tuple[str, list[tuple[str, int, bool]]]) -> list[tuple[str, int, TrainResult]]:
    """Train every (strategy, seed) that uses one plan key: its features are packed once."""
    import torch

    from .._io import one_blas_thread

    torch.set_num_threads(1)
    assert _SHARED is not None, "_train_key runs inside train_all"
    cfg, splits, results, n_classes = _SHARED
    key, todo = job
    with one_blas_thread():
        tr, va, te = (pack(splits[s], results, key) if splits[s] else None for s in ("train", "val", "test"))
        return [(name, seed, train_and_test(cfg, tr, va, te, n_classes, seed, audio)) for name, seed, audio in todo]


def train_all(cfg: EvalConfig, splits: dict[str, list[Clip]], results: dict[str, ClipResult], n_classes: int,
              jobs: Sequence[tuple[str, list[tuple[str, int, bool]]]], workers: int | None = None,
              progress: Progress | None = None) -> list[tuple[str, int, TrainResult]]:
    """Every ``(plan key, [(strategy, seed, audio), ...])`` job on :mod:`earmark.runner` (forked workers share the
    features), as ``(strategy, seed, result)`` sorted by strategy and seed."""
    from ..runner import run

    global _SHARED
    total, done, trained = sum(len(todo) for _, todo in jobs), 0, []
    _SHARED = (cfg, splits, results, n_classes)
    try:
        for d in run(_train_key, jobs, workers=min(workers, len(jobs)) if workers else None, ordered=False):
            trained += d.value
            done += len(d.value)
            if progress:
                progress("train", done, total)
    finally:
        _SHARED = None
    return sorted(trained, key=lambda x: (x[0], x[1]))
