"""The equal-token protocol on SynthAVE, timed by stage; optional sweeps over SNR, AV offset and silent events.

    python benchmarks/eval_protocol.py                       # default `earmark eval synth` (full AVE split sizes)
    python benchmarks/eval_protocol.py --n 600 --seeds 2     # a smaller run
    python benchmarks/eval_protocol.py --n 600 --sweep snr   # SNR -5..20 dB (one SynthAVE folder per value)

Prints the main table, stage wall-clock times and the ratio of the protocol's total time to the 20-minute
target, and the encoder cost of each strategy relative to Uniform (measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from earmark.eval.protocol import EvalConfig, run_eval

SWEEPS = {
    "snr": ("snr_db", [-5.0, 0.0, 5.0, 10.0, 20.0], {}),
    "offset": ("av_offset_s", [0.0, 1.0, 2.0], {}),
    "offset-corrected": ("av_offset_s", [0.0, 1.0, 2.0], {"correct": True}),
    "silent": ("silent_event_fraction", [0.0, 0.25, 0.5], {}),
}


def run(n: int | None, seeds: int, out: Path, synth: dict, offset: float = 0.0, limit: dict | None = None) -> dict:
    t0 = time.perf_counter()
    cfg = EvalConfig(seeds=seeds, synth={"n": n, **synth}, anchor_offset_s=offset, limit=limit,
                     cache=str(out.parent / f"cache-{n}-{json.dumps(synth, sort_keys=True)}"))
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
    ap.add_argument("--sweep", choices=sorted(SWEEPS), default=None)
    ap.add_argument("--work", type=Path, default=Path("bench-eval"))
    ap.add_argument("--limit", default=None, help="TRAIN,VAL,TEST clips taken from a full-size folder")
    a = ap.parse_args()
    limit = dict(zip(("train", "val", "test"), map(int, a.limit.split(",")))) if a.limit else None
    if a.sweep is None:
        out = a.work / ("limited" if limit else "default")
        doc = run(a.n, a.seeds, out, {}, limit=limit)
        doc["out"] = str(out)
        show(doc)
        return
    field, values, opts = SWEEPS[a.sweep]
    print(f"sweep {field}: value, uniform, anchored-energy, random, oracle, Recall@2 (energy), recovery")
    for v in values:
        out = a.work / f"{a.sweep}-{v}"
        doc = run(a.n, a.seeds, out, {field: v}, offset=v if opts.get("correct") else 0.0, limit=limit)
        s = doc["strategies"]
        rec = doc["recall"]["test"]["anchored-energy"]["recall@2,d0"]
        print(f"{v:6.2f}  {s['uniform']['accuracy_mean']:.3f}  {s['anchored-energy']['accuracy_mean']:.3f}  "
              f"{s['random']['accuracy_mean']:.3f}  {s['oracle']['accuracy_mean']:.3f}  {rec:.3f}  "
              f"{s['anchored-energy'].get('recovery_ratio')}", flush=True)


if __name__ == "__main__":
    main()
