"""One-token frames against uniform at equal tokens on the long variants: where pooled-1 / skim wins and loses.

    nice -n 10 .venv/bin/python benchmarks/pooled_eval.py --work /tmp/pooled --out results/pooled/
    nice -n 10 .venv/bin/python benchmarks/pooled_eval.py --datasets realstamp --n-realstamp 100 --seeds 3

SynthAVE 60 s (built-in ``gabor`` encoder) and RealStamp 60 s (EfficientNet-Lite0), the eval protocol's frozen
encoders and its ``ave`` head (width 32, 20 epochs, batch 32, lr 1e-3: the protocol's full-run defaults), trained
per second on the planned frames' features through the protocol's own ``train_and_test``. A pooled frame is one
token: the encoder's summary of the picture at the pooled size (224 px), read once; a full frame gives its summary
and its spatial tokens, as in the protocol (:mod:`earmark.eval.pooled` says how frames become per-second inputs).

Strategies, all with ``vit-p16`` prices for full frames, energy anchors (K = 12, the index's default anchor rule),
no upscaling (the sources are 448 px, 2 fps: a 60 s clip holds 120 frames, which caps every plan):

- ``main`` budget, Uniform-224 on every second (60 × 196 = 11760 tokens): Uniform; Anchored (12×448 + 48×112,
  the protocol's shape); Skim (``pooled-1+vit-p16``: full frames at the anchors, one-token frames elsewhere);
  Skim at the fixed evenly spaced slots (the same shape with no audio read); Skim at the true event (oracle).
- ``low`` budget, the smallest ViT frame on every second (60 × 64 px = 960 tokens): Uniform, Skim, Skim fixed.
- ``pool`` budget, every frame the clip holds as one token (``pooled-1``, 120 tokens), against the most 64 px
  frames that budget buys (7 × 16 = 112 tokens, nearest frame for the other seconds).

**Success test, written before the first run.** For each dataset and budget, *Skim − Uniform* on event-second
accuracy (the head's per-second label right on the seconds of the event), with a 95 % bootstrap interval over the
test clips (the head seeds averaged per clip, :func:`earmark.eval.stats.difference_interval`): Skim *wins* where the
interval is above 0, *loses* where it is below, and no difference is measured otherwise. *Skim − Skim fixed* (the
same shape without the audio) says what the anchors add; *Skim oracle − Skim fixed* how much placement can add at
all. All-second accuracy is reported beside (mostly background on these clips). No setting is chosen by this
script: every one above was fixed before the run, none read on val or test. The val split's numbers are reported
so the reader can check that they agree with test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from earmark import AnchorConfig, index, info, plan, with_anchors
from earmark.budget.costs import cost_model
from earmark.budget.planner import held_frames
from earmark.eval import stats
from earmark.eval.config import DEFAULT_ENCODER, EvalConfig, uniform_budget, with_defaults
from earmark.eval.pooled import is_pooled, pack_seconds, second_features, second_of, time_key
from earmark.media.frames import extract
from earmark.runner import run_map

VERSION = 1
"""Changes when what a cached clip holds changes."""
K = 12
RATIO = 4.0
FULL = "vit-p16"


@dataclass(frozen=True)
class Spec:
    """One strategy of the comparison: its plan (model, budget kind, strategy, shape) and its frame count."""

    name: str
    model: str
    budget: str  # main | low | pool
    strategy: str
    shape: str | None = None
    frames: str = "seconds"  # seconds | held | affordable


SPECS = (
    Spec("uniform", FULL, "main", "uniform"),
    Spec("anchored", FULL, "main", "anchored"),
    Spec("skim", f"pooled-1+{FULL}", "main", "skim"),
    Spec("skim-fixed", f"pooled-1+{FULL}", "main", "fixed-spread", "skim"),
    Spec("skim-oracle", f"pooled-1+{FULL}", "main", "oracle", "skim"),
    Spec("uniform", FULL, "low", "uniform"),
    Spec("skim", f"pooled-1+{FULL}", "low", "skim"),
    Spec("skim-fixed", f"pooled-1+{FULL}", "low", "fixed-spread", "skim"),
    Spec("pooled-uniform", "pooled-1", "pool", "uniform", frames="held"),
    Spec("uniform", FULL, "pool", "uniform", frames="affordable"),
)
COMPARISONS = (  # (a, b): a − b, with its interval
    ("skim@main", "uniform@main"), ("skim@main", "skim-fixed@main"), ("skim-oracle@main", "skim-fixed@main"),
    ("skim@main", "anchored@main"), ("anchored@main", "uniform@main"),
    ("skim@low", "uniform@low"), ("skim@low", "skim-fixed@low"),
    ("pooled-uniform@pool", "uniform@pool"),
)


def budgets(segments: int, held: int) -> dict[str, int]:
    cm = cost_model(FULL)
    return {"main": uniform_budget(FULL, 224, segments), "low": segments * cm.levels(448, 448, square=True)[0].tokens,
            "pool": held}


@dataclass(frozen=True)
class ClipJob:
    video_id: str
    path: str
    truth: tuple[tuple[float, float], ...]
    segments: int
    encoder: str
    cache: str
    specs: tuple[Spec, ...] = SPECS


def _signature(job: ClipJob, fingerprint: str) -> str:
    specs = json.dumps([s.__dict__ for s in job.specs], sort_keys=True)
    return hashlib.sha256(f"{VERSION}|{specs}|{K}|{RATIO}|{job.encoder}|{fingerprint}".encode()).hexdigest()[:16]


def prepare_clip(job: ClipJob) -> dict:
    """Index, plan every strategy, decode the union of planned pictures once, encode each distinct (picture,
    size) once, and write every strategy's per-second features to the clip's cache file. Returns a summary."""
    import torch

    from earmark._io import one_blas_thread
    from earmark.eval.encoders import get_encoder

    torch.set_num_threads(1)
    cache = Path(job.cache) / f"{job.video_id}.npz"
    meta_path = cache.with_suffix(".json")
    vi = info(job.path)
    sig = _signature(job, vi.fingerprint)
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("signature") == sig and cache.exists():
            return meta
    t0 = time.perf_counter()
    with one_blas_thread():
        held = held_frames(vi.duration_s, vi.video.fps_average or vi.video.fps_nominal)
        b = budgets(job.segments, held)
        res = with_anchors(vi, index(job.path, probe="energy", video_info=vi, jobs=1), AnchorConfig(k=K))
        plans = {}
        for s in job.specs:
            budget = b[s.budget]
            frames = {"seconds": job.segments, "held": held,
                      "affordable": budget // cost_model(s.model).levels(448, 448, square=True)[0].tokens}[s.frames]
            kw = {"shape": s.shape} if s.shape else {}
            plans[f"{s.name}@{s.budget}"] = plan(res, s.model, budget, s.strategy, k=K, ratio=RATIO, frames=frames,
                                                 seed=0, truth=list(job.truth), upscale=False, **kw)
        t_plan = time.perf_counter() - t0
        encoder = get_encoder(job.encoder)
        wanted = {}
        for p in plans.values():
            for f in p.frames:
                wanted.setdefault((time_key(f.time_s), f.width, f.height), f)
        merged = replace(next(iter(plans.values())), frames=tuple(sorted(wanted.values(),
                                                                          key=lambda f: (f.time_s, f.width))))
        t0 = time.perf_counter()
        pictures = list(extract(job.path, merged, workers=1, video_info=vi))
        t_extract = time.perf_counter() - t0
        # A picture shown at one time and size is encoded once, whichever plans name it.
        by_shown: dict[tuple[int, int, int], list] = {}
        for fr in pictures:
            by_shown.setdefault((time_key(fr.pts_s), fr.planned.width, fr.planned.height), []).append(fr)
        by_size: dict[tuple[int, int], list] = {}
        for key, frs in by_shown.items():
            by_size.setdefault(key[1:], []).append((key, frs[0].image))
        t0 = time.perf_counter()
        encoded: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        gflops = 0.0
        for (w, h), group in by_size.items():
            enc = encoder.encode(np.stack([im for _, im in group]))
            gflops += len(group) * encoder.flops(w, h) / 1e9
            for j, (key, _) in enumerate(group):
                encoded[key] = (enc.cls[j], enc.tokens[j])
        t_encode = time.perf_counter() - t0
        feats = {(time_key(fr.planned.time_s), fr.planned.width, fr.planned.height):
                 encoded[(time_key(fr.pts_s), fr.planned.width, fr.planned.height)] for fr in pictures}
        arrays, summary = {}, {}
        for name, p in plans.items():
            cls, toks = second_features(p.frames, lambda f: feats[(time_key(f.time_s), f.width, f.height)],
                                        job.segments, lambda f, p=p: is_pooled(p, f))
            arrays[f"{name}/cls"] = cls.astype(np.float16)
            arrays[f"{name}/tok"] = np.concatenate(toks).astype(np.float16)
            arrays[f"{name}/lens"] = np.array([len(t) for t in toks], np.int32)
            sizes: dict[str, int] = {}
            for f in p.frames:
                k_ = "pooled" if is_pooled(p, f) else str(f.width)
                sizes[k_] = sizes.get(k_, 0) + 1
            summary[name] = {
                "tokens": p.total_tokens, "frames": len(p.frames), "sizes": sizes,
                "encoder_gflops": sum(encoder.flops(f.width, f.height) for f in p.frames) / 1e9,
                "head_tokens": int(sum(len(t) for t in toks)),
                "empty_seconds": int(job.segments - len({second_of(f.time_s, job.segments) for f in p.frames})),
                "anchor_seconds": sorted({second_of(a.time_s, job.segments) for a in p.anchors}),
                "fallback": all(a.source == "fallback" for a in p.anchors) if p.anchors else None}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(cache)
    meta = {"signature": sig, "video_id": job.video_id, "plans": summary,
            "seconds": {"plan": t_plan, "extract": t_extract, "encode": t_encode}, "encoded_gflops": gflops,
            "budgets": b}
    meta_path.write_text(json.dumps(meta))
    return meta


def load_split(cache: Path, clips, name: str):
    per = []
    for c in clips:
        with np.load(cache / f"{c.video_id}.npz") as z:
            lens = z[f"{name}/lens"]
            tok = z[f"{name}/tok"].astype(np.float32)
            per.append((z[f"{name}/cls"].astype(np.float32), np.split(tok, np.cumsum(lens)[:-1])))
    return pack_seconds(per, np.stack([c.labels for c in clips]))


_SHARED: tuple | None = None


def train_strategy(name: str) -> tuple[str, list]:
    """Every head seed of one strategy (features packed once): (name, [(seed, {split: predictions}, epochs,
    seconds)]). The head predicts val and test clips in one pass (fixed epochs: val is never read in training)."""
    import torch

    from earmark._io import one_blas_thread
    from earmark.eval.training import train_and_test

    torch.set_num_threads(1)
    assert _SHARED is not None
    cfg, cache, splits, n_classes = _SHARED
    out = []
    n_val = len(splits["val"])
    with one_blas_thread():
        tr = load_split(cache, splits["train"], name)
        held_out = load_split(cache, [*splits["val"], *splits["test"]], name)
        for seed in range(cfg.seeds):
            r = train_and_test(cfg, tr, None, held_out, n_classes, seed, audio=False)
            out.append((seed, {"val": r.predictions[:n_val], "test": r.predictions[n_val:]}, r.epochs, r.seconds))
    return name, out


def _progress(dataset: str):
    def show(stage: str, done: float, total: float) -> None:
        print(f"\r{dataset}: {done:.0f}/{total:.0f}", end="", file=sys.stderr, flush=True)

    return show


def evaluate(dataset: str, root: Path, cache: Path, seeds: int, workers: int,
             specs: tuple[Spec, ...] = SPECS) -> dict:
    from earmark.eval.generate import load_generated
    from earmark.eval.realstamp import MANIFEST as RS_MANIFEST
    from earmark.eval.synthave import MANIFEST as SY_MANIFEST

    manifest, kind = (SY_MANIFEST, "earmark.synthave") if dataset == "synth" else (RS_MANIFEST, "earmark.realstamp")
    ds, doc = load_generated(root, manifest, kind)
    encoder = DEFAULT_ENCODER[dataset]
    clips = [c for s in ("train", "val", "test") for c in ds.available(s)]
    jobs = [ClipJob(c.video_id, str(c.path), tuple(c.truth), ds.segments, encoder, str(cache), specs) for c in clips]
    t0 = time.perf_counter()
    metas = {m["video_id"]: m for m in run_map(prepare_clip, jobs, workers, progress=_progress(dataset))}
    print(file=sys.stderr)
    prepare_s = time.perf_counter() - t0
    splits = {s: list(ds.available(s)) for s in ("train", "val", "test")}
    cfg = with_defaults(EvalConfig(dataset=dataset, seeds=seeds))
    names = [f"{s.name}@{s.budget}" for s in specs]
    global _SHARED
    _SHARED = (cfg, cache, splits, len(ds.classes) + 1)
    t0 = time.perf_counter()
    try:  # forked workers inherit _SHARED (the splits and the cache folder), never pickled
        trained = dict(run_map(train_strategy, names, min(workers, len(names)), progress=_progress(dataset)))
    finally:
        _SHARED = None
    print(file=sys.stderr)
    train_s = time.perf_counter() - t0
    return summarise(dataset, ds, splits, metas, trained, encoder,
                     {"prepare_wall_s": prepare_s, "train_wall_s": train_s,
                      "prepare_cpu_s": {k: float(sum(m["seconds"][k] for m in metas.values()))
                                        for k in ("plan", "extract", "encode")}}, doc["config"], cfg)


def score(clips, preds: dict[str, list[np.ndarray]], background: int) -> tuple[dict, dict]:
    """Accuracies of every strategy on ``clips`` (head seeds averaged per clip) and the :data:`COMPARISONS`
    with their bootstrap intervals over the clips."""
    truth = np.stack([c.labels for c in clips])
    event_count = (truth != background).sum(1).astype(float)
    seconds = np.full(len(clips), float(truth.shape[1]))
    counts, rows = {}, {}
    for name, ps in preds.items():
        counts[name] = stats.clip_counts(ps, truth, background)
        ev, bg = zip(*(stats.split_accuracy(p, truth, background) for p in ps))
        acc = [float((p == truth).mean()) for p in ps]
        rows[name] = {"accuracy": acc, "accuracy_mean": float(np.mean(acc)), "event_accuracy": list(ev),
                      "event_accuracy_mean": float(np.mean(ev)), "background_accuracy_mean": float(np.mean(bg))}
    comparisons = {}
    for a, b in COMPARISONS:
        if a in counts and b in counts:
            comparisons[f"{a} - {b}"] = {
                "event": stats.difference_interval([counts[a]], [counts[b]], [event_count], "event_correct"),
                "all": stats.difference_interval([counts[a]], [counts[b]], [seconds])}
    return rows, comparisons


def summarise(dataset, ds, splits, metas, trained, encoder, timing, data_config, cfg) -> dict:
    background = len(ds.classes)
    out: dict = {}
    for split in ("test", "val"):
        rows, comparisons = score(splits[split], {n: [p[split] for _, p, _, _ in runs] for n, runs in trained.items()},
                                  background)
        out[split] = {"strategies": rows, "comparisons": comparisons,
                      "event_share": float(np.mean([c.labels != background for c in splits[split]]))}
    test = splits["test"]
    for name, runs in trained.items():
        plans = [metas[c.video_id]["plans"][name] for c in test]
        out["test"]["strategies"][name].update(
            tokens=float(np.mean([p["tokens"] for p in plans])), frames=float(np.mean([p["frames"] for p in plans])),
            sizes=plans[0]["sizes"], head_tokens=float(np.mean([p["head_tokens"] for p in plans])),
            encoder_gflops=float(np.mean([p["encoder_gflops"] for p in plans])),
            empty_seconds=float(np.mean([p["empty_seconds"] for p in plans])),
            epochs=[e for _, _, e, _ in runs], train_s=float(sum(s for _, _, _, s in runs)))
    recall = {}
    for split in ("val", "test"):
        for name in ("skim@main", "skim-fixed@main", "skim-oracle@main"):
            if name not in trained:
                continue
            hits, prec = [], []
            for c in splits[split]:
                ev = list(range(c.row.start_s, c.row.end_s))
                secs = metas[c.video_id]["plans"][name]["anchor_seconds"]
                hits.append(stats.recall_at_k(secs, ev))
                prec.append(stats.anchor_precision(secs, ev))
            recall[f"{split}:{name}"] = {"recall": float(np.mean([h for h in hits if h is not None])),
                                         "precision": float(np.mean([p for p in prec if p is not None])),
                                         "clips": len(hits)}
    return {"dataset": dataset, "data_config": data_config, "encoder": encoder,
            "clips": {s: len(v) for s, v in splits.items()}, "segments": ds.segments,
            "head": {"kind": cfg.head, "hidden": cfg.hidden, "epochs": cfg.epochs, "batch": cfg.batch_size,
                     "lr": cfg.lr, "seeds": cfg.seeds},
            "budgets": next(iter(metas.values()))["budgets"], **out, "anchor_recall": recall, "timing": timing}


def make_data(dataset: str, root: Path, n: int, seed: int, workers: int) -> None:
    if dataset == "synth":
        from earmark.eval.synthave import SynthConfig, make_synthave

        make_synthave(root, SynthConfig(duration_s=60, n=n, seed=seed), workers=workers)
    else:
        from earmark.eval.realstamp import RealStampConfig, make_realstamp

        make_realstamp(root, RealStampConfig(duration_s=60, n=n, seed=seed), workers=workers)


def table(doc: dict) -> str:
    t = doc["test"]
    lines = [f"{doc['dataset']}: {doc['clips']} clips, {doc['segments']} s, encoder {doc['encoder']}, "
             f"{doc['head']['seeds']} head seeds; event seconds {100 * t['event_share']:.1f} % of test",
             "| strategy | tokens | frames (sizes) | head tokens/clip | encoder GFLOP/clip | accuracy % | event s % | "
             "background s % |", "|---|---|---|---|---|---|---|---|"]
    for name, r in t["strategies"].items():
        sizes = " + ".join(f"{n}×{s}" for s, n in sorted(r["sizes"].items(), key=lambda x: x[0]))
        lines.append(f"| {name} | {r['tokens']:.0f} | {r['frames']:.0f} ({sizes}) | {r['head_tokens']:.0f} | "
                     f"{r['encoder_gflops']:.1f} | {100 * r['accuracy_mean']:.1f} | "
                     f"{100 * r['event_accuracy_mean']:.1f} | {100 * r['background_accuracy_mean']:.1f} |")

    def ci(d: dict) -> str:
        return f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"

    lines += ["", "| difference | test: event seconds, points [95 %] | test: all seconds | val: event seconds |",
              "|---|---|---|---|"]
    for key, c in t["comparisons"].items():
        lines.append(f"| {key} | {ci(c['event'])} | {ci(c['all'])} | {ci(doc['val']['comparisons'][key]['event'])} |")
    lines += ["", "anchor Recall@12 / precision: " + "; ".join(
        f"{k} {v['recall']:.2f} / {v['precision']:.2f}" for k, v in doc["anchor_recall"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="synth,realstamp")
    ap.add_argument("--n-synth", type=int, default=600)
    ap.add_argument("--n-realstamp", type=int, default=100)
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=3, help="head seeds per strategy")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--work", type=Path, default=Path("/tmp/earmark-pooled"))
    ap.add_argument("--out", type=Path, default=Path("results/pooled"))
    ap.add_argument("--only", default=None, help="strategies to run, comma-separated (e.g. uniform@main,skim@main); "
                                                  "default: all")
    args = ap.parse_args(argv)
    specs = SPECS
    if args.only:
        names = args.only.split(",")
        unknown = set(names) - {f"{s.name}@{s.budget}" for s in SPECS}
        if unknown:
            ap.error(f"unknown strategies {sorted(unknown)}")
        specs = tuple(s for s in SPECS if f"{s.name}@{s.budget}" in names)
    args.out.mkdir(parents=True, exist_ok=True)
    docs = {}
    for dataset in args.datasets.split(","):
        n = args.n_synth if dataset == "synth" else args.n_realstamp
        name = f"{'synthave' if dataset == 'synth' else 'realstamp'}60-n{n}-s{args.data_seed}"
        root = args.work / name
        t0 = time.perf_counter()
        make_data(dataset, root, n, args.data_seed, args.workers)
        made = time.perf_counter() - t0
        doc = evaluate(dataset, root, args.work / "cache" / name, args.seeds, args.workers, specs)
        doc["timing"]["data_s"] = made
        docs[dataset] = doc
        (args.out / f"{dataset}.json").write_text(json.dumps(doc, indent=1))
        print(table(doc) + "\n")
        print(f"data {made:.0f} s, prepare {doc['timing']['prepare_wall_s']:.0f} s, train "
              f"{doc['timing']['train_wall_s']:.0f} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
