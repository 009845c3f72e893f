"""Moment search latency against index size: one video's stored features (a moments document) and a batch folder
(DuckDB over its Parquet parts), each beside the floor measured in the same run.

Synthetic stores of the real formats, written here (no decoding: what is measured is the search):

- **one video**, 10 min / 1 h / 4 h / 10 h at 1 s windows: a yamnet-like index (top-3 of 527 class names per
  window, "Dog" among them), motion and appearance z, and 512-d float16 unit embeddings (a CLIP ViT-B/32's size).
  Timed: reading and checking the document (``read_moments``), the search itself (labels + pictures + motion, the
  query's text embedding given: a model's load is a fixed cost, measured apart), and ``earmark search FILE --query``
  as a user runs it (a fresh process: Python, the CLI, reading, searching, printing; no text-image model).
  Floors: ``json.loads`` of the same file, and the (windows × 512) matrix product alone.
- **a corpus** of 1 h videos (10 / 100 / 300 of them: 36 000 to 1 080 000 windows) written by ``earmark batch``'s own
  part writer and manifest: ``search_corpus`` for a label query and an eventness query, ``corpus_highlights`` (reads
  every window). Floor: ``SELECT count(*) FROM windows`` through the same DuckDB views.

Median of ``--repeats`` runs (after one warm-up) per size; noisy shared 2-core machine: read the ratios.

    .venv/bin/python benchmarks/search.py [--hours 0.1667 1 4 10] [--videos 10 100 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from earmark.search import Moments, SearchConfig, corpus_highlights, read_moments, search, search_corpus, write_moments
from earmark.types import IndexResult, Timeline, VideoInfo, VideoStreamInfo

CLASSES = ["Dog", *[f"Class {i:03d}" for i in range(526)]]
DIM = 512


def fake_info(path: str, duration_s: float) -> VideoInfo:
    v = VideoStreamInfo(index=0, codec="h264", width=1280, height=720, pix_fmt="yuv420p", fps_nominal=30.0,
                        fps_average=30.0, frame_count=int(duration_s * 30), start_time_s=0.0, duration_s=duration_s,
                        rotation=0, vfr=False, keyframe_interval_s=2.0)
    return VideoInfo(path=path, size_bytes=10**9, fingerprint="0123456789abcdef", format_name="mp4",
                     duration_s=duration_s, start_time_s=0.0, video=v, audio_streams=(), default_audio_stream=None)


def fake_moments(path: str, hours: float, rng: np.random.Generator) -> Moments:
    n = int(round(hours * 3600))
    z = rng.standard_normal(n).astype(np.float32)
    picks = np.argsort(rng.random((n, len(CLASSES))), axis=1)[:, :3]
    labels = tuple(tuple(CLASSES[j] for j in row) for row in picks)
    tl = Timeline(video=path, fingerprint="0123456789abcdef", duration_s=float(n), hop_s=1.0, window_s=1.0,
                  probe="yamnet", probe_config={}, raw_unit="tagger score", raw=z, scores=z,
                  confidence=np.full(n, 0.5, np.float32), coverage=np.ones(n, np.float32), norm_center=0.0,
                  norm_scale=1.0, audio_stream=None, sample_rate=16000, labels=labels)
    emb = rng.standard_normal((n, DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return Moments(IndexResult(fake_info(path, float(n)), tl, (), {"k": 2}), rng.standard_normal(n),
                   rng.standard_normal(n), emb.astype(np.float16),
                   {"path": "clip-vit-b32/", "type": "clip", "digest": "0123456789abcdef", "image_size": 224})


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def one_video(hours: list[float], repeats: int, tmp: Path) -> None:
    cfg = SearchConfig()
    rng = np.random.default_rng(0)
    text = rng.standard_normal(DIM).astype(np.float32)
    text /= np.linalg.norm(text)
    print("one video: a moments document (1 s windows, top-3 labels, motion, 512-d float16 embeddings)")
    print(f"{'video':>7} {'windows':>8} {'file MB':>8} {'json.loads':>10} {'read':>7} {'search':>7} "
          f"{'matmul':>7} {'CLI':>6} {'read/json':>9}")
    for h in hours:
        path = tmp / f"v{h:g}.json"
        m = fake_moments(str(tmp / f"v{h:g}.mp4"), h, rng)
        write_moments(m, path)
        t_json = timed(lambda p=path: json.loads(p.read_bytes()), repeats)
        t_read = timed(lambda p=path: read_moments(p), repeats)
        loaded = read_moments(path)
        t_search = timed(lambda m=loaded: search(m, "a dog moving", cfg, text_embedding=text), repeats)
        t_mat = timed(lambda e=loaded.embeddings: e.astype(np.float32) @ text, repeats)
        cli = [sys.executable, "-m", "earmark", "search", str(path), "--query", "a dog moving", "-q"]

        def run_cli(cli=cli) -> None:
            subprocess.run(cli, check=True, capture_output=True)

        t_cli = timed(run_cli, max(1, repeats // 2))
        hits = search(loaded, "a dog moving", cfg, text_embedding=text).hits
        label = f"{h * 60:.0f} min" if h < 1 else f"{h:g} h"
        print(f"{label:>7} {len(m.index.timeline):>8} {path.stat().st_size / 2**20:>8.1f} {t_json:>9.3f}s "
              f"{t_read:>6.3f}s {t_search:>6.3f}s {t_mat:>6.4f}s {t_cli:>5.2f}s {t_read / t_json:>8.2f}x "
              f"({len(hits)} hits)")


def fake_corpus(out: Path, videos: int, rng: np.random.Generator, dim: int = 0) -> None:
    """``videos`` one-hour videos in a batch folder, written by earmark batch's own part writer and manifest, with
    motion and appearance z per window and, with ``dim``, one float16-valued unit embedding of ``dim`` per window."""
    from earmark.batch import MARKER, _append, _check_row, _write_parts, video_key

    out.mkdir(parents=True)
    (out / MARKER).write_text(json.dumps({"kind": "earmark.batch", "version": 1}))
    chash = "00000000000000aa"
    (out / "configs").mkdir()
    model = {"path": "/models/clip", "digest": "0" * 16} if dim else None
    (out / "configs" / f"{chash}.json").write_text(json.dumps({
        "kind": "earmark.batch.config", "version": 1, "hop_s": 1.0, "window_s": 1.0,
        "search_features": {"visual": True, "text_image_model": model}}))
    n = 3600
    for i in range(videos):
        path = f"/corpus/video{i:04d}.mp4"
        key = video_key(path)
        z = rng.standard_normal(n).astype(np.float32)
        windows = {"window_index": list(range(n)), "start_s": np.arange(n, dtype=float).tolist(),
                   "end_s": (np.arange(n) + 1.0).tolist(), "raw": z, "score": z, "confidence": np.full(n, 0.5),
                   "coverage": np.ones(n), "is_anchor": [False] * n,
                   "label": [CLASSES[j] for j in rng.integers(0, len(CLASSES), n)], "probe": ["yamnet"] * n,
                   "video_key": [key] * n, "path": [path] * n,
                   "motion": rng.standard_normal(n).astype(np.float32), "appearance":
                   rng.standard_normal(n).astype(np.float32), "embedding": [None] * n}
        if dim:
            e = rng.standard_normal((n, dim)).astype(np.float32)
            windows["embedding"] = list((e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float16)
                                        .astype(np.float32))
        anchors = {c: [] for c in ("anchor", "window_index", "time_s", "start_s", "end_s", "score", "confidence",
                                   "source", "label", "probe", "video_key", "path")}
        row = {"path": path, "video_key": key, "status": "ok", "error": None, "size_bytes": 1, "mtime_ns": 0,
               "fingerprint": f"{i:016x}", "duration_s": float(n), "windows": n, "anchors": 0, "frames": None,
               "timings": {}, "notes": [], "config_hash": chash, "earmark_version": "bench", "peak_rss_mb": None,
               "finished_at": "2026-12-06T00:00:00Z"}
        _check_row(row, "row")
        _write_parts(out, {**row, "tables": {"windows": windows, "anchors": anchors}}, chash)
        _append(out / "manifest.jsonl", row)


def corpus(sizes: list[int], repeats: int, tmp: Path) -> None:
    from earmark.batch import connect
    from earmark.highlights import HighlightConfig

    cfg = SearchConfig(top=10)
    rng = np.random.default_rng(1)
    print("\na corpus: a batch folder of 1 h videos (1 s windows, top-1 label of 527 classes, motion and "
          "appearance z)")
    print(f"{'videos':>7} {'windows':>9} {'count(*)':>9} {'label query':>12} {'loud query':>11} "
          f"{'motion query':>13} {'highlights':>11} {'label/count':>11}")
    for v in sizes:
        out = tmp / f"corpus{v}"
        fake_corpus(out, v, rng)

        def count(out=out) -> None:
            con = connect(out)
            con.sql("SELECT count(*) FROM windows").fetchall()
            con.close()

        t_count = timed(count, repeats)
        t_label = timed(lambda out=out: search_corpus(out, "a dog", cfg), repeats)
        t_loud = timed(lambda out=out: search_corpus(out, "loud", cfg), repeats)
        t_motion = timed(lambda out=out: search_corpus(out, "moving", cfg), repeats)
        t_hl = timed(lambda out=out: corpus_highlights(out, HighlightConfig(top=3)), max(1, repeats // 2))
        hits = len(search_corpus(out, "a dog", SearchConfig(top=10**6)).hits)
        print(f"{v:>7} {v * 3600:>9} {t_count:>8.3f}s {t_label:>11.3f}s {t_loud:>10.3f}s {t_motion:>12.3f}s "
              f"{t_hl:>10.2f}s {t_label / t_count:>10.2f}x ({hits} dog hits)")


def corpus_pictures(sizes: list[int], dim: int, repeats: int, tmp: Path) -> None:
    """A text-image query over stored thumbnail embeddings: the cosines in DuckDB, their robust z per video."""
    from earmark.batch import connect

    cfg = SearchConfig(top=10)
    rng = np.random.default_rng(2)
    text = rng.standard_normal(dim).astype(np.float32)
    text /= np.linalg.norm(text)
    print(f"\na corpus with {dim}-d picture embeddings (float16 values stored as float32 lists)")
    print(f"{'videos':>7} {'windows':>9} {'parquet':>9} {'dot floor':>10} {'picture query':>14} {'+ label':>8}")
    for v in sizes:
        out = tmp / f"pictures{v}"
        fake_corpus(out, v, rng, dim)
        size = sum(p.stat().st_size for p in (out / "windows").glob("*.parquet")) / 2**20

        def floor(out=out) -> None:
            con = connect(out)
            con.sql("SELECT max(list_dot_product(embedding, ?::FLOAT[])) FROM windows", params=[text.tolist()]
                    ).fetchall()
            con.close()

        t_floor = timed(floor, repeats)
        t_pic = timed(lambda out=out: search_corpus(out, "a red car", cfg, text_embedding=text), repeats)
        t_both = timed(lambda out=out: search_corpus(out, "a dog", cfg, text_embedding=text), repeats)
        print(f"{v:>7} {v * 3600:>9} {size:>7.0f}MB {t_floor:>9.3f}s {t_pic:>13.3f}s {t_both:>7.3f}s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, nargs="+", default=[10 / 60, 1, 4, 10])
    ap.add_argument("--videos", type=int, nargs="+", default=[10, 100, 300])
    ap.add_argument("--picture-videos", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--dim", type=int, default=512, help="Embedding size of the picture corpus (CLIP ViT-B/32: 512).")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        one_video(args.hours, args.repeats, Path(d))
        corpus(args.videos, args.repeats, Path(d))
        corpus_pictures(args.picture_videos, args.dim, args.repeats, Path(d))


if __name__ == "__main__":
    main()
