"""earmark index: CPU and wall time against the ffmpeg floor on the same file, measured in the same run (issue 22).

Generates (once, cached in benchmarks/_media/) a file of the shape a corpus holds: 640x360 25 fps H.264 + AAC
48 kHz stereo (``_media.long_av_360p``; ``--small-picture`` uses the older 64x36 5 fps file), and runs each route
in a fresh process, the routes interleaved, ``--repeat`` rounds:

  floor        ffmpeg -i F -vn -ac 1 -ar 16000 -f f32le -y /dev/null   (decode, downmix, resample: Debian's ffmpeg)
  api jobs=J   python -c "earmark.index(F, probe=P, jobs=J)"           (Python start-up and imports included)
  cli          earmark index F --probe P -q --out X.json                (default jobs: one per usable CPU)
  baseline     the api route with earmark imported from --baseline-src (an earlier commit's src/), for before/after

CPU = user + sys of the process and of every process it started (``RUSAGE_CHILDREN`` around it), so segment
workers count. Printed: the median CPU and wall of each route, CPU / floor CPU (targets: energy <= 1.3, flux and
onset <= 2), CPU seconds per media hour, and the peak RSS (VmHWM) of the API process and of its largest worker.
Wall times depend on what else the machine runs; CPU times much less (both are printed with the load average).

``--stages`` attributes one process's CPU to the pipeline's stages, each timed alone on the same file (jobs=1):
Python start-up and imports, ``info``, one container open, demux, decode, resampling per decoded frame (the route
before 2026-12-06) and per 64k-sample block (now), the streamed decode, the probe's math, the segmented index.

    python benchmarks/index_speed.py [--minutes 60] [--repeat 3] [--probes energy flux onset] [--jobs 1 2] [--stages]
                                     [--baseline-src DIR/src]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _media import long_av, long_av_360p

HWM = "int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) / 1024"

CHILD_INDEX = r"""
import json, resource, sys
import earmark
tl = earmark.index(sys.argv[1], probe=sys.argv[2], jobs=int(sys.argv[3]))
print(json.dumps({"windows": len(tl), "rss_mb": HWM_EXPR,
                  "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
""".replace("HWM_EXPR", HWM)


def measured(cmd: list[str]) -> dict:
    """Run ``cmd``; its wall time, the CPU of it and its descendants, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "out": out}


def routes(path: Path, probe: str, jobs: list[int], out_json: Path, baseline: Path | None = None
           ) -> dict[str, list[str]]:
    r = {"floor (ffmpeg)": ["ffmpeg", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", "16000", "-f",
                            "f32le", "-y", "/dev/null"]}
    for j in jobs:
        r[f"api jobs={j}"] = [sys.executable, "-c", CHILD_INDEX, str(path), probe, str(j)]
        if baseline is not None:  # the same call with earmark imported from another source tree
            r[f"baseline api jobs={j}"] = ["env", f"PYTHONPATH={baseline}", *r[f"api jobs={j}"]]
    r["cli (default jobs)"] = [sys.executable, "-m", "earmark", "index", str(path), "--probe", probe, "-q", "--out",
                               str(out_json)]
    return r


def compare(path: Path, minutes: float, probes: list[str], jobs: list[int], repeat: int,
            baseline: Path | None = None) -> None:
    print(f"file: {path.name} ({minutes:g} min); {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at "
          f"start; median of {repeat} interleaved rounds, each route in a fresh process\n")
    target = {"energy": 1.3}
    with tempfile.TemporaryDirectory() as tmp:
        for probe in probes:
            rs = routes(path, probe, jobs, Path(tmp) / "index.json", baseline)
            runs: dict[str, list[dict]] = {name: [] for name in rs}
            for _ in range(repeat):
                for name, cmd in rs.items():
                    runs[name].append(measured(cmd))
            floor_cpu = statistics.median(r["cpu"] for r in runs["floor (ffmpeg)"])
            print(f"probe={probe} (target: CPU <= {target.get(probe, 2.0):g}x the floor's)  load average "
                  f"{os.getloadavg()[0]:.2f} at the end")
            print(f"  {'route':20s} {'wall s':>7s} {'CPU s':>7s} {'CPU/floor':>9s} {'CPU s per media h':>18s} "
                  f"{'peak RSS':>9s} {'worker RSS':>10s}")
            for name, rr in runs.items():
                cpu = statistics.median(r["cpu"] for r in rr)
                wall = statistics.median(r["wall"] for r in rr)
                mem = [json.loads(r["out"]) for r in rr] if "api" in name else []
                rss = f"{max(m['rss_mb'] for m in mem):7.0f}MB" if mem else ""
                wrss = (f"{max(m['worker_rss_mb'] for m in mem):8.0f}MB" if mem and not name.endswith("=1")
                        else "")
                print(f"  {name:20s} {wall:7.2f} {cpu:7.2f} {cpu / floor_cpu:9.2f} {cpu * 60 / minutes:18.2f} "
                      f"{rss:>9s} {wrss:>10s}")
            print()


STAGES = r"""
import json, sys, time
t0 = time.process_time()
import av, numpy as np
import earmark
from earmark._io import one_blas_thread
from earmark.media import info, stream_audio
from earmark.media.container import open_container
from earmark.probes import get_probe
from earmark.probes.base import frame_count, window_grid
path, probe, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {"imports (av, numpy, earmark)": time.process_time() - t0}

def best(fn):
    times = []
    for _ in range(reps):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return sorted(times)[len(times) // 2]

def opened():
    c = open_container(path)
    s = c.streams.audio[0]
    for o in c.streams:
        if o.index != s.index:
            o.discard = av.stream.Discard.all
    return c, s

def demux():
    c, s = opened()
    for p in c.demux(s):
        pass

def decode():
    c, s = opened()
    for p in c.demux(s):
        p.decode()

def resample_per_frame():
    c, s = opened()
    r = av.AudioResampler(format="flt", layout="mono", rate=16000)
    for p in c.demux(s):
        for f in p.decode():
            for o in r.resample(f):
                np.frombuffer(o.planes[0], np.float32, o.samples)

vi = info(path)
out["info()"] = best(lambda: info(path))
n_open = 10
out["one container open"] = best(lambda: [open_container(path).close() for _ in range(n_open)]) / n_open
out["demux (audio packets)"] = best(demux)
out["demux + decode"] = best(decode)
out["demux + decode + resample per frame (before)"] = best(resample_per_frame)
out["stream_audio: + resample per 64k block (now)"] = best(lambda: sum(len(c) for c in stream_audio(vi)))
chunks = list(stream_audio(vi))
grid = window_grid(vi.duration_s, 1.0, 1.0)
with one_blas_thread():
    out[f"{probe} probe math (frames and windows)"] = best(
        lambda: get_probe(probe).window_values(get_probe(probe).frame_values_stream(iter(chunks), frame_count(grid)),
                                               grid))
del chunks
out["index, jobs=1, one pass (no segments)"] = best(lambda: earmark.index(path, probe=probe, jobs=1, video_info=vi,
                                                                           segment_s=1e12))
out["index, jobs=1, 5-minute segments (default)"] = best(lambda: earmark.index(path, probe=probe, jobs=1,
                                                                               video_info=vi))
print(json.dumps(out))
"""


def stages(path: Path, minutes: float, probe: str, repeat: int) -> None:
    bare = statistics.median(measured([sys.executable, "-c", "pass"])["cpu"] for _ in range(3))
    got = json.loads(subprocess.run([sys.executable, "-c", STAGES, str(path), probe, str(repeat)], check=True,
                                    capture_output=True, text=True).stdout)
    floor = statistics.median(measured(routes(path, probe, [], Path("/dev/null"))["floor (ffmpeg)"])["cpu"]
                              for _ in range(repeat))
    print(f"stages of one process (jobs=1), CPU s, median of {repeat}; file {path.name} ({minutes:g} min); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"  {'python start-up (python -c pass)':52s} {bare:6.2f}")
    for name, cpu in got.items():
        print(f"  {name:52s} {cpu:6.2f}")
    print(f"  {'floor: ffmpeg -ac 1 -ar 16000 to /dev/null':52s} {floor:6.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--probes", nargs="+", default=["energy", "flux", "onset"])
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="earmark worker counts for the API route")
    ap.add_argument("--small-picture", action="store_true", help="the 64x36 5 fps file of earlier measurements")
    ap.add_argument("--stages", action="store_true", help="attribute the CPU to the pipeline's stages instead")
    ap.add_argument("--baseline-src", type=Path, help="also run the API route with earmark from this folder (its "
                    "src/, e.g. from `git archive COMMIT src | tar -x -C DIR`), interleaved with the others")
    args = ap.parse_args()
    path = long_av(args.minutes) if args.small_picture else long_av_360p(args.minutes)
    if args.stages:
        for probe in args.probes:
            stages(path, args.minutes, probe, args.repeat)
    else:
        compare(path, args.minutes, args.probes, args.jobs, args.repeat,
                args.baseline_src.resolve() if args.baseline_src else None)


if __name__ == "__main__":
    main()
