"""What a user feels: index + plan + extract of a long 720p video, beside the uniform route users take today.

Generates (once, cached in benchmarks/_media/) a 1280x720 30 fps H.264 file (x264 veryfast, 3 B-frames, keyframe
every 250 frames, the frame number drawn into the picture; ``_media.video_720p``) with an AAC 48 kHz stereo track
(``_media.long_av``'s sound), and times, each route in a fresh process, routes interleaved, ``--repeat`` rounds:

  earmark-api      earmark.index (energy) -> with_anchors -> plan(qwen2.5-vl, --budget, 64 frames) -> extract, in
                   one process; the frames stay in memory at their planned sizes
  earmark-cli      earmark index F --out I.json; earmark plan I.json --model qwen2.5-vl --budget B --frames 64
                   --out P.json; earmark extract F --plan P.json --out DIR --format jpg  (three processes)
  pyav-2fps        PyAV decodes every frame (thread_type AUTO, its fastest setting), converts the frames at 2 fps
                   to RGB and keeps 64 evenly spaced ones: the uniform loader's route (qwen-vl-utils samples at 2 fps)
  torchcodec-2fps  torchcodec VideoDecoder(seek_mode="approximate").get_frames_played_at(the 2 fps times, 64 at a
                   time), keeping 64 evenly spaced ones (skipped where torchcodec does not import)
  baseline-api     earmark-api with earmark imported from --baseline-src (an earlier commit), for before/after

Every route's kept pictures are read back: each must carry the number of the frame whose presentation interval
holds its time ("exact"). CPU = user + sys of the route's processes and their descendants. Printed: wall, CPU,
realtime factor (media seconds per wall second) and peak RSS per route, and earmark's ratios to the peers.
The peers decode the whole file, so they run ``--peer-repeat`` times (default once).

    python benchmarks/end_to_end.py [--minutes 60] [--repeat 3] [--peer-repeat 1] [--budget 16384] [--baseline-src DIR]
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
from _media import video_720p_av

FPS = 30
FRAMES_10MIN = 10 * 60 * FPS
KEEP = 64
HWM = "int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) / 1024"

PRELUDE = r"""
import json, math, sys
sys.path.insert(0, BENCH_DIR)
from _media import read_frame_number as read_number
path = sys.argv[1]
"""

# (kept pictures, their planned/sampled times) -> the check every route prints
EPILOGUE = r"""
want = [math.floor(t * FPS + 1e-6) % FRAMES for t in times]
ok = len(got) == len(want) and got == want
bad = [(w, g) for w, g in zip(want, got) if w != g][:3]
print(json.dumps({"ok": ok, "n": len(got), "rss_mb": HWM_EXPR, "bad": bad}))
"""

UNIFORM = r"""
duration = float(sys.argv[2])
sample = [i / 2 for i in range(int(duration * 2))]                  # the 2 fps times
pick = {round(i * (len(sample) - 1) / (KEEP - 1)) for i in range(KEEP)}  # 64 evenly spaced among them
times = [sample[i] for i in sorted(pick)]
"""

ROUTES = {
    "earmark-api": r"""
import earmark
vi = earmark.info(path)
res = earmark.with_anchors(vi, earmark.index(path, video_info=vi))
plan = earmark.plan(res, "qwen2.5-vl", int(sys.argv[3]), frames=KEEP)
frames = list(earmark.extract(path, plan, video_info=vi))
times = [f.planned.time_s for f in frames]
got = [read_number(f.image) for f in frames]
""",
    "pyav-2fps": UNIFORM + r"""
import av
got, kept, j = [], [], 0
with av.open(path) as c:
    vs = c.streams.video[0]
    vs.thread_type = "AUTO"
    prev = None
    for fr in c.decode(vs):
        while j < len(sample) and fr.time > sample[j] + 1e-9:  # prev is the frame shown at sample[j]
            rgb = prev.to_ndarray(format="rgb24")
            if j in pick:
                kept.append(rgb)
            j += 1
        prev = fr
    while j < len(sample):
        rgb = prev.to_ndarray(format="rgb24")
        if j in pick:
            kept.append(rgb)
        j += 1
got = [read_number(im) for im in kept]
""",
    "torchcodec-2fps": UNIFORM + r"""
from torchcodec.decoders import VideoDecoder
d = VideoDecoder(path, seek_mode="approximate")
kept = []
for a in range(0, len(sample), 64):
    batch = d.get_frames_played_at(seconds=sample[a:a + 64])
    kept += [batch.data[i - a].permute(1, 2, 0).numpy() for i in range(a, min(a + 64, len(sample))) if i in pick]
got = [read_number(im) for im in kept]
""",
}

AVAILABLE = {"torchcodec-2fps": "torchcodec.decoders"}


def script(route: str) -> str:
    pre = PRELUDE.replace("BENCH_DIR", repr(str(Path(__file__).parent)))
    body = ROUTES[route].replace("KEEP", str(KEEP))
    epi = EPILOGUE.replace("HWM_EXPR", HWM).replace("FRAMES", str(FRAMES_10MIN)).replace("FPS", str(FPS))
    return pre + body + epi.replace("FPS", str(FPS))


def available(route: str) -> bool:
    mod = AVAILABLE.get(route)
    return mod is None or subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True).returncode == 0


def measured(cmds: list[list[str]]) -> dict:
    """Run ``cmds`` one after the other: wall, CPU of them and their descendants, the last one's stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = ""
    for cmd in cmds:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "cpu": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, "out": out}


def cli_commands(path: Path, budget: int, tmp: Path) -> list[list[str]]:
    exe = [sys.executable, "-m", "earmark"]
    idx, plan, out = tmp / "index.json", tmp / "plan.json", tmp / "frames"
    return [[*exe, "index", str(path), "-q", "--out", str(idx)],
            [*exe, "plan", str(idx), "--model", "qwen2.5-vl", "--budget", str(budget), "--frames", str(KEEP), "-q",
             "--out", str(plan)],
            [*exe, "extract", str(path), "--plan", str(plan), "--out", str(out), "--format", "jpg", "-q"]]


def cli_check(tmp: Path) -> dict:
    """Read the CLI's frames back (names carry the planned time) and check their numbers."""
    import math

    import numpy as np
    from PIL import Image

    from _media import read_frame_number

    files = sorted((tmp / "frames").glob("*.jpg"))
    times = [float(f.name.split("s.")[0]) for f in files]
    got = [read_frame_number(np.asarray(Image.open(f).convert("RGB"))) for f in files]
    want = [math.floor(t * FPS + 1e-6) % FRAMES_10MIN for t in times]
    return {"ok": len(files) == KEEP and got == want, "n": len(files), "rss_mb": float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peer-repeat", type=int, default=1)
    ap.add_argument("--budget", type=int, default=16384, help="Qwen2.5-VL visual tokens for the 64 frames")
    ap.add_argument("--routes", nargs="+", default=["earmark-api", "earmark-cli", "pyav-2fps", "torchcodec-2fps"])
    ap.add_argument("--baseline-src", type=Path, help="also run earmark-api with earmark imported from this folder "
                    "(an earlier commit's src/: `git archive COMMIT src | tar -x -C DIR`), interleaved")
    args = ap.parse_args()
    path = video_720p_av(args.minutes)
    duration = args.minutes * 60.0
    routes = [r for r in args.routes if r == "earmark-cli" or available(r)]
    if args.baseline_src is not None and "earmark-api" in routes:
        routes.insert(routes.index("earmark-api") + 1, "baseline-api")
    skipped = [r for r in args.routes if r not in routes]
    print(f"file: {path.name} ({args.minutes} min, 1280x720 30 fps H.264 + AAC 48 kHz stereo); {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f} at start; budget {args.budget} qwen2.5-vl tokens, {KEEP} frames"
          + (f"; skipped (not installed): {', '.join(skipped)}" if skipped else ""))
    runs: dict[str, list[dict]] = {r: [] for r in routes}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(max(args.repeat, args.peer_repeat)):
            for r in routes:
                peer = r not in ("earmark-api", "earmark-cli", "baseline-api")
                if rnd >= (args.peer_repeat if peer else args.repeat):
                    continue
                if r == "earmark-cli":
                    d = Path(tmp) / f"cli{rnd}"
                    d.mkdir()
                    got = measured(cli_commands(path, args.budget, d))
                    got.update(cli_check(d))
                else:
                    env = [] if r != "baseline-api" else ["env", f"PYTHONPATH={args.baseline_src.resolve()}"]
                    code = script("earmark-api" if r == "baseline-api" else r)
                    got = measured([[*env, sys.executable, "-c", code, str(path), str(duration), str(args.budget)]])
                    got.update(json.loads(got["out"]))
                runs[r].append(got)
                print(f"  round {rnd + 1} {r:16s} wall {got['wall']:7.2f} s  CPU {got['cpu']:7.2f} s  exact "
                      f"{got['ok']} ({got['n']} frames)", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end; medians:")
    print(f"  {'route':16s} {'wall s':>8s} {'CPU s':>8s} {'realtime':>9s} {'peak RSS':>9s} {'exact':>6s}")
    med = {}
    for r, rr in runs.items():
        wall, cpu = statistics.median(x["wall"] for x in rr), statistics.median(x["cpu"] for x in rr)
        med[r] = (wall, cpu)
        rss = max(x["rss_mb"] for x in rr)
        rss_text = "-" if rss != rss else f"{rss:.0f}MB"  # the CLI's three processes: not measured
        print(f"  {r:16s} {wall:8.2f} {cpu:8.2f} {duration / wall:8.0f}x {rss_text:>9s} "
              f"{all(x['ok'] for x in rr)!s:>6s}")
    if "baseline-api" in med:
        print(f"  earmark-api / baseline-api: wall {med['earmark-api'][0] / med['baseline-api'][0]:.2f}, "
              f"CPU {med['earmark-api'][1] / med['baseline-api'][1]:.2f}")
    for ours in ("earmark-api", "earmark-cli"):
        for peer in ("pyav-2fps", "torchcodec-2fps"):
            if ours in med and peer in med:
                print(f"  {ours} vs {peer}: {med[peer][0] / med[ours][0]:.1f}x less wall, "
                      f"{med[peer][1] / med[ours][1]:.1f}x less CPU")


if __name__ == "__main__":
    main()
