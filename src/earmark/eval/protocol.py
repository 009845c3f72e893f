"""The AVE equal-token protocol: strategies at equal visual tokens, frozen encoder, trained heads, paired stats.

>>> from earmark.eval.protocol import EvalConfig, run_eval           # doctest: +SKIP
>>> res = run_eval(EvalConfig(dataset="synth", quick=True), "results/")   # doctest: +SKIP
>>> res["strategies"]["anchored-energy"]["accuracy_mean"]               # doctest: +SKIP

Stages (timed): dataset (SynthAVE generation when needed) -> prepare (per clip, in worker processes: index
every probe, every plan via :func:`earmark.plan`, extract the union of planned pictures once, encode, cache)
-> train (per strategy × seed; the same seeds for every strategy, so comparisons are paired) -> evaluate ->
write the results folder.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..anchors import AnchorConfig
from ..budget.costs import cost_model
from ..budget.planner import BudgetTooSmallError, default_aspect, plan_frames
from ..errors import ConfigError
from .config import (  # noqa: F401  (re-exported: the protocol's public names)
    CLASS_WEIGHTS,
    GENERATED,
    HEADS,
    MAIN_STRATEGIES,
    EvalConfig,
    ProgressFn,
    for_segments,
    uniform_budget,
    with_defaults,
)
from .datasets import Clip, Dataset, load_ave
from .prepare import AUDIO_DIM, ClipJob, ClipResult, PlanRequest, run_clip_safe, time_key

# ------------------------------------------------------------------------------------------- plans


def plan_requests(cfg: EvalConfig, segments: int) -> tuple[list[PlanRequest], dict[str, dict[str, Any]]]:
    """Every plan a clip needs, and what each eval strategy trains on (plan key per seed, audio or not)."""
    reqs: dict[str, PlanRequest] = {}
    strategies: dict[str, dict[str, Any]] = {}

    def add(key: str, strategy: str, budget: int, probe: str | None = None, seed: int = 0) -> str:
        reqs.setdefault(key, PlanRequest(key, strategy, budget, probe, seed))
        return key

    seeds = range(cfg.seeds)
    u = add("uniform", "uniform", cfg.budget)
    strategies["uniform"] = {"plans": [u] * cfg.seeds, "audio": False, "group": "main"}
    for s in cfg.strategies:
        if s == "anchored":
            for p in cfg.probes:
                key = add(f"anchored-{p}", "anchored", cfg.budget, p)
                strategies[f"anchored-{p}"] = {"plans": [key] * cfg.seeds, "audio": False, "group": "main",
                                               "probe": p}
        elif s == "random":
            strategies["random"] = {"plans": [add(f"random@{i}", "random", cfg.budget, None, i) for i in seeds],
                                    "audio": False, "group": "main"}
        elif s == "fixed-spread":
            strategies["fixed-spread"] = {"plans": [add("fixed-spread", "fixed-spread", cfg.budget)] * cfg.seeds,
                                          "audio": False, "group": "main"}
        elif s == "oracle":
            strategies["oracle"] = {"plans": [add("oracle", "oracle", cfg.budget)] * cfg.seeds, "audio": False,
                                    "group": "main"}
        elif s == "uniform-112":
            b = uniform_budget(cfg.model, cfg.low_size, segments)
            strategies["uniform-112"] = {"plans": [add(f"uniform@{b}", "uniform", b)] * cfg.seeds,
                                         "audio": False, "group": "main"}
        elif s == "audio-concat":
            strategies["audio-concat"] = {"plans": [u] * cfg.seeds, "audio": True, "group": "main"}
    b_hi = uniform_budget(cfg.model, cfg.high_size, segments)
    strategies["uniform-448"] = {"plans": [add(f"uniform@{b_hi}", "uniform", b_hi)] * min(cfg.seeds, cfg.curve_seeds),
                                 "audio": False, "group": "resolution"}
    curve_probe = cfg.probes[0]
    for b in cfg.curve_budgets:
        for strat, probe in (("uniform", None), ("anchored", curve_probe)):
            name = f"curve:{strat}@{b}"
            key = f"{strat}-{probe}@{b}" if probe else f"uniform@{b}"
            if b == cfg.budget:
                key = f"anchored-{probe}" if probe else "uniform"
            strategies[name] = {"plans": [add(key, strat, b, probe)] * min(cfg.seeds, cfg.curve_seeds),
                                "audio": False, "group": "curve", "budget": b, "strategy": strat}
    strategies[f"curve:uniform@{b_hi}"] = {"plans": strategies["uniform-448"]["plans"], "audio": False,
                                           "group": "curve", "budget": b_hi, "strategy": "uniform"}
    # A curve point whose plan a main strategy already trains on reuses those runs (same seeds, same numbers).
    for spec in strategies.values():
        if spec["group"] == "curve":
            twin = next((m for m, o in strategies.items() if o["group"] != "curve" and not o["audio"]
                         and o["plans"][0] == spec["plans"][0]), None)
            if twin is not None:
                spec["reuse"] = twin
    return list(reqs.values()), strategies


def check_budget(cfg: EvalConfig, width: int, height: int, segments: int) -> list[int]:
    """Fail early when the main budget cannot be planned; return curve budgets that cannot (they are skipped)."""
    cm = cost_model(cfg.model)

    def shaped(budget: int) -> None:  # the random strategy takes the anchored shape without needing an index
        plan_frames(cm, float(segments), width, height, budget, "random", (), frames=segments, k=cfg.k,
                    ratio=cfg.ratio, aspect=default_aspect(cm), seed=0)

    try:
        shaped(cfg.budget)
    except BudgetTooSmallError as e:
        raise ConfigError(f"budget {cfg.budget} cannot be met equally by uniform and anchored plans: {e}") from None
    bad = []
    for b in cfg.curve_budgets:
        try:
            shaped(b)
        except BudgetTooSmallError:
            bad.append(b)
    return bad


# ------------------------------------------------------------------------------------------- dataset


def generator(dataset: str) -> tuple[Any, Callable[..., Path], str, str]:
    """(config class, maker, manifest file name, dataset name) of a generated dataset."""
    if dataset == "synth":
        from . import synthave

        return synthave.SynthConfig, synthave.make_synthave, synthave.MANIFEST, "synthave"
    from . import realstamp

    return realstamp.RealStampConfig, realstamp.make_realstamp, realstamp.MANIFEST, "realstamp"


def load_dataset(cfg: EvalConfig, work: Path, progress: ProgressFn | None = None) -> tuple[Dataset, dict]:
    """The AVE root as given, or a generated folder (SynthAVE, RealStamp; made when missing)."""
    meta: dict[str, Any] = {"name": cfg.dataset}
    if cfg.dataset == "ave":
        if not cfg.root:
            raise ConfigError("eval ave needs --root DIR (the AVE folder with Annotations.txt and the videos)")
        ds = load_ave(cfg.root, strict=cfg.strict, limit=cfg.limit)
        return ds, meta
    config_cls, make, manifest_name, name = generator(cfg.dataset)
    root = Path(cfg.root) if cfg.root else work / name
    # Resumable and checked: a folder made with other settings is refused, finished clips are kept.
    make(root, config_cls.from_dict(cfg.generator), workers=cfg.workers,
         progress=(lambda i, n: progress("generate", i, n)) if progress else None)
    from .generate import load_generated

    ds, m = load_generated(root, manifest_name, f"earmark.{name}", strict=cfg.strict, limit=cfg.limit)
    meta.update(root=str(root), generator_config=m["config"])
    return ds, meta


# ------------------------------------------------------------------------------------------- data


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


def _batch(data: SplitData, idx: np.ndarray, audio: bool):
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
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    weight = (torch.from_numpy(balanced_weights(train.y.numpy(), n_classes))
              if cfg.class_weight == "balanced" else None)
    best, best_state, since, epochs = -1.0, None, 0, 0
    n = len(train)
    for epoch in range(cfg.epochs):
        head.train()
        order = rng.permutation(n)
        for i in range(0, n, cfg.batch_size):
            b = _batch(train, order[i:i + cfg.batch_size], audio)
            loss = F.cross_entropy(head(b).reshape(-1, n_classes), b.y.reshape(-1), weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs = epoch + 1
        if cfg.patience is not None and val is not None:
            acc = float((_predict(head, val, audio) == val.y.numpy()).mean())
            if acc > best:
                best, since = acc, 0
                best_state = {k: v.clone() for k, v in head.state_dict().items()}
            else:
                since += 1
                if since >= cfg.patience:
                    break
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
            out.append(head(_batch(data, np.arange(i, min(i + batch, len(data))), audio)).argmax(-1).numpy())
    return np.concatenate(out)


def _gate_vs_gradient(head, data: SplitData, audio: bool, clips: int = 32) -> float | None:
    """Mean Spearman correlation, per second, between the head's refined gates and |gradient × input|."""
    from scipy.stats import spearmanr

    from .heads import gradient_importance

    head.eval()
    b = _batch(data, np.arange(min(clips, len(data))), audio)
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


# ------------------------------------------------------------------------------------------- run


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("earmark", "numpy", "scipy", "torch", "av", "transformers", "matplotlib"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def prepare_all(cfg: EvalConfig, ds: Dataset, cache: Path, requests: list[PlanRequest],
                progress: ProgressFn | None = None) -> tuple[dict[str, ClipResult], list[str]]:
    anchor = AnchorConfig(k=cfg.k, dilate_s=cfg.dilate_s, offset_s=cfg.anchor_offset_s, min_score=cfg.min_score,
                          min_gap_s=cfg.min_gap_s, mode=cfg.anchor_mode, threshold=cfg.anchor_threshold,
                          fill=cfg.anchor_fill)  # type: ignore[arg-type]
    clips = [c for s in ("train", "val", "test") for c in ds.available(s)]
    jobs = [ClipJob(c.video_id, str(c.path), tuple(c.truth), ds.segments, tuple(requests), tuple(cfg.probes),
                    cfg.model, cfg.k, cfg.ratio, anchor, cfg.encoder, str(cache),
                    tuple(sorted(cfg.probe_weights.items()))) for c in clips]
    workers = cfg.workers or min(2, os.cpu_count() or 1)
    results: dict[str, ClipResult] = {}
    errors: list[str] = []
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        # Model probes were loaded in this process by check(): their workers start fresh (spawn) rather than fork a
        # process whose torch may hold thread-pool state (a forked worker running torch crashed in train-probe).
        ctx = mp.get_context("spawn" if cfg.probe_weights else "fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            it = pool.map(run_clip_safe, jobs, chunksize=4)
            for i, r in enumerate(it):
                results[r.video_id] = r
                if progress:
                    progress("prepare", i + 1, len(jobs))
    else:
        for i, j in enumerate(jobs):
            r = run_clip_safe(j)
            results[r.video_id] = r
            if progress:
                progress("prepare", i + 1, len(jobs))
    for vid, r in list(results.items()):
        if r.error:
            errors.append(r.error)
            del results[vid]
    return results, errors


_SHARED: tuple | None = None
"""(config, splits, clip results, classes) for training workers (inherited by fork, never pickled)."""


def _train_key(job: tuple[str, list[tuple[str, int, bool]]]) -> list[tuple[str, int, TrainResult]]:
    """Train every (strategy, seed) that uses one plan key: its features are packed once."""
    import torch

    torch.set_num_threads(1)
    assert _SHARED is not None
    cfg, splits, results, n_classes = _SHARED
    key, todo = job
    from .._io import one_blas_thread

    with one_blas_thread():
        tr, va, te = (pack(splits[s], results, key) if splits[s] else None for s in ("train", "val", "test"))
        return [(name, seed, train_and_test(cfg, tr, va, te, n_classes, seed, audio)) for name, seed, audio in todo]


def run_eval_seeds(cfg: EvalConfig, out_dir: str | Path, data_seeds: Sequence[int],
                   progress: ProgressFn | None = None) -> dict[str, Any]:
    """The protocol on one generated dataset per seed in ``data_seeds`` (each in ``OUT/data-seed-S/``, a whole
    results folder), then ``OUT/results.json`` combining them: intervals resample dataset seeds, then clips."""
    from . import stats
    from .results import check_results_folder, write_results

    if cfg.dataset not in GENERATED:
        raise ConfigError(f"dataset seeds need a generated dataset ({', '.join(GENERATED)}), not {cfg.dataset}")
    if not data_seeds or len(set(data_seeds)) != len(data_seeds):
        raise ConfigError(f"data seeds must be distinct and at least one, got {list(data_seeds)}")
    out = Path(out_dir)
    check_results_folder(out, cfg.root)
    docs, names = [], []
    for s in data_seeds:
        name = f"data-seed-{s}"
        sub = replace(cfg, generator={**cfg.generator, "seed": s},
                      root=str(Path(cfg.root) / name) if cfg.root else None,
                      cache=str(Path(cfg.cache) / name) if cfg.cache else None)
        docs.append(run_eval(sub, out / name, progress))
        names.append(name)
    doc = stats.combine_runs(docs, names)
    write_results(out, doc)
    return doc


def run_eval(cfg: EvalConfig, out_dir: str | Path, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run the protocol and write ``out_dir`` (results.json, table.md, curve.png/csv, videos/). Returns results."""
    from . import stats
    from .results import check_results_folder, write_results

    cfg = with_defaults(cfg)
    cfg.check()
    from .encoders import get_encoder

    encoder = get_encoder(cfg.encoder)  # a bad encoder fails before any work
    out = Path(out_dir)
    check_results_folder(out, cfg.root)  # never replace what eval did not write: fail before any work
    work = Path(cfg.cache) if cfg.cache else out / "cache"
    timing: dict[str, float] = {}
    if cfg.dataset in GENERATED:  # the picture size is known before any clip is made: fail fast
        gcfg = generator(cfg.dataset)[0].from_dict(cfg.generator)
        gcfg.check()
        cfg = for_segments(cfg, gcfg.duration_s)
        check_budget(cfg, gcfg.size, gcfg.size, gcfg.duration_s)
    t0 = time.perf_counter()
    ds, ds_meta = load_dataset(cfg, work, progress)
    cfg = for_segments(cfg, ds.segments)  # AVE: known once the labels are read (fields already set stay)
    timing["dataset"] = time.perf_counter() - t0
    first = ds.available("train")[0]
    from ..media.container import info as probe_info

    vi0 = probe_info(first.path)
    if vi0.video is None:
        raise ConfigError(f"{first.path}: no video stream (the protocol encodes frames)")
    skipped_budgets = check_budget(cfg, vi0.video.width, vi0.video.height, ds.segments)
    cfg_run = replace(cfg, curve_budgets=tuple(b for b in cfg.curve_budgets if b not in skipped_budgets))
    requests, strategies = plan_requests(cfg_run, ds.segments)

    t0 = time.perf_counter()
    results, errors = prepare_all(cfg_run, ds, work, requests, progress)
    timing["prepare_wall"] = time.perf_counter() - t0
    for stage in ("index", "plan", "audio_features", "extract", "encode"):
        timing[f"prepare_cpu:{stage}"] = float(sum(r.seconds.get(stage, 0.0) for r in results.values()))
    splits = {s: [c for c in ds.available(s) if c.video_id in results] for s in ("train", "val", "test")}
    if not splits["train"] or not splits["test"]:
        raise ConfigError("no usable clips in the train or test split: " + "; ".join(errors[:3]))
    if cfg.patience is not None and not splits["val"]:
        raise ConfigError("early stopping (--patience) chooses epochs on the val split, and this dataset has no "
                          "usable val clips; it never reads test: drop --patience")


    n_classes = len(ds.classes) + 1
    t0 = time.perf_counter()
    by_key: dict[str, list[tuple[str, int, bool]]] = {}
    for name, spec in strategies.items():
        if "reuse" not in spec:
            for seed, key in enumerate(spec["plans"]):
                by_key.setdefault(key, []).append((name, seed, spec["audio"]))
    # The biggest jobs first, so two workers finish together; each run is seeded and single-threaded, so the
    # numbers do not depend on which worker ran it.
    jobs = sorted(by_key.items(), key=lambda kv: -len(kv[1]) * (4 if kv[0].startswith("uniform@7") else 1))
    runs: dict[str, list[TrainResult]] = {name: [] for name in strategies}
    total, done = sum(len(v) for v in by_key.values()), 0
    global _SHARED
    _SHARED = (cfg_run, splits, results, n_classes)
    workers = min(cfg.workers or min(2, os.cpu_count() or 1), len(jobs))
    trained: list[tuple[str, int, TrainResult]] = []
    try:
        if workers > 1:
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
                for part in pool.map(_train_key, jobs):
                    trained += part
                    done += len(part)
                    if progress:
                        progress("train", done, total)
        else:
            for job in jobs:
                part = _train_key(job)
                trained += part
                done += len(part)
                if progress:
                    progress("train", done, total)
    finally:
        _SHARED = None
    for name, _seed, r in sorted(trained, key=lambda x: (x[0], x[1])):
        runs[name].append(r)
    for name, spec in strategies.items():
        if "reuse" in spec:
            runs[name] = runs[spec["reuse"]][: len(spec["plans"])]
    timing["train_and_test"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    doc = stats.summarise(cfg_run, ds, splits, results, strategies, runs, encoder)
    doc.update(config=asdict(cfg_run), versions=_versions(), dataset={**ds_meta, "classes": list(ds.classes),
               "segments": ds.segments, "clips": {s: len(v) for s, v in splits.items()},
               "missing": ds.missing_summary(), "errors": errors[:20], "n_errors": len(errors)},
               skipped_curve_budgets=skipped_budgets, encoder=encoder.describe())
    timing["summarise"] = time.perf_counter() - t0
    doc["timing_s"] = {k: round(v, 3) for k, v in timing.items()}
    write_results(out, doc, splits["test"], results, runs, strategies, ds)
    return doc
