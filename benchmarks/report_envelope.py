"""Memory of the report's audio envelope on a long file: streamed (what `earmark report` runs) against the
whole decoded track held at once (the previous implementation), each in a fresh process, in the same run.

    .venv/bin/python benchmarks/report_envelope.py [--minutes 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _media import long_av

CHILD = r"""
import json, resource, sys, time
import numpy as np
from earmark.media import info, stream_audio
from earmark.report.html import envelope
path, how = sys.argv[1], sys.argv[2]
vi = info(path)
t0 = time.perf_counter()
if how == "streamed":
    pts = envelope(path, vi.duration_s)
else:  # the reference: the whole track in memory, then the same bins
    x = np.concatenate([np.zeros(0, np.float32), *stream_audio(vi)])
    pts = len(x)
print(json.dumps({"s": time.perf_counter() - t0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(path: Path, how: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), how], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=30)
    args = ap.parse_args()
    path = long_av(args.minutes)
    ref, new = run(path, "whole"), run(path, "streamed")
    print(f"{args.minutes} min file: whole track {ref['rss_mb']:.0f} MB peak RSS ({ref['s']:.1f} s); "
          f"streamed envelope {new['rss_mb']:.0f} MB ({new['s']:.1f} s); "
          f"memory ratio {ref['rss_mb'] / new['rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
