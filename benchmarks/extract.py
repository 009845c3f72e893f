"""earmark extract vs every route a user would otherwise take to the same 32 frames, measured in one run.

Generates (once, cached in benchmarks/_media/) a 10-minute 1280x720 30 fps H.264 file (x264 veryfast, B-frames,
keyframe every 250 frames, the frame number drawn into the picture) and a 60-minute one (copies of it, stream
copy), plans 32 frames (a seeded anchored plan for qwen2.5-vl: 4 anchors at high resolution, mixed sizes) and
times, each route in a fresh process:

  earmark          earmark.extract (plan-then-decode, frames at their planned sizes)
  pyav-all         PyAV decode everything, keep the frames at the planned times (what uniform loaders do)
  pyav-seek        PyAV seek + decode forward per timestamp
  ffmpeg-select    ffmpeg -vf select='eq(n,...)' to raw RGB on a pipe
  opencv           cv2.VideoCapture, CAP_PROP_POS_FRAMES + read() per timestamp
  decord           VideoReader.get_batch(frame indices)
  torchcodec       VideoDecoder(seek_mode="exact").get_frames_played_at(seconds)

Every route's frames are checked: the frame number read from each picture must be the frame whose presentation
interval holds the planned time (speed is never bought with wrong frames). Printed: wall time, CPU time (process +
children), peak RSS (VmHWM), and earmark's ratios to the best peer. Peers missing from the environment are skipped
(pip install opencv-python-headless decord torchcodec==0.13.0).

    python benchmarks/extract.py [--minutes 10 60] [--repeat 3] [--routes earmark pyav-seek ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _media import video_720p

FPS = 30
FRAMES_10MIN = 10 * 60 * FPS
HWM = "int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) / 1024"

PRELUDE = r"""
import json, math, resource, sys, time
sys.path.insert(0, BENCH_DIR)
from _media import read_frame_number as read_number
plan = json.load(open(sys.argv[2]))
times = [f["time_s"] for f in plan["frames"]]
want = [math.floor(t * FPS + 1e-6) for t in times]
t0, c0 = time.perf_counter(), time.process_time()
"""

EPILOGUE = r"""
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
cpu += sum(getattr(resource.getrusage(resource.RUSAGE_CHILDREN), f) for f in ("ru_utime", "ru_stime"))
ok = len(got) == len(want) and all(n == w % FRAMES for n, w in zip(got, want))
print(json.dumps({"wall": wall, "cpu": cpu, "rss_mb": HWM_EXPR, "ok": ok, "n": len(got),
                  "bad": [(w, n) for n, w in zip(got, want) if n != w % FRAMES][:3]}))
"""

ROUTES = {
    "earmark": r"""
import earmark
from earmark.sinks.export import read_plan
got = [read_number(f.image) for f in earmark.extract(sys.argv[1], read_plan(sys.argv[2]), check_fingerprint=False)]
""",
    "pyav-all": r"""
import av
got, j, prev = [], 0, None
with av.open(sys.argv[1]) as c:
    vs = c.streams.video[0]
    for fr in c.decode(vs):
        while j < len(times) and fr.time > times[j] + 1e-9:
            got.append(read_number(prev.to_ndarray(format="rgb24"))); j += 1
        prev = fr
    while j < len(times):
        got.append(read_number(prev.to_ndarray(format="rgb24"))); j += 1
""",
    "pyav-seek": r"""
import av
got = []
with av.open(sys.argv[1]) as c:
    vs = c.streams.video[0]
    for t in times:
        c.seek(int(t / vs.time_base), stream=vs)
        prev = None
        for fr in c.decode(vs):
            if fr.time > t + 1e-9:
                break
            prev = fr
        got.append(read_number((prev or fr).to_ndarray(format="rgb24")))
""",
    "ffmpeg-select": r"""
import subprocess, numpy as np
expr = "+".join(f"eq(n,{w})" for w in want)
raw = subprocess.run(["ffmpeg", "-v", "error", "-i", sys.argv[1], "-vf", f"select='{expr}'", "-vsync", "0",
                      "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
imgs = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 720, 1280, 3)
got = [read_number(im) for im in imgs]
""",
    "opencv": r"""
import cv2
cap = cv2.VideoCapture(sys.argv[1])
got = []
for w in want:
    cap.set(cv2.CAP_PROP_POS_FRAMES, w)
    ok, bgr = cap.read()
    got.append(read_number(bgr[:, :, ::-1]))
""",
    "decord": r"""
import decord
vr = decord.VideoReader(sys.argv[1])
got = [read_number(im) for im in vr.get_batch(want).asnumpy()]
""",
    "torchcodec": r"""
from torchcodec.decoders import VideoDecoder
d = VideoDecoder(sys.argv[1], seek_mode="exact")
batch = d.get_frames_played_at(seconds=times)
got = [read_number(im.permute(1, 2, 0).numpy()) for im in batch.data]
""",
}

AVAILABLE = {"opencv": "cv2", "decord": "decord", "torchcodec": "torchcodec.decoders"}


def script(route: str) -> str:
    pre = PRELUDE.replace("BENCH_DIR", repr(str(Path(__file__).parent))).replace("FPS", str(FPS))
    return pre + ROUTES[route] + EPILOGUE.replace("HWM_EXPR", HWM).replace("FRAMES", str(FRAMES_10MIN))


def available(route: str) -> bool:
    mod = AVAILABLE.get(route)
    if mod is None:
        return True
    return subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True).returncode == 0


def make_plan(path: Path, out: Path) -> dict:
    """A 32-frame anchored plan for qwen2.5-vl with 4 seeded anchors (the file has no audio to index)."""
    import numpy as np

    from earmark.budget.costs import cost_model
    from earmark.budget.planner import plan_frames
    from earmark.media.container import info
    from earmark.sinks.export import write_plan
    from earmark.types import Anchor, Plan, PlanVideo

    vi = info(path)
    d = vi.duration_s
    rng = np.random.default_rng(7)
    anchors = [Anchor(i, float(t), float(t) - 0.5, float(t) + 0.5, 5.0 - i, 1.0)
               for i, t in enumerate(sorted(rng.uniform(5, d - 5, 4)))]
    target, frames, used, _ = plan_frames(cost_model("qwen2.5-vl"), d, 1280, 720, 32 * 300, "anchored", anchors,
                                              frames=32)
    plan = Plan(PlanVideo(str(path), vi.fingerprint, d, 1280, 720), "qwen2.5-vl", "anchored", 32 * 300, target,
                tuple(frames), tuple(used), fit="stretch")
    write_plan(plan, out)
    return {"sizes": sorted({f"{f.width}x{f.height}" for f in frames}), "tokens": plan.total_tokens}


def run(route: str, path: Path, plan: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", script(route), str(path), str(plan)], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, nargs="+", default=[10, 60])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--routes", nargs="+", default=list(ROUTES), choices=list(ROUTES))
    ap.add_argument("--slow-once", action="store_true", default=True,
                    help="run the decode-everything routes (pyav-all, ffmpeg-select) once, not --repeat times")
    args = ap.parse_args()
    routes = [r for r in args.routes if available(r)]
    skipped = sorted(set(args.routes) - set(routes))
    tmp = Path(tempfile.mkdtemp())
    for minutes in args.minutes:
        path = video_720p(minutes)
        plan_path = tmp / f"plan_{minutes}.json"
        desc = make_plan(path, plan_path)
        print(f"\n{minutes} min 1280x720 30 fps H.264, 32 frames ({desc['tokens']} tokens; sizes "
              f"{', '.join(desc['sizes'])}), median of {args.repeat} fresh processes")
        print(f"{'route':>14} {'wall s':>7} {'CPU s':>7} {'peak RSS':>9} {'frames':>7}")
        res = {}
        for route in routes:
            n = 1 if args.slow_once and route in ("pyav-all", "ffmpeg-select") else args.repeat
            runs = [run(route, path, plan_path) for _ in range(n)]
            if any("error" in r for r in runs):
                print(f"{route:>14}  failed: {next(r['error'] for r in runs if 'error' in r)}")
                continue
            r = {"wall": statistics.median(x["wall"] for x in runs), "cpu": statistics.median(x["cpu"] for x in runs),
                 "rss_mb": max(x["rss_mb"] for x in runs), "ok": all(x["ok"] for x in runs), "n": runs[0]["n"]}
            res[route] = r
            check = "exact" if r["ok"] else f"WRONG {runs[0]['bad']}"
            print(f"{route:>14} {r['wall']:>7.2f} {r['cpu']:>7.2f} {r['rss_mb']:>7.0f}MB {r['n']:>4} {check}")
        peers = {k: v for k, v in res.items() if k != "earmark" and v["ok"]}
        if "earmark" in res and peers:
            best_wall = min(peers, key=lambda k: peers[k]["wall"])
            best_cpu = min(peers, key=lambda k: peers[k]["cpu"])
            e = res["earmark"]
            print(f"earmark / best peer: wall {e['wall'] / peers[best_wall]['wall']:.2f} ({best_wall}), "
                  f"CPU {e['cpu'] / peers[best_cpu]['cpu']:.2f} ({best_cpu})  [target <= 0.6]")
    if skipped:
        print(f"\nnot installed, skipped: {', '.join(skipped)}")


if __name__ == "__main__":
    main()
