"""The AVE equal-token protocol: strategies at equal visual tokens, frozen encoder, trained heads, paired stats.

>>> from earmark.eval.protocol import EvalConfig, run_eval           # doctest: +SKIP
>>> res = run_eval(EvalConfig(dataset="synth", quick=True), "results/")   # doctest: +SKIP
>>> res["strategies"]["anchored-energy"]["accuracy_mean"]               # doctest: +SKIP

Stages (timed): dataset (SynthAVE/RealStamp generation when needed, :mod:`.loading`) -> prepare (per clip, on
:mod:`earmark.runner`'s workers: index every probe, every plan via :func:`earmark.plan`, extract the union of
planned pictures once, encode, cache; :mod:`.prepare`) -> train (per strategy × seed; the same seeds for every
strategy, so comparisons are paired; :mod:`.training`) -> evaluate (:mod:`.stats`) -> write the results folder
(:mod:`.results`). What each strategy trains on is :mod:`.strategies`; the config is :mod:`.config`.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..runner import run
from ..types import Progress
from .config import GENERATED, EvalConfig, for_segments, with_defaults
from .datasets import Dataset
from .loading import generator, load_dataset
from .prepare import ClipJob, ClipResult, PlanRequest, run_clip_safe
from .strategies import check_budget, plan_requests
from .training import TrainResult, train_all

__all__ = ["EvalConfig", "prepare_all", "run_eval", "run_eval_seeds"]


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("earmark", "numpy", "scipy", "torch", "av", "transformers", "matplotlib"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def prepare_all(cfg: EvalConfig, ds: Dataset, cache: Path, requests: list[PlanRequest],
                progress: Progress | None = None) -> tuple[dict[str, ClipResult], list[str]]:
    """Every clip's indexes, plans, audio features and encoded pictures (cached under ``cache``), on the runner;
    returns the clips that worked and one error line per clip that did not."""
    anchor = replace(cfg.anchor, k=cfg.k)
    clips = [c for s in ("train", "val", "test") for c in ds.available(s)]
    jobs = [ClipJob(c.video_id, str(c.path), tuple(c.truth), ds.segments, tuple(requests), tuple(cfg.probes),
                    cfg.model, cfg.k, cfg.ratio, anchor, cfg.encoder, str(cache),
                    tuple(sorted(cfg.probe_weights.items()))) for c in clips]
    results: dict[str, ClipResult] = {}
    errors: list[str] = []
    # Model probes were loaded in this process by check(): their workers start fresh (spawn) rather than fork a
    # process whose torch may hold thread-pool state (a forked worker running torch crashed in train-probe).
    for i, d in enumerate(run(run_clip_safe, jobs, workers=cfg.workers,
                              fresh=bool(cfg.probe_weights)), start=1):
        results[d.value.video_id] = d.value
        if progress:
            progress("prepare", i, len(jobs))
    for vid, r in list(results.items()):
        if r.error:
            errors.append(r.error)
            del results[vid]
    return results, errors


def run_eval_seeds(cfg: EvalConfig, out_dir: str | Path, data_seeds: Sequence[int],
                   progress: Progress | None = None) -> dict[str, Any]:
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


def run_eval(cfg: EvalConfig, out_dir: str | Path, progress: Progress | None = None) -> dict[str, Any]:
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
    trained = train_all(cfg_run, splits, results, n_classes, jobs, cfg.workers, progress)
    for name, _seed, r in trained:
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
