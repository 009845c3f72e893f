"""The equal-token protocol on SynthAVE, timed by stage; optional sweeps over SNR, AV offset and silent events.

    python benchmarks/eval_protocol.py                       # default `earmark eval synth` (full AVE split sizes)
    python benchmarks/eval_protocol.py --n 600 --seeds 2     # a smaller run
    python benchmarks/eval_protocol.py --n 600 --sweep snr   # SNR -5..20 dB (one SynthAVE folder per value)
    python benchmarks/eval_protocol.py --n 600 --seeds 3 --long 60   # 60 s clips: sparse events
    python benchmarks/eval_protocol.py --n 600 --seeds 3 --long 60 --class-weight balanced

Prints the main table, stage wall-clock times and the ratio of the protocol's total time to the 20-minute
target, and the encoder cost of each strategy relative to Uniform (measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from earmark.anchors import AnchorConfig
from earmark.eval.config import EvalConfig
from earmark.eval.protocol import run_eval
from earmark.eval.results import sweep_csv, sweep_png, sweep_row
from earmark.eval.synthave import SynthConfig

SWEEPS = {
    "snr": ("snr_db", [-5.0, 0.0, 5.0, 10.0, 20.0], {}),
    "offset": ("av_offset_s", [0.0, 1.0, 2.0], {}),
    "offset-corrected": ("av_offset_s", [0.0, 1.0, 2.0], {"correct": True}),
    "silent": ("silent_event_fraction", [0.0, 0.25, 0.5], {}),
}


SWEEP_STRATEGIES = ("uniform", "anchored", "random", "oracle")


def run(n: int | None, seeds: int, out: Path, synth: dict, offset: float = 0.0, limit: dict | None = None,
        anchor_mode: str | None = None, **over) -> dict:
    t0 = time.perf_counter()
    synth = {k: v for k, v in synth.items() if getattr(SynthConfig(), k) != v}  # defaults share one folder
    anchor = AnchorConfig(offset_s=offset, **({"mode": anchor_mode} if anchor_mode else {}))
    cfg = EvalConfig(seeds=seeds, generator={"n": n, **synth}, anchor=anchor, limit=limit,
                     cache=str(out.parent / f"cache-{n}-{json.dumps(synth, sort_keys=True)}"), **over)
    doc = run_eval(cfg, out)
    doc["total_s"] = time.perf_counter() - t0
    return doc


def show(doc: dict) -> None:
    print((Path(doc["out"]) / "table.md").read_text() if "out" in doc else "")
    t = doc["timing_s"]
    print("stage seconds:", json.dumps(t))
    print(f"total {doc['total_s']:.0f} s; / 20-minute target = {doc['total_s'] / 1200:.2f}")
    u = doc["strategies"]["uniform"]
    for name, r in doc["strategies"].items():
        if r["group"] != "curve":
            ratio = r["encoder_gflops"] / u["encoder_gflops"]
            print(f"{name:18s} encoder GFLOPs/clip {r['encoder_gflops']:.2f} (×{ratio:.2f} uniform)  "
                  f"tokens {r['tokens']:.0f}  acc {r['accuracy_mean'] * 100:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--long", type=int, default=None, metavar="SECONDS",
                    help="Long-video variant: SECONDS-long clips with the AVE event at a random place; Uniform-224 "
                         "budget for every second and K = SECONDS/5 anchors (the 10 s protocol's 2×448 + 8×112 "
                         "shape, scaled); uniform / anchored / random / oracle, no curve")
    ap.add_argument("--anchor-mode", default=None, help="topk | threshold | spread (default: EvalConfig's)")
    ap.add_argument("--probes", default=None, help="Comma-separated probes for anchored strategies (default: "
                    "EvalConfig's)")
    ap.add_argument("--class-weight", choices=("none", "balanced"), default="none",
                    help="Loss weighting per label (balanced: for the sparse events of --long)")
    ap.add_argument("--sweep", choices=sorted(SWEEPS), default=None)
    ap.add_argument("--work", type=Path, default=Path("bench-eval"))
    ap.add_argument("--limit", default=None, help="TRAIN,VAL,TEST clips taken from a full-size folder")
    ap.add_argument("--attach", type=Path, default=None, help="Copy the sweep's CSV and PNG into RESULTS_DIR/sweeps")
    ap.add_argument("--replot", action="store_true", help="Only rebuild a finished sweep's CSV/PNG from its results")
    a = ap.parse_args()
    limit = dict(zip(("train", "val", "test"), map(int, a.limit.split(",")))) if a.limit else None
    if a.sweep is None:
        over: dict = {"probes": tuple(a.probes.split(","))} if a.probes else {}
        if a.anchor_mode:
            over["anchor_mode"] = a.anchor_mode
        synth: dict = {}
        name = "limited" if limit else "default"
        if a.long:
            synth = {"duration_s": a.long}
            over.update(strategies=SWEEP_STRATEGIES, curve_budgets=())  # budget and K scale with the clip
            name = f"long{a.long}"
        if a.anchor_mode:
            name += f"-{a.anchor_mode}"
        if a.class_weight != "none":
            over["class_weight"] = a.class_weight
            name += f"-{a.class_weight}"
        out = a.work / name
        doc = run(a.n, a.seeds, out, synth, limit=limit, **over)
        doc["out"] = str(out)
        show(doc)
        return
    field, values, opts = SWEEPS[a.sweep]
    # A sweep point trains only what the sweep plots (energy anchors; no curve), with the protocol's defaults.
    over = {"probes": ("energy",), "strategies": SWEEP_STRATEGIES, "curve_budgets": (), "curve_seeds": 1}
    base = {"duration_s": a.long} if a.long else {}
    prefix = f"long{a.long}-" if a.long else ""
    if a.class_weight != "none":
        over["class_weight"] = a.class_weight
        prefix += f"{a.class_weight}-"
    print(f"sweep {field}: value, uniform, anchored-energy, random, oracle, p vs uniform, Recall@K, recovery")
    rows = []
    for v in values:
        out = a.work / f"{prefix}{a.sweep}-{v}"
        if a.replot:  # rebuild the sweep's table and plot from the points' results.json
            doc = {**json.loads((out / "results.json").read_text()), "total_s": 0.0}
        else:
            doc = run(a.n, a.seeds, out, {**base, field: v}, offset=v if opts.get("correct") else 0.0, limit=limit,
                      **over)
        r = sweep_row(v, doc)
        rows.append(r)
        print(f"{v:6.2f}  {r['uniform']:.3f}  {r['anchored']:.3f}  {r['random']:.3f}  {r['oracle']:.3f}  "
              f"{r['p_vs_uniform']}  {r['recall@K']:.3f} (partial {r['partial_recall@K']:.3f}, random "
              f"{r['random_partial_recall@K']:.3f}; precision {r['precision']:.2f}, random {r['random_precision']:.2f})"
              f"  {r['recovery']}  ({doc['total_s']:.0f} s)", flush=True)
    folder = a.work / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{prefix}{a.sweep}"
    title = f"{name} (n={a.n or 'full'}, {a.seeds} seeds)"
    (folder / f"{name}.csv").write_text(sweep_csv(rows))
    (folder / f"{name}.json").write_text(json.dumps(rows, indent=1))
    sweep_png(rows, field, title, folder / f"{name}.png")
    print(f"wrote {folder}/{name}.csv, .json, .png")
    if a.attach:  # the eval page of that results folder shows the sweep (earmark report DIR)
        dest = a.attach / "sweeps"
        dest.mkdir(parents=True, exist_ok=True)
        for ext in ("csv", "png"):
            shutil.copy(folder / f"{name}.{ext}", dest / f"{name}.{ext}")
        print(f"attached to {dest}")


if __name__ == "__main__":
    main()
