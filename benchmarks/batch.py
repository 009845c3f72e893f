"""earmark batch throughput: media hours per wall hour, 1 vs 2 local workers, Ray vs the local pool, and peak memory
per worker against video length, all measured in one run.

Builds (once, cached in benchmarks/_media/) a corpus of --videos links to one --minutes-long H.264 + AAC file (each
link is its own video to earmark), then runs `earmark.batch.run_batch` with the energy probe, each in a fresh
process, --repeat times:
  - local backend, 1 worker and 2 workers: throughput, ratio 2/1 (target >= 1.8 on 2 free cores)
  - ray backend (a local instance, 2 CPUs): throughput with Ray's start-up and without it (Ray started before the
    clock), ratio to local with 2 workers (target: overhead <= 15 %)
  - peak RSS of the worker per video (the runner's memory note in the manifest) on --short and --long files:
    flat in video length means the long file's worker peak is within a few MB of the short one's
Also prints the CPU seconds (parent + workers) per media hour of the local runs.

    python benchmarks/batch.py [--videos 8] [--minutes 10] [--repeat 3] [--short 2] [--long 30] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _media import MEDIA, long_av

CHILD = r"""
import json, resource, sys, time
from earmark.batch import BatchConfig, read_manifest, run_batch
corpus, out, backend, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t_init = 0.0
if backend == "ray-warm":  # Ray started before the clock: what a long corpus pays per video
    import ray
    t = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="error",
             object_store_memory=256 * 2**20)
    t_init = time.perf_counter() - t
    backend = "ray"
c0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
s = run_batch(corpus, out, BatchConfig(probe="energy"), workers=workers, backend=backend)
wall = time.perf_counter() - t0
c1, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
rows = read_manifest(out).values()
print(json.dumps({"wall_s": wall, "ray_init_s": t_init, "media_s": s.media_s, "done": s.done, "failed": s.failed,
                  "parent_cpu_s": c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime,
                  "worker_cpu_s": ch.ru_utime + ch.ru_stime,
                  "worker_rss_mb": {r["path"]: r["peak_rss_mb"] for r in rows}}))
"""


def corpus(videos: int, minutes: int) -> Path:
    """``videos`` symbolic links to one ``minutes``-long file (each a video of its own to earmark)."""
    folder = MEDIA / f"batch_{videos}x{minutes}min"
    src = long_av(minutes)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(videos):
        link = folder / f"video{i:03d}.mp4"
        if not link.exists():
            link.symlink_to(src.resolve())
    return folder


def run_child(folder: Path, backend: str, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="earmark-batch-bench-") as tmp:
        r = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(Path(tmp) / "out"), backend, str(workers)],
                           capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{backend} x{workers} failed:\n{r.stderr[-3000:]}")
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    if doc["failed"]:
        raise SystemExit(f"{backend} x{workers}: {doc['failed']} videos failed")
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--short", type=int, default=2, help="Minutes of the short file of the memory check.")
    ap.add_argument("--long", type=int, default=30, help="Minutes of the long file of the memory check.")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()

    folder = corpus(args.videos, args.minutes)
    media_h = args.videos * args.minutes / 60
    print(f"corpus: {args.videos} videos x {args.minutes} min = {media_h:.2f} media hours (energy probe); "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at start")
    runs = [("local", 1), ("local", 2)] + ([] if args.no_ray else [("ray", 2), ("ray-warm", 2)])
    results: dict[tuple[str, int], list[dict]] = {r: [] for r in runs}
    for _ in range(args.repeat):  # interleaved, so a change in the machine's load touches every route alike
        for backend, workers in runs:
            results[(backend, workers)].append(run_child(folder, backend, workers))

    def median(key: tuple[str, int], field: str) -> float:
        return statistics.median(d[field] for d in results[key])

    rate = {k: median(k, "media_s") / 3600 / (median(k, "wall_s") / 3600) for k in runs}
    print(f"\n{'route':16s} {'wall s':>8s} {'media h / wall h':>17s} {'CPU s / media h':>16s}   (median of "
          f"{args.repeat})")
    for k in runs:
        # Ray's workers are not this process's children: their CPU time does not show in RUSAGE_CHILDREN.
        per_h = [(d["parent_cpu_s"] + d["worker_cpu_s"]) / (d["media_s"] / 3600) for d in results[k]]
        cpu = f"{statistics.median(per_h):.1f}" if k[0] == "local" else "-"
        name = f"{k[0]} x{k[1]}"
        print(f"{name:16s} {median(k, 'wall_s'):8.2f} {rate[k]:17.0f} {cpu:>16s}")
    print(f"\nlocal 2 workers / 1 worker: {rate[('local', 2)] / rate[('local', 1)]:.2f}x (target >= 1.8 on 2 free "
          f"cores)")
    if not args.no_ray:
        init = median(("ray-warm", 2), "ray_init_s")
        print(f"ray x2 / local x2, Ray start-up included: {rate[('ray', 2)] / rate[('local', 2)]:.2f} "
              f"(overhead {1 - rate[('ray', 2)] / rate[('local', 2)]:+.0%})")
        print(f"ray x2 / local x2, Ray started before the clock ({init:.1f} s): "
              f"{rate[('ray-warm', 2)] / rate[('local', 2)]:.2f} (overhead "
              f"{1 - rate[('ray-warm', 2)] / rate[('local', 2)]:+.0%}; target <= 15 %)")

    mem = MEDIA / f"batch_memory_{args.short}_{args.long}min"
    mem.mkdir(parents=True, exist_ok=True)
    for m in (args.short, args.long):
        link = mem / f"{m:03d}min.mp4"
        if not link.exists():
            link.symlink_to(long_av(m).resolve())
    peaks = [run_child(mem, "local", 2)["worker_rss_mb"] for _ in range(args.repeat)]
    short = statistics.median(p[str(mem / f"{args.short:03d}min.mp4")] for p in peaks)
    long = statistics.median(p[str(mem / f"{args.long:03d}min.mp4")] for p in peaks)
    per_worker = max(max(d["worker_rss_mb"].values()) for d in results[("local", 2)])
    print(f"\npeak RSS of a worker: {args.short} min file {short:.0f} MB, {args.long} min file {long:.0f} MB "
          f"({long - short:+.0f} MB for {args.long / args.short:.0f}x the length); largest in the corpus runs "
          f"{per_worker:.0f} MB")


if __name__ == "__main__":
    main()
