"""The probe table: anchor Recall@K of every probe on SynthAVE across SNR and with silent events, and its cost.

    python benchmarks/probe_table.py --n 600 --work bench-eval
    python benchmarks/probe_table.py --probes energy,energy+ignore-speech --out probe_table_speech.json

For each setting a SynthAVE folder is made (or reused: the same folders as `eval_protocol.py --sweep`). The
learned probes are trained once, on the train split of the default (10 dB) folder: ``linear`` (labelled seconds)
and ``transfer`` (a visual scorer taught by the audio's eventness; it reads no audio). Every probe then indexes
the val+test clips of every folder; a clip's anchors are its top-K windows. Printed per probe and setting:
Recall@K (an anchor on an event second) over the clips whose event does not fill the clip (elsewhere any second
is an event second), over all clips, and the probe's CPU seconds per hour of video (process time, measured in
the same run, one process). ``random`` (seeded) is the reference line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import earmark
from earmark.eval.datasets import load_ave
from earmark.eval.stats import recall_at_k
from earmark.eval.synthave import SynthConfig, make_synthave

SETTINGS = [("snr_db", v) for v in (-20.0, -10.0, -5.0, 0.0, 5.0, 10.0, 20.0)] + [("silent_event_fraction", 0.5)]
PROBES = ("energy", "flux", "onset", "vad", "linear", "motion", "cut", "novelty", "hybrid", "transfer")


def folder(work: Path, n: int, field: str, value: float) -> Path:
    synth = {field: value}
    root = work / f"cache-{n}-{json.dumps(synth, sort_keys=True)}" / "synthave"
    make_synthave(root, SynthConfig.from_dict({"n": n, **synth}))
    return root


def dataset(root: Path):
    m = json.loads((root / "synthave.json").read_text())
    return load_ave(root, segments=int(m["segments"]), classes=tuple(m["classes"]), name="synthave")


def train_learned(root: Path, work: Path) -> dict[str, str]:
    from earmark.probes.train import TrainProbeConfig, train_probe
    from earmark.probes.transfer import TransferTrainConfig, train_transfer

    out = {"linear": str(work / "probe-linear.pt"), "transfer": str(work / "probe-transfer.pt")}
    t0 = time.process_time()
    train_probe(TrainProbeConfig(root=str(root), limit={"train": 10**6, "val": 1, "test": 1}), out["linear"])
    t1 = time.process_time()
    ds = dataset(root)
    train_transfer([c.path for c in ds.available("train")], out["transfer"], TransferTrainConfig())
    print(f"trained linear ({t1 - t0:.0f} CPU-s) and transfer ({time.process_time() - t1:.0f} CPU-s) on "
          f"{len(ds.available('train'))} train clips of {root}", flush=True)
    return out


def evaluate(root: Path, weights: dict[str, str], k: int, probes: tuple[str, ...]) -> dict[str, dict]:
    ds = dataset(root)
    clips = [c for s in ("val", "test") for c in ds.available(s)]
    rows: dict[str, dict] = {}
    seconds = sum(c.labels.shape[0] for c in clips)
    for p in (*probes, "random"):
        hits: dict[str, list] = {"all": [], "d1": [], "partial": []}
        t0 = time.process_time()
        for i, c in enumerate(clips):
            ev = np.flatnonzero(c.labels != ds.background)
            if p == "random":
                top = np.random.default_rng(i).permutation(len(c.labels))[:k]
            else:
                name, _, variant = p.partition("+")  # e.g. energy+ignore-speech: the VAD removes speech windows
                kw = {"weights": weights[name]} if name in weights else {}
                if variant == "ignore-speech":
                    kw["ignore_speech"] = True
                tl = earmark.index(c.path, probe=name, jobs=1, **kw)
                top = np.argsort(-tl.scores, kind="stable")[:k]
            if len(ev):
                hits["all"].append(recall_at_k(top, ev, 0))
                hits["d1"].append(recall_at_k(top, ev, 1))
                if len(ev) < len(c.labels):  # the event leaves seconds to miss: where an index matters
                    hits["partial"].append(recall_at_k(top, ev, 0))
        cpu = time.process_time() - t0
        rows[p] = {"recall": float(np.mean(hits["all"])), "recall_d1": float(np.mean(hits["d1"])),
                   "partial_recall": float(np.mean(hits["partial"])), "partial_clips": len(hits["partial"]),
                   "cpu_s_per_hour": cpu / seconds * 3600, "clips": len(clips)}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("bench-eval"))
    ap.add_argument("--probes", default=",".join(PROBES), help="NAME or NAME+ignore-speech, comma-separated")
    ap.add_argument("--out", default="probe_table.json", help="file name of the table (in --work)")
    a = ap.parse_args()
    probes = tuple(p for p in a.probes.split(",") if p)
    a.work.mkdir(parents=True, exist_ok=True)
    learned = {p.partition("+")[0] for p in probes} & {"linear", "transfer"}
    weights = train_learned(folder(a.work, a.n, "snr_db", 10.0), a.work) if learned else {}
    table: dict[str, dict] = {}
    for field, value in SETTINGS:
        name = f"{field}={value:g}"
        table[name] = evaluate(folder(a.work, a.n, field, value), weights, a.k, probes)
        print(name, json.dumps({p: round(r["partial_recall"], 3) for p, r in table[name].items()}), flush=True)
    (a.work / a.out).write_text(json.dumps(table, indent=1))
    names = list(table)
    print("\n| probe | " + " | ".join(names) + " | CPU s / hour |")
    print("|---|" + "---|" * (len(names) + 1))
    for p in (*probes, "random"):
        cells = [f"{table[n][p]['partial_recall']:.2f} ({table[n][p]['recall']:.2f})" for n in names]
        cost = np.mean([table[n][p]["cpu_s_per_hour"] for n in names])
        print(f"| {p} | " + " | ".join(cells) + f" | {cost:.0f} |")
    some = table[names[0]][probes[0]]
    print(f"\ncells: Recall@{a.k} over the {some['partial_clips']} val+test clips whose event does not fill the clip "
          f"(in brackets: over all {some['clips']} clips with an event)")


if __name__ == "__main__":
    main()
