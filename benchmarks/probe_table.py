"""The probe table: anchor Recall@K of every probe on SynthAVE across SNR and with silent events, and its cost.

    python benchmarks/probe_table.py --n 600 --work bench-eval
    python benchmarks/probe_table.py --probes energy,energy+ignore-speech --out probe_table_speech.json

For each setting a SynthAVE folder is made (or reused: the same folders as `eval_protocol.py --sweep`): SNR
-20..20 dB, distractors in every background second, half the events silent, and half silent but shown by a large
moving object (``event_motion``, the case hybrid and transfer are for). The learned probes are trained once, on
the train split of the default (10 dB) folder: ``linear`` (labelled seconds) and ``transfer`` (a visual scorer
taught by the audio's eventness; it reads no audio; retrained on the ``event_motion`` folder's own train clips for
that setting, since what it learns is what the corpus's pictures show). ``--weights ast=DIR`` (clap=DIR,
panns=FILE, yamnet=FILE) adds a semantic probe with the user's weights. Every probe then indexes
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
from earmark.eval.generate import load_generated
from earmark.eval.stats import recall_at_k
from earmark.eval.synthave import MANIFEST, SynthConfig, make_synthave

SETTINGS: list[dict] = [
    *({"snr_db": v} for v in (-20.0, -10.0, -5.0, 0.0, 5.0, 10.0, 20.0)),
    {"distractor_rate": 1.0},  # every background second: a distractor disc; half of them a babble/knock sound
    {"silent_event_fraction": 0.5},  # half the events make no sound (visible only as small glyphs)
    {"silent_event_fraction": 0.5, "event_motion": 0.25},  # ... but a large moving object shows them
]
PROBES = ("energy", "flux", "onset", "vad", "linear", "motion", "cut", "novelty", "hybrid", "transfer")


def folder(work: Path, n: int, synth: dict) -> Path:
    root = work / f"cache-{n}-{json.dumps(synth, sort_keys=True)}" / "synthave"
    make_synthave(root, SynthConfig.from_dict({"n": n, **synth}))
    return root


def dataset(root: Path):
    return load_generated(root, MANIFEST, "earmark.synthave")[0]


def train_learned(root: Path, work: Path) -> dict[str, str]:
    from earmark.train.linear import TrainProbeConfig, train_probe

    out = {"linear": str(work / "probe-linear.pt")}
    t0 = time.process_time()
    train_probe(TrainProbeConfig(root=str(root), limit={"train": 10**6, "val": 1, "test": 1}), out["linear"])
    print(f"trained linear ({time.process_time() - t0:.0f} CPU-s) on the train clips of {root}", flush=True)
    return {**out, "transfer": train_transfer_on(root, work / "probe-transfer.pt")}


def train_transfer_on(root: Path, out: Path) -> str:
    """The transfer scorer, taught by the audio of ``root``'s train clips (no labels)."""
    from earmark.train.transfer import TransferTrainConfig, train_transfer

    t0 = time.process_time()
    ds = dataset(root)
    train_transfer([c.path for c in ds.available("train")], out, TransferTrainConfig())
    print(f"trained transfer ({time.process_time() - t0:.0f} CPU-s) on {len(ds.available('train'))} train clips of "
          f"{root}", flush=True)
    return str(out)


def evaluate(root: Path, weights: dict[str, str], k: int, probes: tuple[str, ...]) -> dict[str, dict]:
    ds = dataset(root)
    clips = [c for s in ("val", "test") for c in ds.available(s)]
    manifest = load_generated(root, MANIFEST, "earmark.synthave")[1]
    silent = {c["video_id"] for c in manifest["clips"] if c["silent"]}
    rows: dict[str, dict] = {}
    seconds = sum(c.labels.shape[0] for c in clips)
    for p in (*probes, "random"):
        hits: dict[str, list] = {"all": [], "d1": [], "partial": [], "silent": []}
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
                    if c.video_id in silent:
                        hits["silent"].append(recall_at_k(top, ev, 0))
        cpu = time.process_time() - t0
        rows[p] = {"recall": float(np.mean(hits["all"])), "recall_d1": float(np.mean(hits["d1"])),
                   "partial_recall": float(np.mean(hits["partial"])), "partial_clips": len(hits["partial"]),
                   "silent_partial_recall": float(np.mean(hits["silent"])) if hits["silent"] else None,
                   "cpu_s_per_hour": cpu / seconds * 3600, "clips": len(clips)}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("bench-eval"))
    ap.add_argument("--probes", default=",".join(PROBES), help="NAME or NAME+ignore-speech, comma-separated")
    ap.add_argument("--out", default="probe_table.json", help="file name of the table (in --work)")
    ap.add_argument("--weights", action="append", default=[], metavar="PROBE=PATH",
                    help="weights of a model probe to add (ast/clap folder, panns .pth, yamnet .onnx); repeatable")
    ap.add_argument("--settings", default=None, help="only these setting indices (comma-separated)")
    a = ap.parse_args()
    extra = dict(w.split("=", 1) for w in a.weights)
    probes = tuple(p for p in a.probes.split(",") if p) + tuple(k for k in extra if k not in a.probes.split(","))
    settings = [SETTINGS[int(i)] for i in a.settings.split(",")] if a.settings else SETTINGS
    a.work.mkdir(parents=True, exist_ok=True)
    learned = {p.partition("+")[0] for p in probes} & {"linear", "transfer"}
    weights = train_learned(folder(a.work, a.n, {"snr_db": 10.0}), a.work) if learned else {}
    weights.update(extra)
    table: dict[str, dict] = {}
    for synth in settings:
        name = ",".join(f"{k}={v:g}" for k, v in synth.items())
        root = folder(a.work, a.n, synth)
        own = dict(weights)
        if synth.get("event_motion") and "transfer" in weights:  # a corpus where the picture can show events
            own["transfer"] = train_transfer_on(root, a.work / f"probe-transfer-{name}.pt")
        table[name] = evaluate(root, own, a.k, probes)
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
    for n in names:
        if any(table[n][p]["silent_partial_recall"] is not None for p in probes):
            print(f"{n}: Recall@{a.k} on the partial clips whose event is silent: " + ", ".join(
                f"{p} {table[n][p]['silent_partial_recall']:.2f}" for p in (*probes, "random")))


if __name__ == "__main__":
    main()
