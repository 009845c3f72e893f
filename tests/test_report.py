"""HTML reports, checked in a real browser (headless Debian Chromium through playwright)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from earmark.cli import main
from earmark.demo import DEMO_EVENTS, run_demo
from earmark.media.write import VideoSpec, write_media
from earmark.report.html import curve_points, thumb_height, x_of
from earmark.synth import Event, mix


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"))


def test_view_arithmetic():
    assert x_of(0, 30) == 48 and x_of(30, 30) == 952 and x_of(15, 30) == 500
    pts = curve_points([0.0, 1.0, 2.0], 1.0, [0.0, 5.0, float("nan")], 3.0)
    assert [p["t"] for p in pts] == [0.5, 1.5, 2.5] and pts[1]["y"] < pts[0]["y"] and pts[2]["score"] is None
    assert thumb_height(784, 784) == 96 and thumb_height(49, 784) < thumb_height(196, 784) < 96


def test_demo_timeline_in_chromium(demo, page, tmp_path):
    report = demo.video.parent / "report.html"
    plan = demo.plans["vit-p16"]
    page.goto(report.as_uri())
    assert page.locator("image.thumb").count() == len(plan.frames) == 30
    assert page.locator("line.plan-anchor").count() == len(plan.anchors) == len(DEMO_EVENTS)
    assert page.locator("g.curve").count() == 3
    assert page.locator("rect.truth").count() == len(DEMO_EVENTS)
    assert page.locator("#spent").inner_text() == str(plan.total_tokens)
    # click an anchor frame: the full-size picture opens, at its planned size
    first = page.locator("image.thumb.anchor-frame").first
    first.dispatch_event("click")
    assert page.locator("#viewer").is_visible()
    size = page.evaluate("() => [document.getElementById('full').naturalWidth, "
                         "document.getElementById('full').naturalHeight]")
    clicked = plan.frames[int(first.evaluate("e => e.parentNode.dataset.i"))]
    assert clicked.role == "anchor" and size == [clicked.width, clicked.height]
    assert "tokens" in page.locator("#full-label").inner_text()
    page.keyboard.press("Escape")
    assert not page.locator("#viewer").is_visible()
    # keyboard: step through anchors
    page.keyboard.press("ArrowRight")
    assert page.locator("#status").inner_text() == f"anchor 1 of 4 at {plan.anchors[0].time_s:.2f} s"
    page.keyboard.press("ArrowLeft")
    assert page.locator("#status").inner_text().startswith("anchor 4 of 4")
    assert page.locator("line.anchor.current").count() >= 1
    # hover a point of the curve: time and score
    page.locator("circle.pt").nth(4).hover()
    assert re.match(r"energy: t=4\.5 s, score=-?\d", page.locator("#tip").inner_text())
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
    assert page.problems == []


def test_report_escapes_file_names(tmp_path, page):
    name = "<script>alert(1)</script>.mp4"  # '/' makes it a folder '<script>alert(1)<' and a file 'script>.mp4'
    video = write_media(tmp_path / name, 6.0, mix(6.0, [Event("tone", 2.0, 3.0)], sr=16000, seed=2), 16000,
                        video=VideoSpec(width=64, height=48, fps=10))
    out = tmp_path / "r.html"
    assert main(["report", str(video), "--probe", "energy", "--truth", "2:3", "--out", str(out)]) == 0
    html = out.read_text()
    assert "<script>alert(1)<" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in html
    page.goto(out.as_uri())
    assert page.locator(".sub").inner_text().startswith(str(video))  # shown as text, never run
    assert page.locator("h1").inner_text() == video.name
    assert page.problems == []


def test_report_with_assets_dir(demo, tmp_path):
    out = tmp_path / "page.html"
    idx = demo.video.parent / "index.energy.json"
    plan = demo.video.parent / "plan.qwen2.5-vl.json"
    assert main(["report", str(idx), "--plan", str(plan), "--out", str(out), "--assets-dir",
                 str(tmp_path / "assets")]) == 0
    html = out.read_text()
    assert "data:image" not in html and 'href="assets/thumb0000.jpg"' in html
    frames = sorted((tmp_path / "assets").glob("frame*.png"))
    assert len(frames) == len(demo.plans["qwen2.5-vl"].frames)


def test_report_bad_input(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "r.html")]) == 1
    assert "missing.mp4" in capsys.readouterr().err
    (tmp_path / "results").mkdir()
    assert main(["report", str(tmp_path / "results")]) == 1
    assert "no results.json" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_envelope_follows_the_sound(demo):
    from earmark.report.html import envelope

    env = envelope(demo.video, 30.0, points=30)
    levels = np.array([e["h"] for e in env])
    loud = [int(e.start_s) for e in DEMO_EVENTS]
    assert levels[loud].min() > np.median(levels) + 0.1
