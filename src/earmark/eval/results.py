"""The eval results folder: ``results.json`` (everything), ``table.md``, ``curve.csv``/``curve.png`` and
``videos/<id>.json`` (per test clip: truth, eventness per probe, anchors, plans, predictions — what the HTML
report renders). Written to a temporary folder and renamed, so a failed run leaves nothing half-written."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .._io import dumps_json
from ..errors import ConfigError
from .config import MAIN_STRATEGIES

DISPLAY = {"uniform": "Uniform", "random": "Random-Top{k}", "oracle": "Oracle-GT-Top{k}",
           "fixed-spread": "Fixed-spread-Top{k}", "uniform-112": "Uniform-112", "uniform-448": "Uniform-448",
           "audio-concat": "Audio-concat"}


def strategy_rank(name: str) -> tuple[int, str]:
    """Table order: the strategies in :data:`MAIN_STRATEGIES` order (each ``anchored-<probe>`` in the anchored
    place, by probe), Uniform-448 last, anything else after it by name. Results documents store strategies by name
    (sorted keys), so a table read back from one would otherwise be alphabetical.

    >>> sorted(["random", "anchored-flux", "uniform-448", "uniform", "anchored-energy"], key=strategy_rank)
    ['uniform', 'anchored-energy', 'anchored-flux', 'random', 'uniform-448']
    """
    order = (*MAIN_STRATEGIES, "uniform-448")
    base = "anchored" if name.startswith("anchored-") else name
    return (order.index(base), name) if base in order else (len(order), name)


def display_name(name: str, k: int) -> str:
    if name.startswith("anchored-"):
        return f"Anchored-Top{k} ({name.split('-', 1)[1]})"
    return DISPLAY.get(name, name).format(k=k)


def _p(d: dict | None) -> str:
    if not d or d.get("p") is None:
        return "–"
    p = d["p"]
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f}"


def interval(ci: dict | None) -> str:
    """A difference with its 95 % interval in points: ``+4.2 [1.0, 7.5]``."""
    if not ci or ci.get("diff") is None or ci["diff"] != ci["diff"]:
        return "–"
    return f"{ci['diff'] * 100:+.1f} [{ci['low'] * 100:+.1f}, {ci['high'] * 100:+.1f}]"


def _ratio(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def table_md(doc: dict[str, Any]) -> str:
    k = doc["config"]["k"]
    seeds = doc["dataset"].get("data_seeds")
    how = (f"hierarchical bootstrap intervals over {len(seeds)} dataset seeds ({', '.join(map(str, seeds))}), "
           "then test clips; p values are paired t-tests over (dataset seed, head seed) runs" if doc.get("combined")
           else "bootstrap intervals over test clips (seed means); p values are paired t-tests over head seeds / "
                "over clips")
    lines = [f"# earmark eval — {doc['dataset']['name']}, encoder {doc['encoder']['name']}, head "
             f"{doc['config']['head']}, {doc['config']['model']} budget {doc['config']['budget']}", "",
             f"Differences are in accuracy points with 95 % {how}.", "",
             "| strategy | frames | tokens | accuracy (mean ± std) | seeds | Δ vs uniform | Δ vs fixed-spread | "
             "Δ event s vs fixed-spread | p vs uniform (seeds / clips) | p vs random (seeds / clips) | "
             "recovery (vs uniform / fixed-spread) | event seconds | background seconds |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in sorted(doc["strategies"].items(), key=lambda item: strategy_rank(item[0])):
        if r["group"] == "curve":
            continue
        vs_u, vs_r = r.get("vs_uniform"), r.get("vs_random")
        lines.append(f"| {display_name(name, k)} | {r['shape']} | {r['tokens']:.0f} | "
                     f"{r['accuracy_mean'] * 100:.1f} ± {r['accuracy_std'] * 100:.1f} | {r['seeds']} | "
                     f"{interval(r.get('ci_uniform'))} | {interval(r.get('ci_fixed_spread'))} | "
                     f"{interval(r.get('ci_fixed_spread_event'))} | "
                     f"{_p(vs_u)} / {_p(r.get('vs_uniform_clips'))} | {_p(vs_r)} / {_p(r.get('vs_random_clips'))} | "
                     f"{_ratio(r.get('recovery_ratio'))} / {_ratio(r.get('recovery_vs_fixed_spread'))} | "
                     f"{_pct(r.get('event_accuracy_mean'))} | {_pct(r.get('background_accuracy_mean'))} |")
    fired = [(n, r["fired"]) for n, r in doc["strategies"].items() if r.get("fired")]
    if fired:
        lines += ["", "Where the index fired (test clips with at least one anchor that is not the evenly spaced "
                  "fallback): accuracy % (event seconds %):", "",
                  "| probe | clips | anchored | fixed-spread | uniform | random | oracle | Δ vs fixed-spread |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

        def cell(d: dict | None) -> str:
            return "–" if not d else f"{_pct(d['accuracy'])} ({_pct(d['event_accuracy'])})"

        for name, f_ in fired:
            lines.append(f"| {name.split('-', 1)[1]} | {f_['clips']} / {f_['of']} | {cell(f_.get(name))} | "
                         f"{cell(f_.get('fixed-spread'))} | {cell(f_.get('uniform'))} | {cell(f_.get('random'))} | "
                         f"{cell(f_.get('oracle'))} | {interval(f_.get('ci_fixed_spread'))} |")
    lines += ["", f"Anchor recall on the test split (K = {k}; 'partial' = clips whose event does not fill the clip):",
              "", "| anchors | R@K | R@K,Δ1 | R@K,Δ2 | partial R@K | partial R@K,Δ1 | precision |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def f(v):
        return "–" if v is None else f"{v:.3f}"

    for src, r in doc["recall"]["test"].items():
        lines.append(f"| {src} | {f(r[f'recall@{k},d0'])} | {f(r[f'recall@{k},d1'])} | {f(r[f'recall@{k},d2'])} | "
                     f"{f(r[f'partial_recall@{k},d0'])} | {f(r[f'partial_recall@{k},d1'])} | {f(r['precision'])} |")
    t = doc["timing_s"]
    lines += ["", "Wall-clock (s): " + ", ".join(f"{k_} {v:.1f}" for k_, v in t.items()), ""]
    return "\n".join(lines)


def curve_csv(doc: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["strategy", "budget", "tokens", "accuracy_mean", "accuracy_std", "seeds"])
    for r in doc["curve"]:
        w.writerow([r["strategy"], r["budget"], f"{r['tokens']:.0f}", f"{r['accuracy_mean']:.6f}",
                    f"{r['accuracy_std']:.6f}", r["seeds"]])
    return buf.getvalue()


def curve_png(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    for strat, colour in (("uniform", "#555555"), ("anchored", "#d62728")):
        pts = [r for r in doc["curve"] if r["strategy"] == strat]
        if pts:
            x = [r["tokens"] for r in pts]
            y = [r["accuracy_mean"] * 100 for r in pts]
            e = [r["accuracy_std"] * 100 for r in pts]
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, color=colour,
                        label="anchored (" + doc["config"]["probes"][0] + ")" if strat == "anchored" else strat)
    ax.set_xscale("log")
    ax.set_xlabel(f"visual tokens per clip ({doc['config']['model']})")
    ax.set_ylabel("segment accuracy (%)")
    ax.set_title("accuracy vs tokens")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


SWEEP_FIELDS = {"snr_db": "SNR of the event sounds (dB)", "av_offset_s": "AV offset (s)",
                "silent_event_fraction": "fraction of silent events", "distractor_rate": "distractor rate"}
SWEEP_COLUMNS = ("value", "uniform", "uniform_std", "anchored", "anchored_std", "random", "random_std", "oracle",
                 "oracle_std", "p_vs_uniform", "recall@K", "partial_recall@K", "random_partial_recall@K", "precision",
                 "random_precision", "recovery")
"""A sweep point's columns; ``recall@K`` is Recall@K (K = the run's anchors per clip) at Δ = 0, ``precision`` the
share of anchors inside the event."""


def sweep_row(value: float, doc: dict[str, Any], probe: str = "energy") -> dict[str, Any]:
    """One point of a sweep: accuracy (mean, std) per strategy, p vs uniform, anchor Recall@K and precision (the
    probe's and random's), and the recovery ratio."""
    s = doc["strategies"]
    a = s.get(f"anchored-{probe}", {})
    row: dict[str, Any] = {"value": value}
    for name, key in (("uniform", "uniform"), ("anchored", f"anchored-{probe}"), ("random", "random"),
                      ("oracle", "oracle")):
        if key in s:
            row[name], row[f"{name}_std"] = s[key]["accuracy_mean"], s[key]["accuracy_std"]
    row["p_vs_uniform"] = (a.get("vs_uniform") or {}).get("p")
    rec, k = doc["recall"]["test"], doc["config"]["k"]
    mine, rnd = rec.get(f"anchored-{probe}", {}), rec.get("random", {})
    row["recall@K"] = mine.get(f"recall@{k},d0")
    # Clips whose event does not fill the clip: where an index has something to find (AVE's full-length events
    # make any second an event second).
    row["partial_recall@K"] = mine.get(f"partial_recall@{k},d0")
    row["random_partial_recall@K"] = rnd.get(f"partial_recall@{k},d0")
    row["precision"], row["random_precision"] = mine.get("precision"), rnd.get("precision")
    row["recovery"] = a.get("recovery_ratio")
    return row


def sweep_csv(rows: list[dict[str, Any]]) -> str:
    out = [",".join(SWEEP_COLUMNS)]
    for r in rows:
        out.append(",".join("" if r.get(c) is None else f"{r[c]:.6g}" for c in SWEEP_COLUMNS))
    return "\n".join(out) + "\n"


def sweep_png(rows: list[dict[str, Any]], field: str, title: str, path: Path) -> None:
    """Accuracy of each strategy against the swept setting (error bars: std over seeds), Recall@K beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.5, 3.4), dpi=120, gridspec_kw={"width_ratios": [2, 1]})
    x = [r["value"] for r in rows]
    for name, colour in (("uniform", "#555555"), ("anchored", "#d62728"), ("random", "#1f77b4"),
                         ("oracle", "#2ca02c")):
        if all(name in r for r in rows):
            ax.errorbar(x, [r[name] * 100 for r in rows], yerr=[r[f"{name}_std"] * 100 for r in rows], marker="o",
                        capsize=3, color=colour, label=name)
    ax.set_xlabel(SWEEP_FIELDS.get(field, field))
    ax.set_ylabel("segment accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    for key, style, label in (("recall@K", "o-", "all clips"), ("partial_recall@K", "s--", "partial-event clips"),
                              ("random_partial_recall@K", "^:", "random, partial clips")):
        ax2.plot(x, [r.get(key) or 0 for r in rows], style, color="#1f77b4" if "random" in key else "#d62728",
                 label=label)
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel(SWEEP_FIELDS.get(field, field))
    ax2.set_ylabel("anchor Recall@K")
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def video_record(clip, result, runs, strategies, label_names, row: int) -> dict[str, Any]:
    """One test clip's record; ``row`` is its position in the test split (the runs' per-clip arrays)."""
    rec: dict[str, Any] = {"video_id": clip.video_id, "path": str(clip.path), "category": clip.row.category,
                           "event": [clip.row.start_s, clip.row.end_s], "labels": clip.labels.tolist(),
                           "label_names": list(label_names),
                           "index": {p: {"scores": r.timeline.scores.round(4).tolist(),
                                         "anchors": [a.time_s for a in r.anchors]}
                                     for p, r in result.indexes.items()},
                           "plans": {}, "strategies": {}}
    for name, spec in strategies.items():
        if spec["group"] == "curve":
            continue
        key = spec["plans"][0]
        p = result.plans[key]
        rec["plans"][name] = {"key": key, "total_tokens": p.total_tokens,
                              "frames": [[f.time_s, f.width, f.tokens] for f in p.frames],
                              "anchors": [a.time_s for a in p.anchors]}
        rec["strategies"][name] = {
            "accuracy": float(np.mean([r.per_clip[row] for r in runs[name]])),
            "predictions": runs[name][0].predictions[row].tolist()}
    return rec


OUTPUTS = ("results.json", "table.md", "curve.csv", "curve.png", "videos")
"""What a results folder holds besides its cache: the only names eval ever replaces."""


def check_results_folder(out: str | Path, data_root: str | Path | None = None) -> None:
    """Refuse an output folder eval could not write without removing what it did not write: the dataset's own
    folder (or one of ours that holds it: ``--out DATA`` would replace ``DATA/videos/``), or output names that
    hold other files (a ``videos/`` of anything but our per-video records)."""
    out = Path(out)
    if data_root is not None:
        root, o = Path(data_root).resolve(), out.resolve()
        if root == o or any(root == (o / name) or (o / name) in root.parents for name in OUTPUTS):
            raise ConfigError(f"--out {out}: holds the dataset ({data_root}), and eval replaces its outputs "
                              f"({', '.join(OUTPUTS)}) there; choose another --out")
    videos = out / "videos"
    if videos.is_symlink() or (videos.exists() and (not videos.is_dir() or any(
            not p.is_file() or p.suffix != ".json" for p in videos.iterdir()))):
        raise ConfigError(f"{videos}: exists and holds files eval did not write (eval replaces a videos/ of its "
                          f"own per-video .json records only); move it or choose another --out")
    for name in OUTPUTS[:-1]:
        if (out / name).is_dir() or (out / name).is_symlink():
            raise ConfigError(f"{out / name}: exists and is not a file eval wrote; move it or choose another --out")


def write_results(out: Path, doc: dict[str, Any], test=(), results=None, runs=None, strategies=None,
                  ds=None) -> None:
    """Write a results folder (results.json, table.md, curve.csv/png, and videos/ when ``test`` clips are
    given); a combined run over dataset seeds has no per-video records (they live in each seed's folder)."""
    out = Path(out)
    check_results_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".results.", suffix=".part", dir=out))
    try:
        (tmp / "results.json").write_text(dumps_json(doc), encoding="utf-8")
        (tmp / "table.md").write_text(table_md(doc), encoding="utf-8")
        (tmp / "curve.csv").write_text(curve_csv(doc), encoding="utf-8")
        if doc["curve"]:
            curve_png(doc, tmp / "curve.png")
        if test:
            videos = tmp / "videos"
            videos.mkdir()
            for row, c in enumerate(test):
                (videos / f"{c.video_id}.json").write_text(
                    dumps_json(video_record(c, results[c.video_id], runs, strategies, ds.label_names, row)),
                    encoding="utf-8")
        # Everything is written: now replace the previous run's outputs (the cache beside them is kept).
        for item in sorted(tmp.iterdir()):
            dest = out / item.name
            if dest.is_dir():
                shutil.rmtree(dest)
            item.replace(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
