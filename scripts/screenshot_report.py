"""Make docs/report.png: run the demo and photograph its HTML timeline in headless Chromium.

    python scripts/screenshot_report.py

The demo is made under a relative folder name (``earmark-demo/``, inside a temporary directory we change into), so
the page, which shows the video's path as given, shows no temporary path.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from earmark.demo import run_demo

out = Path(__file__).resolve().parents[1] / "docs" / "report.png"
here = Path.cwd()
with tempfile.TemporaryDirectory() as tmp:
    os.chdir(tmp)
    try:
        result = run_demo(Path("earmark-demo"))
    finally:
        os.chdir(here)
    report = (Path(tmp) / result.video.parent / "report.html").resolve()
    chromium = shutil.which("chromium") or "chromium"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp}/profile", "--hide-scrollbars", f"--screenshot={out}",
                    "--window-size=1200,780", report.as_uri()], check=True, capture_output=True)
print(out, out.stat().st_size)
