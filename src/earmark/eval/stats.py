"""Metrics and statistics of the eval protocol: AVE segment accuracy, paired t-tests, Recall@K,Δ, recovery ratio.

Pure functions on arrays (tested on hand-made values), plus :func:`summarise`, which assembles the results
document from the protocol's runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .prepare import time_key

DELTAS = (0, 1, 2)


def segment_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """AVE's metric: the fraction of one-second segments whose predicted label (class or background) is right."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or pred.size == 0:
        raise ValueError(f"predictions {pred.shape} and labels {truth.shape} must have one equal, non-empty shape")
    return float((pred == truth).mean())


def split_accuracy(pred: np.ndarray, truth: np.ndarray, background: int) -> tuple[float | None, float | None]:
    """Accuracy on the event seconds (label ≠ ``background``) and on the background seconds, each None when the
    labels have none. With sparse events (long clips) the segment accuracy is mostly background; these two say
    whether a strategy finds the events at all."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"predictions {pred.shape} and labels {truth.shape} must have one shape")
    ev = truth != background
    return (float((pred[ev] == truth[ev]).mean()) if ev.any() else None,
            float((pred[~ev] == truth[~ev]).mean()) if (~ev).any() else None)


def paired_t(a: Sequence[float], b: Sequence[float]) -> dict[str, float | None]:
    """Paired t-test of ``a`` against ``b`` (scipy ``ttest_rel``): mean difference, t and two-sided p."""
    from scipy.stats import ttest_rel

    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = float(np.mean(a - b)) if len(a) else None
    if len(a) < 2 or np.allclose(a - b, (a - b)[0]):
        return {"diff": diff, "t": None, "p": None, "n": len(a)}
    r = ttest_rel(a, b)
    return {"diff": diff, "t": float(r.statistic), "p": float(r.pvalue), "n": len(a)}


REFERENCES = ("uniform", "fixed-spread", "random")
"""What every main strategy is compared with: uniform sampling, the anchored shape at fixed evenly spaced slots
(no audio), and at random slots."""
BOOTSTRAP = 2000


def clip_counts(predictions: Sequence[np.ndarray], truth: np.ndarray, background: int) -> dict[str, np.ndarray]:
    """Per clip, averaged over the (paired) head seeds: correct seconds and correct event / background seconds.

    ``predictions``: one (clips, T) array per seed; ``truth``: (clips, T). Counts are floats (seed means)."""
    ok = np.stack([np.asarray(p) == truth for p in predictions]).mean(0)
    ev = truth != background
    return {"correct": ok.sum(1), "event_correct": (ok * ev).sum(1), "background_correct": (ok * ~ev).sum(1)}


def hierarchical_bootstrap(groups: Sequence[np.ndarray], stat: Callable[[np.ndarray], np.ndarray],
                           n_boot: int = BOOTSTRAP, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(estimate, low, high): a percentile interval of ``stat`` resampling groups, then clips within each.

    ``groups``: one (clips, m) array of per-clip columns per dataset (generator) seed; ``stat`` maps column
    sums (B, m) to B statistics (e.g. a difference of two accuracies: (a - b) / seconds). With one group this
    is the ordinary bootstrap over clips; with several, dataset seeds are resampled first, so the interval
    carries the spread between generated datasets as well as between clips.
    """
    groups = [np.asarray(g, dtype=np.float64) for g in groups]
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError("every group needs at least one clip")
    m = groups[0].shape[1]
    rng = np.random.default_rng(seed)
    n_groups = len(groups)
    sums = np.zeros((n_boot, m))
    pick = rng.integers(n_groups, size=(n_boot, n_groups)) if n_groups > 1 else np.zeros((n_boot, 1), int)
    for slot in range(n_groups):
        for g, rows in enumerate(groups):
            chosen = np.flatnonzero(pick[:, slot] == g)
            if len(chosen):
                idx = rng.integers(len(rows), size=(len(chosen), len(rows)))
                sums[chosen] += rows[idx].sum(1)
    full = stat(np.sum([g.sum(0) for g in groups], 0)[None])[0]
    values = stat(sums)
    values = values[np.isfinite(values)]
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail]) if len(values) else (np.nan, np.nan)
    return float(full), float(lo), float(hi)


def difference_interval(groups_a: Sequence[dict[str, np.ndarray]], groups_b: Sequence[dict[str, np.ndarray]],
                        counts: Sequence[np.ndarray], key: str = "correct", seed: int = 0) -> dict[str, float]:
    """Accuracy of A minus accuracy of B (on all seconds, ``key="correct"``, or on event seconds,
    ``"event_correct"`` with event-second ``counts``), with its hierarchical bootstrap 95 % interval."""
    cols = [np.stack([a[key], b[key], c], 1) for a, b, c in zip(groups_a, groups_b, counts)]
    with np.errstate(invalid="ignore", divide="ignore"):
        est, lo, hi = hierarchical_bootstrap(cols, lambda s: (s[:, 0] - s[:, 1]) / s[:, 2], seed=seed)
    return {"diff": est, "low": lo, "high": hi}


def anchor_seconds(times: Sequence[float], segments: int) -> list[int]:
    return [min(segments - 1, max(0, int(np.floor(t)))) for t in times]


def recall_at_k(anchor_secs: Sequence[int], event_secs: Sequence[int], delta: int = 0) -> bool | None:
    """Did any anchor land within ``delta`` seconds of an event second? None for clips without events."""
    if not len(event_secs):
        return None
    ev = np.asarray(event_secs)
    return bool(any(np.min(np.abs(ev - a)) <= delta for a in anchor_secs))


def anchor_precision(anchor_secs: Sequence[int], event_secs: Sequence[int]) -> float | None:
    """The fraction of anchors inside the event (None for clips without events)."""
    if not len(event_secs) or not len(anchor_secs):
        return None
    ev = set(int(e) for e in event_secs)
    return float(np.mean([a in ev for a in anchor_secs]))


def recovery_ratio(anchored: float, uniform: float, oracle: float) -> float | None:
    """(anchored − uniform) / (oracle − uniform): the share of the oracle's gain that the audio index recovers."""
    gap = oracle - uniform
    # Only a share of a real gain: when the oracle is no better than the reference the ratio means nothing.
    return None if gap < 1e-9 else float((anchored - uniform) / gap)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _rate(values: list[bool | float | None]) -> float | None:
    v = [float(x) for x in values if x is not None]
    return float(np.mean(v)) if v else None


def recall_table(clips, results, plan_keys: dict[str, list[str]], k: int) -> dict[str, dict[str, Any]]:
    """Recall@K and Recall@K,Δ of each anchor source over ``clips``: all clips with an event, and the
    'partial' ones (the event does not fill the clip — where choosing matters)."""
    out = {}
    for source, keys in plan_keys.items():
        rows: dict[str, list] = {f"recall@{k},d{d}": [] for d in DELTAS}
        rows |= {f"partial_recall@{k},d{d}": [] for d in DELTAS}
        rows["precision"] = []
        for c in clips:
            ev = np.arange(c.row.start_s, c.row.end_s)
            partial = 0 < len(ev) < len(c.labels)
            for key in keys:
                plan = results[c.video_id].plans[key]
                secs = anchor_seconds([a.time_s for a in plan.anchors], len(c.labels))
                for d in DELTAS:
                    hit = recall_at_k(secs, ev, d)
                    rows[f"recall@{k},d{d}"].append(hit)
                    if partial:
                        rows[f"partial_recall@{k},d{d}"].append(hit)
                rows["precision"].append(anchor_precision(secs, ev))
        out[source] = {name: _rate(v) for name, v in rows.items()}
        out[source]["clips"] = len(clips)
        out[source]["partial_clips"] = sum(1 for c in clips if 0 < c.row.end_s - c.row.start_s < len(c.labels))
    return out


def summarise(cfg, ds, splits, results, strategies, runs, encoder) -> dict[str, Any]:
    test = splits["test"]
    segs = ds.segments
    table: dict[str, dict[str, Any]] = {}
    truth = np.stack([c.labels for c in test])
    background = len(ds.classes)
    counts = {name: clip_counts([r.predictions for r in rs], truth, background)
              for name, rs in runs.items() if strategies[name]["group"] == "main"}
    event_count = (truth != background).sum(1).astype(float)
    seconds = np.full(len(test), float(truth.shape[1]))
    refs = {ref: ([r.accuracy for r in runs[ref]], np.mean([r.per_clip for r in runs[ref]], 0))
            for ref in REFERENCES if ref in runs}
    for name, spec in strategies.items():
        rs = runs[name]
        acc = [r.accuracy for r in rs]
        m, s = mean_std(acc)
        ev_acc, bg_acc = zip(*(split_accuracy(r.predictions, truth, background) for r in rs))
        plan0 = results[test[0].video_id].plans[spec["plans"][0]]
        tokens = float(np.mean([results[c.video_id].plans[spec["plans"][0]].total_tokens for c in test]))
        sizes = sorted({f.width for f in plan0.frames})
        flops = float(np.mean([sum(encoder.flops(f.width, f.height) for f in results[c.video_id].plans[
            spec["plans"][0]].frames) for c in test]))
        enc_tokens = float(np.mean([sum(len(results[c.video_id].features[(time_key(f.time_s), f.width, f.height)][1])
                                        for f in results[c.video_id].plans[spec["plans"][0]].frames) for c in test]))
        row: dict[str, Any] = {
            "group": spec["group"], "accuracy": acc, "accuracy_mean": m, "accuracy_std": s,
            "event_accuracy": list(ev_acc), "event_accuracy_mean": _rate(list(ev_acc)),
            "background_accuracy": list(bg_acc), "background_accuracy_mean": _rate(list(bg_acc)),
            "tokens": tokens, "encoder_tokens": enc_tokens, "encoder_gflops": flops / 1e9,
            "sizes": sizes, "shape": _shape(plan0), "audio_features": spec["audio"], "seeds": len(rs),
            "epochs": [r.epochs for r in rs], "train_seconds": float(sum(r.seconds for r in rs)),
            "gate_grad_spearman": _rate([r.gate_grad_spearman for r in rs]),
        }
        for k_ in ("probe", "budget", "strategy"):
            if k_ in spec:
                row[k_] = spec[k_]
        if spec["group"] == "main":
            clip = np.mean([r.per_clip for r in rs], 0)
            for ref, (ref_acc, ref_clip) in refs.items():
                if ref == name or len(ref_acc) != len(rs):
                    continue
                tag = ref.replace("-", "_")
                row[f"vs_{tag}"] = paired_t(acc, ref_acc)
                row[f"vs_{tag}_clips"] = paired_t(clip, ref_clip)
                row[f"ci_{tag}"] = difference_interval([counts[name]], [counts[ref]], [seconds])
                row[f"ci_{tag}_event"] = difference_interval([counts[name]], [counts[ref]], [event_count],
                                                             "event_correct")
        table[name] = row
    add_recoveries(table)
    for name, row in table.items():
        if name.startswith("anchored-"):
            row["fired"] = fired_subset(name, test, results, strategies, counts, seconds, event_count)
    anchor_keys = {f"anchored-{p}": [f"anchored-{p}"] for p in cfg.probes if f"anchored-{p}" in strategies}
    if "random" in strategies:
        anchor_keys["random"] = strategies["random"]["plans"]
    everything = [c for s in ("train", "val", "test") for c in splits[s]]
    recall = {"test": recall_table(test, results, anchor_keys, cfg.k),
              "all": recall_table(everything, results, anchor_keys, cfg.k)}
    if splits["val"]:  # where a probe is chosen without looking at test
        recall["val"] = recall_table(splits["val"], results, anchor_keys, cfg.k)
    curve = [{"strategy": row["strategy"], "budget": row["budget"], "tokens": row["tokens"],
              "accuracy_mean": row["accuracy_mean"], "accuracy_std": row["accuracy_std"], "seeds": row["seeds"]}
             for row in table.values() if row["group"] == "curve"]
    per_clip = {"video_ids": [c.video_id for c in test], "seconds": seconds.tolist(),
                "event_seconds": event_count.tolist(),
                "strategies": {n: {k: v.tolist() for k, v in c.items()} for n, c in counts.items()}}
    return {"kind": "earmark.eval", "version": 1, "strategies": table, "recall": recall,
            "curve": sorted(curve, key=lambda r: (r["strategy"], r["tokens"])), "segments": segs,
            "per_clip": per_clip}


def add_recoveries(table: dict[str, dict[str, Any]]) -> None:
    """Each anchored row's share of the oracle's gain: over uniform, and over fixed-spread (what the index adds)."""
    oracle = table.get("oracle", {}).get("accuracy_mean")
    if oracle is None:
        return
    for name, row in table.items():
        if name.startswith("anchored-"):
            row["recovery_ratio"] = recovery_ratio(row["accuracy_mean"], table["uniform"]["accuracy_mean"], oracle)
            if "fixed-spread" in table:
                row["recovery_vs_fixed_spread"] = recovery_ratio(row["accuracy_mean"],
                                                                 table["fixed-spread"]["accuracy_mean"], oracle)


def fired_subset(name: str, test, results, strategies, counts: dict[str, dict[str, np.ndarray]],
                 seconds: np.ndarray, event_count: np.ndarray) -> dict[str, Any]:
    """Accuracies (all / event seconds) of ``name`` and the references on the test clips where its index
    fired (at least one anchor that is not the evenly spaced fallback): where choosing could matter."""
    key = strategies[name]["plans"][0]
    fired = np.array([any(a.source != "fallback" for a in results[c.video_id].plans[key].anchors) for c in test])
    out: dict[str, Any] = {"clips": int(fired.sum()), "of": len(test)}
    if not fired.any():
        return out
    for other in (name, "oracle", *REFERENCES):
        if other in counts:
            c = counts[other]
            ev = event_count[fired].sum()
            out[other] = {"accuracy": float(c["correct"][fired].sum() / seconds[fired].sum()),
                          "event_accuracy": float(c["event_correct"][fired].sum() / ev) if ev else None}
    if "fixed-spread" in counts:
        out["ci_fixed_spread"] = difference_interval([{k: v[fired] for k, v in counts[name].items()}],
                                                     [{k: v[fired] for k, v in counts["fixed-spread"].items()}],
                                                     [seconds[fired]])
    return out


def _shape(plan) -> str:
    sizes: dict[int, int] = {}
    for f in plan.frames:
        sizes[f.width] = sizes.get(f.width, 0) + 1
    return " + ".join(f"{n}×{w}" for w, n in sorted(sizes.items(), key=lambda x: -x[0]))


def combine_runs(docs: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """One results document from runs on several generated datasets (one per dataset seed, ``names`` their
    folders): accuracies over every (dataset seed, head seed) run, and every difference with a hierarchical
    bootstrap interval that resamples dataset seeds, then clips. Recall is pooled over the runs' test clips."""
    if not docs:
        raise ValueError("no runs to combine")
    first = docs[0]
    per = [d["per_clip"] for d in docs]
    seconds = [np.asarray(p["seconds"]) for p in per]
    events = [np.asarray(p["event_seconds"]) for p in per]
    table: dict[str, dict[str, Any]] = {}
    for name, row0 in first["strategies"].items():
        rows = [d["strategies"][name] for d in docs]
        acc = [a for r in rows for a in r["accuracy"]]
        m, s = mean_std(acc)
        row: dict[str, Any] = {k: row0[k] for k in ("group", "shape", "sizes", "audio_features") if k in row0}
        row.update(accuracy=acc, accuracy_mean=m, accuracy_std=s, seeds=len(acc),
                   tokens=float(np.mean([r["tokens"] for r in rows])),
                   event_accuracy=[a for r in rows for a in r["event_accuracy"]],
                   background_accuracy=[a for r in rows for a in r["background_accuracy"]],
                   per_dataset=[r["accuracy_mean"] for r in rows])
        row["event_accuracy_mean"] = _rate(row["event_accuracy"])
        row["background_accuracy_mean"] = _rate(row["background_accuracy"])
        for k_ in ("probe", "budget", "strategy"):
            if k_ in row0:
                row[k_] = row0[k_]
        counts = [p["strategies"].get(name) for p in per]
        for ref in REFERENCES:
            tag = ref.replace("-", "_")
            ref_rows = [d["strategies"].get(ref) for d in docs]
            if ref == name or row["group"] != "main" or any(r is None for r in ref_rows) or None in counts:
                continue
            ref_acc = [a for r in ref_rows for a in r["accuracy"]]
            if len(ref_acc) == len(acc):
                row[f"vs_{tag}"] = paired_t(acc, ref_acc)
            a = [{k: np.asarray(v) for k, v in c.items()} for c in counts]
            b = [{k: np.asarray(v) for k, v in p["strategies"][ref].items()} for p in per]
            row[f"ci_{tag}"] = difference_interval(a, b, seconds)
            row[f"ci_{tag}_event"] = difference_interval(a, b, events, "event_correct")
        table[name] = row
    add_recoveries(table)
    recall: dict[str, dict[str, Any]] = {}
    for split in [s for s in ("val", "test", "all") if all(s in d["recall"] for d in docs)]:
        recall[split] = {}
        for src in first["recall"][split]:
            parts = [d["recall"][split][src] for d in docs]
            out: dict[str, Any] = {}
            for key in parts[0]:
                if key in ("clips", "partial_clips"):
                    out[key] = int(sum(p[key] for p in parts))
                else:  # weighted by the clips each rate was measured on
                    w = [p["partial_clips" if key.startswith("partial") else "clips"] for p in parts]
                    vals = [(p[key], wi) for p, wi in zip(parts, w) if p[key] is not None]
                    out[key] = (sum(v * wi for v, wi in vals) / sum(wi for _, wi in vals)
                                if vals and sum(wi for _, wi in vals) else None)
            recall[split][src] = out
    curve = []
    for pt in first["curve"]:
        same = [c for d in docs for c in d["curve"] if (c["strategy"], c["budget"]) == (pt["strategy"], pt["budget"])]
        m, s = mean_std([c["accuracy_mean"] for c in same])
        curve.append({**pt, "accuracy_mean": m, "accuracy_std": s, "seeds": sum(c["seeds"] for c in same)})
    dataset = {**first["dataset"], "clips": {s: int(sum(d["dataset"]["clips"][s] for d in docs))
                                             for s in first["dataset"]["clips"]},
               "data_seeds": [d["dataset"].get("generator_config", {}).get("seed") for d in docs],
               "errors": [e for d in docs for e in d["dataset"].get("errors", [])][:20],
               "n_errors": int(sum(d["dataset"].get("n_errors", 0) for d in docs))}
    timing = {k: round(float(sum(d["timing_s"].get(k, 0.0) for d in docs)), 3) for k in first["timing_s"]}
    return {"kind": "earmark.eval", "version": 1, "combined": list(names), "strategies": table, "recall": recall,
            "curve": curve, "segments": first["segments"], "config": first["config"], "dataset": dataset,
            "encoder": first["encoder"], "versions": first["versions"], "timing_s": timing,
            "skipped_curve_budgets": first.get("skipped_curve_budgets", [])}
