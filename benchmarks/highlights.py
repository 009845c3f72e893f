"""Highlight segments against labelled events: mAP at segment IoU 0.3/0.5/0.7 and HIT@1, per scorer and baseline.

Data: the sparse long variants of SynthAVE and RealStamp, 60 s or 300 s (``--length``; one labelled event per
clip, mostly 10 s, at a random place; distractor sounds, off-screen sounds, speech, music beds and silent events
as each generator makes them), made here when the folders are missing:

    earmark eval synth --make DIR --duration 60 --n 60          (--length 300: --duration 300 --n 40)
    earmark eval realstamp --make DIR --duration 60 --n 60

Split (no training anywhere, so the generator's own train/val/test split does not matter): clips sorted by id,
even positions are **val** (choose), odd positions are **test** (report). Every method ranks at most 5 segments
per clip with the default segmenter (min 2 s, max 20 s, level z = 1, merge gap 1 s: fixed before any run).

Methods:
- ``eventness:energy`` / ``activation:logmel`` — the two candidates for the default scorer (both run on the core
  install); ``eventness:learned`` / ``activation:learned`` (shipped probe, needs torch) and ``activation:visual``
  (picture alone) are reported beside them but are not candidates.
- baselines: ``motion-only`` (the segmenter over the motion probe), ``uniform`` (5 segments of the median
  candidate-segment length, evenly spread, ranked in time order) and ``random`` (5 segments of that length at
  seeded random places, random order).

AP of a clip: its ranked segments against its event (a hit at IoU >= t; precision at the rank of the hit); mAP:
the mean over clips. HIT@1: the centre of the top segment lies inside the event. Intervals: 95 % paired
bootstrap over clips (2000 resamples, seeded).

    python benchmarks/highlights.py [--length 60|300] [--n N] [--synth DIR] [--real DIR] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import earmark
from earmark.highlights import (
    HighlightConfig,
    activation_scores,
    average_precision,
    find_segments,
    hit_at_1,
    select_segments,
    window_embeddings,
)

IOUS = (0.3, 0.5, 0.7)
TOP = 5
CANDIDATES = ("eventness:energy", "activation:logmel")
SCORED = (*CANDIDATES, "eventness:learned", "activation:learned", "activation:visual", "motion-only")
BASELINES = ("uniform", "random")
CFG = HighlightConfig(top=TOP)


DEFAULT_N = {60: 60, 300: 40}
"""Clips per dataset by length (300 s: 40, so that making and scoring both sets stays near 10 CPU minutes)."""


def make_data(kind: str, root: Path, length: int, n: int) -> None:
    manifest = root / f"{'synthave' if kind == 'synth' else 'realstamp'}.json"
    if manifest.exists():
        doc = json.loads(manifest.read_text())
        if doc.get("complete") and doc["config"]["duration_s"] == length:
            return
        if doc.get("complete"):
            raise SystemExit(f"{root}: its clips are {doc['config']['duration_s']} s, not {length} s")
    if kind == "synth":
        from earmark.eval.synthave import SynthConfig, make_synthave

        make_synthave(root, SynthConfig(duration_s=length, n=n))
    else:
        from earmark.eval.realstamp import RealStampConfig, make_realstamp

        make_realstamp(root, RealStampConfig(duration_s=length, n=n))


def clips(root: Path) -> list[dict]:
    manifest = next(p for p in (root / "synthave.json", root / "realstamp.json") if p.exists())
    rows = json.loads(manifest.read_text())["clips"]
    return sorted(({"id": c["video_id"], "path": str(root / "AVE" / f"{c['video_id']}.mp4"),
                    "truth": [(float(c["start_s"]), float(c["end_s"]))]} for c in rows), key=lambda c: c["id"])


def scores_of(path: str) -> dict[str, np.ndarray]:
    """Per-window scores of every scored method on one clip (1 s windows)."""
    vi = earmark.info(path)
    out = {}
    tl = None
    for probe in ("energy", "learned", "motion"):
        t = earmark.index(path, probe=probe, video_info=vi)
        out[{"energy": "eventness:energy", "learned": "eventness:learned", "motion": "motion-only"}[probe]] = \
            np.asarray(t.scores, np.float64)
        tl = t if tl is None else tl
    for emb in ("logmel", "learned", "visual"):
        e, cov, _ = window_embeddings(vi, tl.hop_s, tl.window_s, len(tl), emb)
        out[f"activation:{emb}"] = activation_scores(e, cov, CFG.top_k).astype(np.float64)
    out["_duration"] = np.array([tl.duration_s])
    return out


def ranked_segments(scores: np.ndarray, duration: float) -> list[tuple[float, float]]:
    segs = select_segments(find_segments(scores, 1.0, 1.0, duration, CFG), CFG.top)
    return [(g.start_s, g.end_s) for g in segs]


def baseline(name: str, duration: float, length: float, seed: int) -> list[tuple[float, float]]:
    if name == "uniform":
        centres = (np.arange(TOP) + 0.5) * duration / TOP
    else:
        centres = np.random.default_rng([seed, 17]).uniform(length / 2, duration - length / 2, TOP)
    return [(float(max(0.0, c - length / 2)), float(min(duration, c + length / 2))) for c in centres]


def metrics(ranked: list[tuple[float, float]], truth) -> dict[str, float]:
    m = {f"mAP@{t}": average_precision(ranked, truth, t) for t in IOUS}
    m["mAP"] = float(np.mean([m[f"mAP@{t}"] for t in IOUS]))
    m["HIT@1"] = hit_at_1(ranked, truth)
    return m


def bootstrap(values: np.ndarray, rng: np.random.Generator, n: int = 2000) -> tuple[float, float]:
    idx = rng.integers(0, len(values), size=(n, len(values)))
    means = values[idx].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def table(rows: dict[str, dict[str, np.ndarray]], title: str) -> None:
    keys = [f"mAP@{t}" for t in IOUS] + ["mAP", "HIT@1"]
    print(f"\n{title}")
    print(f"| method | {' | '.join(keys)} |")
    print("|---" * (len(keys) + 1) + "|")
    for name, m in rows.items():
        print(f"| {name} | " + " | ".join(f"{m[k].mean():.3f}" for k in keys) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, choices=sorted(DEFAULT_N), default=60, help="Clip length, seconds.")
    ap.add_argument("--n", type=int, default=None, help="Clips per dataset when a folder is made [default: by "
                                                        "length, 60 or 40].")
    ap.add_argument("--synth", type=Path, default=None, help="[default: highlights-data/synth<length>]")
    ap.add_argument("--real", type=Path, default=None, help="[default: highlights-data/real<length>]")
    ap.add_argument("--out", type=Path, default=None, help="Write every clip's metrics here (JSON).")
    args = ap.parse_args()
    t0 = time.perf_counter()
    per: dict[str, dict[str, dict[str, list]]] = {}  # split -> method -> metric -> values (clips of both sets)
    n_clips = args.n or DEFAULT_N[args.length]
    data = {"synth": args.synth or Path(f"highlights-data/synth{args.length}"),
            "realstamp": args.real or Path(f"highlights-data/real{args.length}")}
    records = []
    for ds, root in data.items():
        make_data("synth" if ds == "synth" else "real", root, args.length, n_clips)
        for pos, c in enumerate(clips(root)):
            split = "val" if pos % 2 == 0 else "test"
            sc = scores_of(c["path"])
            duration = float(sc.pop("_duration")[0])
            ranked = {name: ranked_segments(sc[name], duration) for name in SCORED}
            lengths = [b - a for name in CANDIDATES for a, b in ranked[name]]
            length = float(np.median(lengths)) if lengths else CFG.min_len_s
            seed = pos + (0 if ds == "synth" else 10_000)
            for name in BASELINES:
                ranked[name] = baseline(name, duration, length, seed)
            rec = {"dataset": ds, "id": c["id"], "split": split, "truth": c["truth"], "ranked": ranked,
                   "metrics": {name: metrics(r, c["truth"]) for name, r in ranked.items()}}
            records.append(rec)
            for key in (split, f"{split}:{ds}"):
                for name, m in rec["metrics"].items():
                    slot = per.setdefault(key, {}).setdefault(name, {})
                    for k, v in m.items():
                        slot.setdefault(k, []).append(v)
    arr = {key: {name: {k: np.asarray(v) for k, v in m.items()} for name, m in methods.items()}
           for key, methods in per.items()}
    n = {key: len(next(iter(next(iter(m.values())).values()))) for key, m in arr.items()}
    val = arr["val"]
    winner = max(CANDIDATES, key=lambda name: (val[name]["mAP"].mean(), -CANDIDATES.index(name)))
    print(f"{args.length} s clips: {len(records)} ({n['val']} val, {n['test']} test), "
          f"{time.perf_counter() - t0:.0f} s wall (making the data included)")
    for key in ("val", "test", "test:synth", "test:realstamp"):
        table(arr[key], f"{key} ({n[key]} clips)")
    print(f"\nchosen on val (mean mAP over IoU 0.3/0.5/0.7): {winner} "
          f"({val[winner]['mAP'].mean():.3f} vs " + ", ".join(f"{c} {val[c]['mAP'].mean():.3f}" for c in CANDIDATES
                                                          if c != winner) + ")")
    rng = np.random.default_rng(0)
    test = arr["test"]
    other = next(c for c in CANDIDATES if c != winner)
    for ref in (other, "motion-only", "uniform", "random"):
        for k in ("mAP@0.5", "mAP", "HIT@1"):
            d = test[winner][k] - test[ref][k]
            lo, hi = bootstrap(d, rng)
            print(f"test {winner} - {ref} {k}: {d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]")
    if args.out:
        args.out.write_text(json.dumps({"length_s": args.length, "winner": winner, "records": records}, indent=1))


if __name__ == "__main__":
    main()
