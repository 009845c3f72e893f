"""``earmark train-probe``: fit the ``linear`` probe on labelled seconds, of an AVE-layout dataset (AVE or SynthAVE)
or of mixtures of real recordings from Debian packages (``--dataset sounds``: how the shipped ``learned`` probe is
made).

Per clip, the probe's own front end (:class:`earmark.probes.learned.LinearProbe`: log-mel statistics per window,
optionally with their difference from the surrounding windows' median, ``context_s``) gives one feature row per
second. AVE/SynthAVE: the target is "an event is on" (the second's AVE label is not background). ``sounds``:
``clips`` mixtures of 60 s from :mod:`earmark.realsound` (Tux Paint's object sounds at SNRs drawn from ``snr_db``
over Asterisk's music on hold, spoken names and prompts, or room tone, at a clip gain drawn from -20..0 dB); the
target is "an event covers at least 0.25 s of the window", and windows an event only grazes are left out of
training. One object recording in five (by a hash of its name) never enters training: it is mixed into
``clips // 5`` validation clips.

A small classifier (logistic regression with ``hidden=0``, else one hidden layer) is trained with AdamW on one
CPU thread (the same file on every run), standardised by train statistics; val/test ROC AUC and anchor Recall@K
are reported. The file is a plain dict of tensors and numbers (``torch.load(weights_only=True)`` reads it).
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._fit import adamw_epochs
from ..errors import ConfigError
from ..probes.base import SAMPLE_RATE, frame_count, window_grid
from ..probes.learned import parse_embed
from ..runner import run_map
from ..types import Progress

DATASETS = ("synth", "realstamp", "ave", "sounds")
SOUND_GAIN_DB = (-20.0, 0.0)
"""``sounds``: every mixture is played back this much quieter or louder (the classifier must not learn a level)."""


@dataclass(frozen=True)
class TrainProbeConfig:
    dataset: str = "synth"
    """``synth`` or ``ave`` (labelled clips under ``root``), or ``sounds`` (mixtures of Debian packages' sounds)."""
    root: str = ""
    embed: str = "logmel-stats"
    context_s: float = 0.0
    """Append each window's difference from the median of the windows within this many seconds (0: none)."""
    hidden: int = 32
    epochs: int = 40
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 256
    seed: int = 0
    n_mels: int = 32
    limit: dict[str, int] | None = None
    workers: int | None = None
    clips: int = 600
    """``sounds``: training mixtures of 60 s (and ``clips // 5`` validation mixtures)."""
    snr_db: tuple[float, float] = (-6.0, 12.0)
    """``sounds``: each event's SNR against its bed is drawn from this range (dB)."""


def _front_end(n_mels: int, embed: str, context_s: float):
    from ..probes.learned import LinearProbe

    return LinearProbe(n_mels=n_mels, embed=None if embed == "logmel-stats" else embed, context_s=context_s)


def clip_features(path: str, segments: int, n_mels: int = 32, embed: str = "logmel-stats",
                  context_s: float = 0.0) -> np.ndarray:
    """(segments, features) for a clip's one-second windows, the linear probe's input: log-mel statistics
    (2 * n_mels), or a tagger's per-window embedding (``embed="panns:Cnn14.pth"`` etc.), and with ``context_s``
    their difference from the surrounding windows."""
    from ..index import frame_values
    from ..media.audio import select_audio_stream
    from ..media.container import info

    vi = info(path)
    prb = _front_end(n_mels, embed, context_s)
    grid = window_grid(float(segments), 1.0, 1.0)
    values, _, _ = frame_values(vi, select_audio_stream(vi, None), prb, grid, jobs=1)
    return prb.features(values, grid)


def audio_features(audio: np.ndarray, n_mels: int = 32, embed: str = "logmel-stats",
                   context_s: float = 0.0) -> np.ndarray:
    """:func:`clip_features` of 16 kHz mono samples held in memory (one row per second)."""
    prb = _front_end(n_mels, embed, context_s)
    grid = window_grid(len(audio) / SAMPLE_RATE, 1.0, 1.0)
    values = prb.frame_values_stream([np.asarray(audio, np.float32)], frame_count(grid))
    return prb.features(values, grid)


def _clip_job(args: tuple[str, int, int, str, float]) -> np.ndarray:
    return clip_features(*args)


Features = dict[str, tuple[np.ndarray, np.ndarray, int]]
"""split -> (features (clips, windows, d), targets (clips, windows): 1 event, 0 not, -1 left out; clip count)."""


def sound_features(cfg: TrainProbeConfig, progress: Progress | None = None) -> Features:
    """Train and val features of ``--dataset sounds``: seeded mixtures of the :data:`earmark.realsound.TRAIN_SETS`
    (one object recording in five kept for val), each bed in turn."""
    from .. import realsound as rs

    pool = rs.load_pool(rs.TRAIN_SETS)
    held = [rs.split_of(Path(f), 5) == "val" for f in pool.files["event"]]
    events = {"train": [x for x, h in zip(pool.events, held) if not h],
              "val": [x for x, h in zip(pool.events, held) if h]}
    counts = {"train": cfg.clips, "val": max(1, cfg.clips // 5)}
    out: Features = {}
    for k, split in enumerate(("train", "val")):
        xs, ys = [], []
        for i in range(counts[split]):
            rng = np.random.default_rng([cfg.seed, k, i])
            m = rs.make_clip(rng, rs.BEDS[i % len(rs.BEDS)], events[split], pool.music, pool.speech,
                             snr_db=tuple(cfg.snr_db), gain_db=SOUND_GAIN_DB)
            x = audio_features(m.audio, cfg.n_mels, cfg.embed, cfg.context_s)
            xs.append(x)
            ys.append(rs.window_targets(m.truth, np.arange(len(x), dtype=np.float64), 1.0))
            if progress and ((i + 1) % 50 == 0 or i + 1 == counts[split]):
                progress(split, i + 1, counts[split])
        out[split] = (np.stack(xs), np.stack(ys), counts[split])
    return out


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), via ranks."""
    from scipy.stats import rankdata

    pos = y.astype(bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def ave_features(cfg: TrainProbeConfig, tagger: bool,
                 progress: Progress | None = None) -> Features:
    """Features of the train/val/test clips of an AVE, SynthAVE or RealStamp folder (``cfg.root``)."""
    from ..eval.datasets import load_ave

    if not cfg.root:
        raise ConfigError("train-probe needs --root DIR (an AVE, SynthAVE or RealStamp folder)")
    root = Path(cfg.root)
    if cfg.dataset in ("synth", "realstamp"):
        from ..eval.generate import load_generated
        from ..eval.loading import generator

        _, _, manifest_name, name = generator(cfg.dataset)
        ds, _ = load_generated(root, manifest_name, f"earmark.{name}", limit=cfg.limit)
    else:
        ds = load_ave(root, limit=cfg.limit)
    feats: Features = {}
    workers = cfg.workers or 2
    for split in ("train", "val", "test"):
        clips = ds.available(split)
        if not clips:
            continue
        jobs = [(str(c.path), ds.segments, cfg.n_mels, cfg.embed, cfg.context_s) for c in clips]
        # A tagger runs torch in the workers: fork after torch has started its OpenMP pool is not safe (a forked
        # worker crashed in CI), so those workers start fresh.
        xs = run_map(_clip_job, jobs, workers=workers if len(jobs) > 4 else 1, fresh=tagger, progress=progress,
                     stage=split)
        y = np.stack([(c.labels != ds.background).astype(np.float32) for c in clips])
        feats[split] = (np.stack(xs), y, len(clips))
    if "train" not in feats:
        raise ConfigError(f"{root}: no clips with videos in the train split")
    return feats


def train_probe(cfg: TrainProbeConfig, out: str | Path,
                progress: Progress | None = None) -> dict[str, Any]:
    """Train the linear probe and write it to ``out``; returns the metrics (also stored in the file)."""
    import torch

    from .._io import atomic_path
    from ..probes.learned import LINEAR_FORMAT

    kind, weights = parse_embed(cfg.embed)
    if weights is not None:  # a bad tagger path fails before any decoding; the file records where it is
        from dataclasses import replace

        from ..probes.base import get_probe

        get_probe(kind, weights=weights)
        cfg = replace(cfg, embed=f"{kind}:{Path(weights).resolve()}")
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {cfg.dataset!r}: use {', '.join(DATASETS)}")
    if cfg.context_s < 0:
        raise ConfigError(f"context must be >= 0 seconds, got {cfg.context_s}")
    if cfg.dataset == "sounds":
        if cfg.clips < 1:
            raise ConfigError(f"clips must be >= 1, got {cfg.clips}")
        feats = sound_features(cfg, progress)
    else:
        feats = ave_features(cfg, weights is not None, progress)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in the same order, so the same file on every run
    try:
        clf, mean, std = fit_classifier(feats["train"][0], feats["train"][1], cfg)
    finally:
        torch.set_num_threads(threads)
    metrics: dict[str, Any] = {}
    for split, (xs, ys, n) in feats.items():
        with torch.no_grad():
            s = clf(torch.from_numpy((xs.reshape(-1, xs.shape[-1]) - mean) / std)).squeeze(-1).numpy()
        s = s.reshape(ys.shape)
        scored = ys >= 0
        metrics[split] = {"clips": n, "auc": roc_auc(ys[scored], s[scored]), **top_k_metrics(s, ys != 0, 2)}
    ck = {"format": LINEAR_FORMAT, "version": 1, "embed": cfg.embed, "n_mels": cfg.n_mels,
          "context_s": float(cfg.context_s), "n_in": int(mean.shape[0]), "hidden": cfg.hidden,
          "state_dict": clf.state_dict(), "mean": torch.from_numpy(mean), "std": torch.from_numpy(std),
          "config": json.dumps(asdict(cfg), sort_keys=True), "metrics": json.dumps(metrics, sort_keys=True)}
    buf = io.BytesIO()  # not the file itself: torch.save would name the archive's records after the temporary file
    torch.save(ck, buf)
    with atomic_path(out) as tmp:
        tmp.write_bytes(buf.getvalue())
    return metrics


def fit_classifier(x_train: np.ndarray, y_train: np.ndarray, cfg: TrainProbeConfig) -> tuple[Any, np.ndarray,
                                                                                              np.ndarray]:
    """(classifier, feature mean, feature std): AdamW on the standardised rows whose target is not -1, positives
    weighted by the negative/positive ratio."""
    import torch
    from torch.nn import functional as F

    from ..probes.learned import build_classifier

    flat = x_train.reshape(-1, x_train.shape[-1])
    target = y_train.reshape(-1)
    keep = target >= 0
    flat, target = flat[keep], target[keep].astype(np.float32)
    mean, std = flat.mean(0), flat.std(0) + 1e-6
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    clf = build_classifier(flat.shape[1], cfg.hidden)
    x = torch.from_numpy((flat - mean) / std)
    y = torch.from_numpy(target)
    pos_weight = torch.tensor(float((1 - y).sum() / y.sum().clamp_min(1)))

    def batch_loss(idx: np.ndarray):
        i = torch.from_numpy(idx)
        return F.binary_cross_entropy_with_logits(clf(x[i]).squeeze(-1), y[i], pos_weight=pos_weight)

    adamw_epochs([clf], len(x), batch_loss, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                 weight_decay=cfg.weight_decay, rng=rng)
    clf.eval()
    return clf, mean, std


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
