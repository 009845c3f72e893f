"""earmark index speed and memory vs plain ffmpeg audio decoding, measured in the same run.

Generates (once, cached in benchmarks/_media/) a 10-minute and a 60-minute H.264 + AAC file and prints:
  - ffmpeg -vn -ac 1 -ar 16000 -f f32le to /dev/null: wall time (the floor any audio indexer sits on)
  - earmark index --probe energy: wall time in-process and as a CLI run (with interpreter start-up)
  - ratio earmark / ffmpeg (target <= 1.5), realtime factor (target >= 300x)
  - peak RSS of earmark index vs a decode-everything reference (ffmpeg piped into one numpy array)
Each timing is the median of --repeat runs, each in a fresh process.

    python benchmarks/index_speed.py [--minutes 10 60] [--repeat 3] [--probe energy]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _media import long_av

# Peak RSS is read from /proc/self/status (VmHWM): ru_maxrss survives fork+exec on Linux and would
# report the benchmark parent's memory instead of the child's.
HWM = "int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) / 1024"

CHILD_INDEX = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import earmark
t1 = time.perf_counter()
tl = earmark.index(sys.argv[1], probe=sys.argv[2], jobs=int(sys.argv[3]))
a = earmark.anchors(tl, k=2)
t2 = time.perf_counter()
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"import_s": t1 - t0, "index_s": t2 - t1, "rss_mb": HWM_EXPR, "worker_rss_mb": workers,
                  "windows": len(tl)}))
""".replace("HWM_EXPR", HWM)

CHILD_DECODE_ALL = r"""
import json, resource, subprocess, sys, time
import numpy as np
t0 = time.perf_counter()
cmd = ["ffmpeg", "-v", "error", "-i", sys.argv[1], "-vn", "-ac", "1", "-ar", "16000", "-f", "f32le", "-"]
raw = subprocess.run(cmd, check=True, capture_output=True).stdout
x = np.frombuffer(raw, dtype=np.float32)
rms = np.sqrt(np.mean(x[: len(x) // 16000 * 16000].reshape(-1, 16000) ** 2, axis=1))
print(json.dumps({"s": time.perf_counter() - t0, "rss_mb": HWM_EXPR}))
""".replace("HWM_EXPR", HWM)


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, nargs="+", default=[10, 60])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--probe", default="energy")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="earmark worker counts to measure")
    args = ap.parse_args()
    rows = []
    for minutes in args.minutes:
        path = long_av(minutes)
        ff = statistics.median(timed(["ffmpeg", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", "16000",
                                      "-f", "f32le", "-y", "/dev/null"]) for _ in range(args.repeat))
        ref = child(CHILD_DECODE_ALL, str(path))
        for jobs in args.jobs:
            runs = [child(CHILD_INDEX, str(path), args.probe, str(jobs)) for _ in range(args.repeat)]
            idx = statistics.median(r["index_s"] for r in runs)
            cli = statistics.median(timed([sys.executable, "-m", "earmark", "index", str(path), "--probe",
                                           args.probe, "--jobs", str(jobs), "-q"]) for _ in range(args.repeat))
            rows.append({"minutes": minutes, "jobs": jobs, "ffmpeg_s": ff, "index_s": idx, "cli_s": cli,
                         "ratio": idx / ff, "cli_ratio": cli / ff, "realtime_x": minutes * 60 / idx,
                         "rss_mb": max(r["rss_mb"] for r in runs),
                         "worker_rss_mb": max(r["worker_rss_mb"] for r in runs) if jobs > 1 else 0.0,
                         "decode_all_rss_mb": ref["rss_mb"],
                         "import_s": statistics.median(r["import_s"] for r in runs)})
    print(f"probe={args.probe}, median of {args.repeat} runs, each in a fresh process\n")
    print(f"{'length':>7} {'jobs':>4} {'ffmpeg s':>9} {'earmark s':>10} {'ratio':>6} {'CLI s':>6} {'CLI ratio':>9} "
          f"{'realtime':>9} {'peak RSS':>9} {'worker RSS':>10} {'decode-all RSS':>14}")
    for r in rows:
        print(f"{r['minutes']:>5}min {r['jobs']:>4} {r['ffmpeg_s']:>9.2f} {r['index_s']:>10.2f} {r['ratio']:>6.2f} "
              f"{r['cli_s']:>6.2f} {r['cli_ratio']:>9.2f} {r['realtime_x']:>8.0f}x {r['rss_mb']:>7.0f}MB "
              f"{r['worker_rss_mb']:>8.0f}MB {r['decode_all_rss_mb']:>12.0f}MB")
    print("\nratio = earmark index (in-process) / ffmpeg decode to /dev/null (targets: <= 1.5, realtime >= 300x);"
          f" CLI ratio includes Python start-up (~{rows[0]['import_s']:.2f} s of imports).")
    print("peak RSS = VmHWM of the indexing process; worker RSS = largest forked worker (shares pages with it).")


if __name__ == "__main__":
    main()
