"""Question-conditioned anchors on RealStamp and SynthAVE 60 s: does the question find its object's seconds?

    nice -n 10 .venv/bin/python benchmarks/question_plans.py --n 100 --seeds 0,1 --out results/question60/
    nice -n 10 .venv/bin/python benchmarks/question_plans.py --dataset synth --n 100 --out results/question60-synth/

RealStamp: each clip shows one object (a real photograph) during its event seconds, with its own recording (except
silent clips), over 60 s of panning background, room tone, music beds, off-screen sounds and speech
(docs/realstamp.md). SynthAVE: a small striped glyph (6.5 % of the frame's width) whose colours and orientation
name one of AVE's 28 classes, among clutter and look-alike distractor discs, with a sound that says when, not what.
The question is generated from the label: "when does the {class} appear?". For K anchors we report Recall@K (an
anchor second inside the object's seconds; Δ1: within one second) for sound only (energy, alpha 0), question only
(alpha 1), both (alpha 0.5), with global or segment-local (30 s) normalisation, beside uniform (K evenly spaced
slots), random (5 seeds) and a centre position prior; and, on the mixed scores, earmark's event anchors against
inverse-transform sampling (BOLT) and one-best-per-bin coverage binning (AKS), with the longest stretch left
without an anchor.

What the question scores are measured with — there are no real text-image weights offline:
- ``random-clip``: a CLIP with random weights (the same loader and code path a real folder takes). It measures
  nothing about semantics; its rows are what chance relevance does to a plan.
- ``exemplar``: no text at all. The eval's frozen encoder for the dataset (RealStamp: EfficientNet-Lite0, real
  ImageNet weights shipped by a registry package; SynthAVE: the built-in gabor bank) embeds each second's thumbnail
  and the class's own picture on grey (RealStamp: the stamp photograph; SynthAVE: the clip's glyph, drawn large);
  their cosine stands in for the question's text embedding. It is optimistic (the query picture is the very
  picture pasted into the clip) and says how the machinery behaves with real image features, real backgrounds and
  their drift — not how CLIP would.

Choices (alpha, normalisation) are read on the train+val clips; the table reports the test clips and all clips, and
95 % bootstrap intervals (over clips, all data seeds pooled) for the main rows.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from earmark import AnchorConfig, index, info, with_anchors
from earmark.budget.planner import random_anchors, spread_anchors
from earmark.eval.config import DEFAULT_ENCODER
from earmark.eval.realstamp import STAMPS, RealStampConfig, load_stamp, make_realstamp
from earmark.eval.synthave import GLYPH_FRACTION, SynthConfig, glyph, make_synthave
from earmark.index import condition_on_question
from earmark.media.frames import decode_at
from earmark.probes.question import TextImageModel, normalise, window_relevance

KS = (2, 5)
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
NORMS = ("global", "segment")
RANDOM_SEEDS = 5


def tiny_random_clip(folder: Path) -> TextImageModel:
    """A CLIP with random weights (seed 0), saved and loaded back like a user's folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    if not (folder / "config.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        words = ["[PAD]", "[BOS]", "[EOS]", "[UNK]", *sorted({"when", "does", "the", "appear", "?", "or"})]
        text = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                    max_position_embeddings=32, pad_token_id=0, bos_token_id=1, eos_token_id=2)
        vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=64,
                      patch_size=16)
        CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=32)).save_pretrained(folder)
        CLIPImageProcessorPil(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}).save_pretrained(folder)
        tk = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
        tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
        PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(folder)
    return TextImageModel.from_pretrained(folder)


EXEMPLAR_SIDE = 224


def _on_grey(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``rgb`` (h, w, 3) with ``alpha`` (h, w, 1) in [0, 1], centred on a grey square of EXEMPLAR_SIDE px."""
    side = EXEMPLAR_SIDE
    canvas = np.full((side, side, 3), 128.0, np.float32)
    y0, x0 = (side - rgb.shape[0]) // 2, (side - rgb.shape[1]) // 2
    canvas[y0:y0 + rgb.shape[0], x0:x0 + rgb.shape[1]] = alpha * rgb + (1 - alpha) * 128.0
    return canvas.astype(np.uint8)


def exemplar_picture(dataset: str, clip: dict) -> np.ndarray:
    """The class's own picture filling 60 % of a grey square: the stamp photograph (RealStamp) or the clip's
    glyph (SynthAVE, with as many stripes across it as in the clip)."""
    from PIL import Image

    d = round(0.6 * EXEMPLAR_SIDE)
    if dataset == "synth":
        period = clip["stripe_period"] * d / (GLYPH_FRACTION * 448)
        rgb, alpha = glyph(clip["class_index"], d, 0.0, 0.0, period)
        return _on_grey(rgb, alpha)
    rgba = load_stamp(str(STAMPS / f"{clip['stamp']}.png")).astype(np.float32)
    h, w = rgba.shape[:2]
    scale = d / max(h, w)
    im = np.asarray(Image.fromarray(rgba.astype(np.uint8)).resize((max(1, round(w * scale)), max(1, round(h * scale)))),
                    np.float32)
    return _on_grey(im[..., :3], im[..., 3:4] / 255.0)


def exemplar_relevance(video: Path, query: np.ndarray, enc, starts, window_s: float, duration_s: float) -> np.ndarray:
    """Cosine between each window's thumbnail and the query picture, in the encoder's pooled features."""
    side = EXEMPLAR_SIDE
    times = [min(s + window_s / 2, np.nextafter(duration_s, 0)) for s in starts]
    thumbs = np.stack([f.image for f in decode_at(video, times, (side, side), fit="pad")])
    feats = np.concatenate([enc.encode(thumbs[i:i + 32]).cls for i in range(0, len(thumbs), 32)])
    q = enc.encode(query[None]).cls[0]
    feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    return (feats @ (q / np.linalg.norm(q))).astype(np.float32)


def question_for(dataset: str, category: str) -> str:
    """"when does the lion appear?": RealStamp names ("cat/kitten" -> "cat or kitten"), AVE's first alternative
    ("Baby cry, infant cry" -> "baby cry")."""
    name = category.split(",")[0].lower() if dataset == "synth" else category.replace("/", " or ")
    return f"when does the {name.replace('-', ' ')} appear?"


def seconds(times, n: int) -> list[int]:
    return sorted({min(int(t), n - 1) for t in times})


def inverse_transform(scores: np.ndarray, k: int) -> list[int]:
    """BOLT-style: K windows at the (i + 0.5) / K quantiles of the distribution ∝ scores shifted to be positive."""
    p = np.asarray(scores, np.float64) - float(np.min(scores)) + 1e-6
    cdf = np.cumsum(p) / p.sum()
    return sorted({int(np.searchsorted(cdf, (i + 0.5) / k)) for i in range(k)})


def binned(scores: np.ndarray, k: int) -> list[int]:
    """AKS-style coverage: the best window in each of K equal bins."""
    edges = np.linspace(0, len(scores), k + 1).round().astype(int)
    return [int(a + np.argmax(scores[a:b])) for a, b in itertools.pairwise(edges) if b > a]


def longest_gap(secs: list[int], n: int) -> int:
    """Seconds in the longest stretch with no chosen second (the ends count as stretches)."""
    pts = [-1, *sorted(secs), n]
    return max(b - a - 1 for a, b in itertools.pairwise(pts))


def make_data(dataset: str, root: Path, n: int, seed: int, workers: int) -> dict:
    if dataset == "synth":
        make_synthave(root, SynthConfig(duration_s=60, n=n, seed=seed), workers=workers)
        return json.loads((root / "synthave.json").read_text())
    make_realstamp(root, RealStampConfig(duration_s=60, n=n, seed=seed), workers=workers)
    return json.loads((root / "realstamp.json").read_text())


def run(dataset: str, n: int, seed: int, out: Path, workers: int, work: Path | None = None) -> dict:
    import torch

    from earmark.eval.encoders import get_encoder

    torch.set_num_threads(1)  # a shared machine: one thread does as much, without the contention

    name = "synthave" if dataset == "synth" else "realstamp"
    data = (work or out) / f"{name}60-n{n}-s{seed}"
    t0 = time.time()
    doc = make_data(dataset, data, n, seed, workers)
    made_s = time.time() - t0
    clip_model = tiny_random_clip(out / "random-clip")
    enc = get_encoder(DEFAULT_ENCODER[dataset])
    rows = []
    t0 = time.time()
    for c in doc["clips"]:
        video = data / "AVE" / f"{c['video_id']}.mp4"
        vi = info(video)
        tl = index(video, probe="energy", video_info=vi)
        nwin = len(tl)
        question = question_for(dataset, c["category"])
        rel = {"random-clip": window_relevance(video, question, clip_model, tl.starts, tl.window_s, tl.duration_s,
                                               video_info=vi),
               "exemplar": exemplar_relevance(video, exemplar_picture(dataset, c), enc, tl.starts, tl.window_s,
                                              tl.duration_s)}
        truth = list(range(c["start_s"], c["end_s"]))
        row = {"id": c["video_id"], "seed": seed, "split": c["split"], "silent": c["silent"], "truth": truth,
               "picks": {}}
        centres = [float(x) for x in tl.starts + tl.window_s / 2]
        for k in KS:
            res = with_anchors(vi, tl, AnchorConfig(k=k))
            picks = {"audio": seconds([a.time_s for a in res.anchors], nwin),
                     "uniform": seconds([a.time_s for a in spread_anchors(tl.duration_s, centres, k)], nwin),
                     "prior-centre": sorted(np.argsort(np.abs(np.arange(nwin) - (nwin - 1) / 2), kind="stable")[:k]
                                            .tolist())}
            for s in range(RANDOM_SEEDS):
                picks[f"random-{s}"] = seconds([a.time_s for a in random_anchors(tl.duration_s, centres, k, s)], nwin)
            for src, r in rel.items():
                for norm in NORMS:
                    for alpha in ALPHAS[1:]:
                        q = condition_on_question(res, question, relevance=r, alpha=alpha, norm=norm)
                        picks[f"{src}/{norm}/a{alpha:g}"] = seconds([a.time_s for a in q.anchors], nwin)
                        if alpha == 0.5:
                            sc = q.timeline.scores
                            picks[f"{src}/{norm}/a0.5/its"] = inverse_transform(sc, k)
                            picks[f"{src}/{norm}/a0.5/bins"] = binned(sc, k)
                    qn = normalise(r, norm, tl.hop_s)
                    picks[f"{src}/{norm}/relevance-top"] = sorted(np.argsort(-qn, kind="stable")[:k].tolist())
            row["picks"][k] = picks
        rows.append(row)
        print(f"\r{len(rows)}/{len(doc['clips'])} clips", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {"dataset": dataset, "n": n, "seed": seed, "encoder": enc.name, "made_s": made_s,
            "scored_s": time.time() - t0, "rows": rows}


BOOTSTRAP = 2000


def interval(hits: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of a mean over clips."""
    rng = np.random.default_rng(seed)
    means = hits[rng.integers(len(hits), size=(BOOTSTRAP, len(hits)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(result: dict) -> dict:
    out = {}
    for subset, keep in (("train+val", lambda r: r["split"] != "test"), ("test", lambda r: r["split"] == "test"),
                         ("all", lambda r: True)):
        rows = [r for r in result["rows"] if keep(r)]
        table = {}
        for k in KS:
            methods = sorted({m for r in rows for m in r["picks"][str(k)]})
            hits = {}
            for m in methods:
                picks = [r["picks"][str(k)][m] for r in rows]
                hits[m] = np.array([bool(set(p) & set(r["truth"])) for p, r in zip(picks, rows)], float)
                hit1 = [any(abs(a - t) <= 1 for a in p for t in r["truth"]) for p, r in zip(picks, rows)]
                gap = [longest_gap(p, 60) for p in picks]
                table[f"{m}@{k}"] = {"recall": float(hits[m].mean()), "recall_d1": float(np.mean(hit1)),
                                     "longest_gap_s": float(np.mean(gap)), "clips": len(rows)}
            hits["random"] = np.mean([hits[f"random-{s}"] for s in range(RANDOM_SEEDS)], 0)
            table[f"random@{k}"] = {name: float(np.mean([table[f"random-{s}@{k}"][name] for s in range(RANDOM_SEEDS)]))
                                    for name in ("recall", "recall_d1", "longest_gap_s")} | {"clips": len(rows)}
            for m, h in hits.items():
                if not re.fullmatch(r"random-\d+", m):  # one random seed: its mean over seeds has the interval
                    table[f"{m}@{k}"]["recall_ci"] = interval(h)
        out[subset] = {"clips": len(rows), "table": table}
    tv = out["train+val"]["table"]
    out["norm_choice"] = {  # read on train+val only: the default should be the winner there
        f"{src}@{k}": max(("global", "segment", "prior-centre"),
                          key=lambda n: (tv[f"{src}/{n}/a0.5@{k}" if n != "prior-centre" else f"prior-centre@{k}"]
                                         ["recall"], n == "segment"))
        for src in ("exemplar", "random-clip") for k in KS}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("realstamp", "synth"), default="realstamp")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seeds", default="0", help="data seeds, comma-separated (one generated folder each)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--work", type=Path, default=None, help="where the generated folders go (default: --out)")
    ap.add_argument("--out", type=Path, default=Path("results/question60"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [run(args.dataset, args.n, int(s), args.out, args.workers, args.work) for s in args.seeds.split(",")]
    for r in runs:  # JSON keys: K as text, as results.json holds them
        for row in r["rows"]:
            row["picks"] = {str(k): v for k, v in row["picks"].items()}
    result = {"dataset": args.dataset, "n": args.n, "seeds": [r["seed"] for r in runs], "encoder": runs[0]["encoder"],
              "made_s": sum(r["made_s"] for r in runs), "scored_s": sum(r["scored_s"] for r in runs),
              "rows": [row for r in runs for row in r["rows"]]}
    summary = summarise(result)
    (args.out / "results.json").write_text(json.dumps({**result, "summary": summary}, indent=1))
    for subset in ("train+val", "test", "all"):
        s = summary[subset]
        print(f"\n{subset}: {s['clips']} clips")
        for key, v in sorted(s["table"].items()):
            if key.startswith("random-"):
                continue
            ci = v.get("recall_ci", (float("nan"), float("nan")))
            print(f"  {key:45s} R {v['recall']:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]  RΔ1 {v['recall_d1']:.3f}  "
                  f"gap {v['longest_gap_s']:.1f} s")
    print(f"\nnormalisation winner on train+val (alpha 0.5; ties go to segment): {summary['norm_choice']}")
    print(f"\nmade the data in {result['made_s']:.0f} s, scored in {result['scored_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
