"""Rebuild src/earmark/eval/realstamp_classes.json from the installed Tux Paint stamps (the RealStamp class rule).

    apt-get install tuxpaint-stamps-default && python scripts/make_realstamp_classes.py

Needs the ``probes`` extra (Silero VAD). The rule is in earmark.eval.realstamp's docstring; it never reads any
accuracy, and the file records the package version it was made from.
"""

import subprocess
from pathlib import Path

from earmark._io import write_json_atomic
from earmark.eval.realstamp import STAMPS_PACKAGE, find_classes

doc = find_classes()
version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", STAMPS_PACKAGE], capture_output=True, text=True)
doc["package_version"] = version.stdout.strip() or "unknown"
out = Path(__file__).resolve().parents[1] / "src/earmark/eval/realstamp_classes.json"
write_json_atomic(out, doc)
print(out, f"{len(doc['classes'])} classes from {sum(len(c['stamps']) for c in doc['classes'])} stamps; "
      f"{len(doc['excluded'])} excluded")
