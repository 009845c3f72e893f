"""CLI start-up time and the peak memory of `earmark index` through the CLI, against references in the same run.

Prints, each the median of --repeat fresh processes:
  - `python -c pass` (the interpreter's own start-up: the reference)
  - `earmark --help`, `earmark info FILE`, `python -c "import earmark"`: seconds, and seconds over the reference
    (target: within 0.3 s of `python -c pass`)
  - peak RSS of `earmark index` of a long file through the CLI (the console script's `main`), beside the same
    index through the API (`earmark.index` + `earmark.anchors`) and a decode-everything reference (target: the CLI
    under 150 MB for a 1-hour file; the CLI costs no more than the API)
  - which heavy packages the CLI process loaded (none of torch, transformers, matplotlib, onnxruntime, skimage)

    python benchmarks/startup.py [--minutes 60] [--repeat 5]
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

HWM = "int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) / 1024"
HEAVY = ("torch", "transformers", "matplotlib", "onnxruntime", "skimage", "scipy", "pyarrow", "jinja2")

# The console script's own entry point, then this process's peak RSS, its largest worker's and what it imported.
CHILD_CLI = r"""
import json, resource, sys
from earmark.cli import main
rc = main(sys.argv[1:])
heavy = [m for m in HEAVY if m in sys.modules]
print(json.dumps({"rc": rc, "rss_mb": HWM_EXPR, "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                  / 1024, "heavy": heavy}), file=sys.stderr)
""".replace("HWM_EXPR", HWM).replace("HEAVY", repr(HEAVY))

CHILD_API = r"""
import json, resource, sys
import earmark
tl = earmark.index(sys.argv[1], probe="energy")
earmark.anchors(tl)
print(json.dumps({"rss_mb": HWM_EXPR, "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                  / 1024}), file=sys.stderr)
""".replace("HWM_EXPR", HWM)

CHILD_DECODE_ALL = r"""
import json, subprocess, sys
import numpy as np
cmd = ["ffmpeg", "-v", "error", "-i", sys.argv[1], "-vn", "-ac", "1", "-ar", "16000", "-f", "f32le", "-"]
x = np.frombuffer(subprocess.run(cmd, check=True, capture_output=True).stdout, dtype=np.float32)
rms = np.sqrt(np.mean(x[: len(x) // 16000 * 16000].reshape(-1, 16000) ** 2, axis=1))
print(json.dumps({"rss_mb": HWM_EXPR}), file=sys.stderr)
""".replace("HWM_EXPR", HWM)


def earmark_exe() -> str:
    exe = Path(sys.executable).with_name("earmark")
    if not exe.exists():
        sys.exit(f"{exe}: the earmark console script is missing (pip install -e . in this Python's environment)")
    return str(exe)


def timed(cmd: list[str], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def child(code: str, *args: str) -> dict:
    r = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return json.loads(r.stderr.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=60, help="Length of the file indexed for peak RSS.")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    exe = earmark_exe()
    long_file = long_av(args.minutes)
    short_file = long_av(10)

    ref = timed([sys.executable, "-c", "pass"], args.repeat)
    rows = [("python -c pass (reference)", ref)]
    for label, cmd in (("earmark --help", [exe, "--help"]),
                       ("earmark info FILE", [exe, "info", str(short_file)]),
                       ("python -c 'import earmark'", [sys.executable, "-c", "import earmark"]),
                       ("python -c 'import earmark.cli'", [sys.executable, "-c", "import earmark.cli"])):
        rows.append((label, timed(cmd, args.repeat)))
    print(f"start-up, median of {args.repeat} fresh processes\n")
    print(f"{'command':32s} {'seconds':>8s} {'over reference':>15s}")
    for label, s in rows:
        print(f"{label:32s} {s:8.3f} {s - ref:+15.3f}")

    cli = [child(CHILD_CLI, "index", str(long_file), "--probe", "energy", "-q") for _ in range(3)]
    api = [child(CHILD_API, str(long_file)) for _ in range(3)]
    dec = child(CHILD_DECODE_ALL, str(long_file))
    print(f"\npeak RSS of indexing a {args.minutes}-minute file (energy; largest of 3 runs; workers counted apart)\n")
    print(f"{'route':40s} {'peak RSS':>9s} {'worker':>8s}")
    print(f"{'earmark index (CLI main)':40s} {max(r['rss_mb'] for r in cli):7.0f}MB "
          f"{max(r['worker_rss_mb'] for r in cli):6.0f}MB")
    print(f"{'earmark.index + anchors (API)':40s} {max(r['rss_mb'] for r in api):7.0f}MB "
          f"{max(r['worker_rss_mb'] for r in api):6.0f}MB")
    print(f"{'ffmpeg -> one numpy array (decode-all)':40s} {dec['rss_mb']:7.0f}MB")
    print(f"\nheavy packages the CLI process imported: {sorted({m for r in cli for m in r['heavy']}) or 'none'}")
    print(f"CLI / API peak RSS: {max(r['rss_mb'] for r in cli) / max(r['rss_mb'] for r in api):.2f}")


if __name__ == "__main__":
    main()
