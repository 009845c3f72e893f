"""Metrics and statistics of the eval protocol: AVE segment accuracy, paired t-tests, Recall@K,Δ, recovery ratio.

Pure functions on arrays (tested on hand-made values), plus :func:`summarise`, which assembles the results
document from the protocol's runs.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    return None if abs(gap) < 1e-9 else float((anchored - uniform) / gap)


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
    uni = [r.accuracy for r in runs["uniform"]]
    rnd = [r.accuracy for r in runs["random"]] if "random" in runs else None
    uni_clip = np.mean([r.per_clip for r in runs["uniform"]], 0)
    truth = np.stack([c.labels for c in test])
    background = len(ds.classes)
    rnd_clip = np.mean([r.per_clip for r in runs["random"]], 0) if "random" in runs else None
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
        if spec["group"] == "main" and len(rs) == len(uni):
            clip = np.mean([r.per_clip for r in rs], 0)
            row["vs_uniform"] = paired_t(acc, uni)
            row["vs_uniform_clips"] = paired_t(clip, uni_clip)
            if rnd is not None and len(rnd) == len(rs):
                row["vs_random"] = paired_t(acc, rnd)
                row["vs_random_clips"] = paired_t(clip, rnd_clip)
        table[name] = row
    oracle = table.get("oracle", {}).get("accuracy_mean")
    for name, row in table.items():
        if name.startswith("anchored-") and oracle is not None:
            row["recovery_ratio"] = recovery_ratio(row["accuracy_mean"], table["uniform"]["accuracy_mean"], oracle)
    anchor_keys = {f"anchored-{p}": [f"anchored-{p}"] for p in cfg.probes if f"anchored-{p}" in strategies}
    if "random" in strategies:
        anchor_keys["random"] = strategies["random"]["plans"]
    everything = [c for s in ("train", "val", "test") for c in splits[s]]
    recall = {"test": recall_table(test, results, anchor_keys, cfg.k),
              "all": recall_table(everything, results, anchor_keys, cfg.k)}
    curve = [{"strategy": row["strategy"], "budget": row["budget"], "tokens": row["tokens"],
              "accuracy_mean": row["accuracy_mean"], "accuracy_std": row["accuracy_std"], "seeds": row["seeds"]}
             for row in table.values() if row["group"] == "curve"]
    return {"kind": "earmark.eval", "version": 1, "strategies": table, "recall": recall,
            "curve": sorted(curve, key=lambda r: (r["strategy"], r["tokens"])), "segments": segs}


def _shape(plan) -> str:
    sizes: dict[int, int] = {}
    for f in plan.frames:
        sizes[f.width] = sizes.get(f.width, 0) + 1
    return " + ".join(f"{n}×{w}" for w, n in sorted(sizes.items(), key=lambda x: -x[0]))
