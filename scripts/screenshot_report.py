"""Make docs/report.png: run the demo and photograph its HTML timeline in headless Chromium.

    python scripts/screenshot_report.py
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

from earmark.demo import run_demo

out = Path(__file__).resolve().parents[1] / "docs" / "report.png"
with tempfile.TemporaryDirectory() as tmp:
    result = run_demo(Path(tmp) / "demo")
    report = result.video.parent / "report.html"
    chromium = shutil.which("chromium") or "chromium"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp}/profile", "--hide-scrollbars", f"--screenshot={out}",
                    "--window-size=1060,700", report.as_uri()], check=True, capture_output=True)
print(out, out.stat().st_size)
