"""HTML reports, checked in a real browser (headless Debian Chromium through playwright)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from earmark.cli import main
from earmark.demo import DEMO_EVENTS, run_demo
from earmark.media.write import VideoSpec, write_media
from earmark.report.html import (
    COLOURS,
    TRUTH_COLOUR,
    curve_points,
    frame_box,
    pack_frames,
    script_json,
    thumb_height,
    x_of,
    z_ticks,
)
from earmark.synth import Event, mix


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"))


def test_view_arithmetic():
    assert x_of(0, 30) == 64 and x_of(30, 30) == 976 and x_of(15, 30) == 520 and x_of(30, 30, width=1800) == 1776
    pts = curve_points([0.0, 1.0, 2.0], 1.0, [0.0, 5.0, float("nan")], 3.0)
    assert [p["t"] for p in pts] == [0.5, 1.5, 2.5] and pts[1]["y"] < pts[0]["y"] and pts[2]["score"] is None
    assert thumb_height(784, 784) == 96 and thumb_height(49, 784) < thumb_height(196, 784) < 96
    assert frame_box(644, 364, 70) == (70, 39.6) and frame_box(448, 448, 50) == (50, 50)


def test_z_ticks_are_round_and_on_the_curve_scale():
    scores = [-0.47, 0.0, 3.0, 21.8]
    ticks = z_ticks(scores)
    assert [t["v"] for t in ticks] == [0, 10, 20] and [t["label"] for t in ticks] == ["0", "10", "20"]
    ys = {p["score"]: p["y"] for p in curve_points([0, 1, 2, 3], 1.0, scores, 4.0)}
    assert ticks[0]["y"] == ys[0.0] and ticks[0]["y"] > ticks[1]["y"] > ticks[2]["y"]  # up = higher z
    assert [t["label"] for t in z_ticks([-1.3, 0.4])] == ["\u22121.0", "\u22120.5", "0.0"]
    assert len(z_ticks([2.0, 2.0])) >= 2  # a flat curve still gets a scale


def test_thumbnail_lanes_never_overlap():
    frames = [{"t": t + 0.5, "w": 644 if t % 7 == 3 else 168, "h": 364 if t % 7 == 3 else 84,
               "side": 96 if t % 7 == 3 else 40, "role": "anchor" if t % 7 == 3 else "context",
               "label": "644×364 · 299 tok" if t % 7 == 3 else ""} for t in range(40)]
    for width in (640, 1000, 1800):
        height = pack_frames(frames, 40.0, width)
        boxes = [(f["x"], f["y"], f["x"] + f["bw"], f["y"] + f["bh"]) for f in frames]
        assert not _overlaps(boxes) and max(b[3] for b in boxes) < height
        anchors = [f for f in frames if f["role"] == "anchor"]
        assert max(f["y"] + f["bh"] for f in anchors) < min(f["y"] for f in frames if f["role"] != "anchor")


def test_script_json_cannot_end_the_script():
    evil = {"s": "</script><script>alert(1)</script><!-- & \u2028\u2029 >"}
    text = script_json(evil)
    assert not any(ch in text for ch in "<>&\u2028\u2029") and json.loads(text) == evil


def _overlaps(boxes):
    """Pairs of (x0, y0, x1, y1) boxes that intersect (touching edges do not count)."""
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]]


def _show_at(page, report, width):
    """Open ``report`` in a window ``width`` px wide and wait until the chart has been drawn at that width."""
    page.set_viewport_size({"width": width, "height": 900})
    if page.url != report.as_uri():
        page.goto(report.as_uri())
    page.wait_for_function("() => +document.getElementById('timeline').getAttribute('width') === "
                           "Math.max(640, Math.floor(document.getElementById('chart').clientWidth))")


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
    assert re.match(r"energy: t=4\.5 s, z-score=-?\d", page.locator("#tip").inner_text())
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
    assert page.problems == []


def test_thumbnails_do_not_overlap_in_chromium(demo, page):
    """Every thumbnail (and every frame label) is drawn, visible and clear of all the others, at any width."""
    report = demo.video.parent / "report.html"
    for width in (1000, 1800, 700):
        _show_at(page, report, width)
        thumbs = page.eval_on_selector_all("image.thumb", "els => els.map(e => { const r = e.getBoundingClientRect();"
                                           " return [r.left, r.top, r.right, r.bottom]; })")
        labels = page.eval_on_selector_all("text.frame-label", "els => els.map(e => { const r = "
                                           "e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })")
        chart = page.eval_on_selector("#timeline", "e => { const r = e.getBoundingClientRect(); "
                                      "return [r.left, r.top, r.right, r.bottom]; }")
        assert len(thumbs) == 30 and len(labels) == 4
        for b in thumbs:
            assert b[2] - b[0] >= 8 and b[3] - b[1] >= 4, (width, b)  # visible, not collapsed
            assert chart[0] <= b[0] and b[2] <= chart[2] and chart[1] <= b[1] and b[3] <= chart[3], (width, b)
        assert _overlaps(thumbs + labels) == [], width
        assert page.locator("image.thumb").first.is_visible()
    assert page.problems == []


def test_truth_has_its_own_colour_and_a_legend(demo, page):
    _show_at(page, demo.video.parent / "report.html", 1100)
    fill = page.eval_on_selector_all("rect.truth", "els => [...new Set(els.map(e => getComputedStyle(e).fill))]")
    strokes = page.eval_on_selector_all("g.curve polyline", "els => els.map(e => getComputedStyle(e).stroke)")
    assert len(fill) == 1 and len(strokes) == 3 and fill[0] not in strokes
    assert TRUTH_COLOUR.lower() not in [c.lower() for c in COLOURS]
    key = page.locator("#truth-key")
    assert "truth" in key.inner_text()
    assert key.locator(".swatch").evaluate("e => getComputedStyle(e).backgroundColor") == fill[0]


def test_curves_have_a_z_score_axis(demo, page):
    _show_at(page, demo.video.parent / "report.html", 1100)
    for probe in ("energy", "flux", "onset"):
        curve = page.locator(f"g.curve[data-probe={probe}]")
        assert "z-score" in curve.locator("text.probe-label").text_content()
        ticks = curve.locator("text.ytick").evaluate_all(
            "els => els.map(e => [e.textContent, e.getBoundingClientRect().top])")
        values = [float(t.replace("\u2212", "-")) for t, _ in ticks]
        assert len(ticks) >= 2 and 0.0 in values, probe
        assert [y for _, y in sorted(zip(values, (y for _, y in ticks)))] == sorted((y for _, y in ticks),
                                                                                    reverse=True)
        assert curve.locator("line.yaxis").count() == 1


def test_frame_sizes_read_width_by_height(demo, page):
    plan = demo.plans["qwen2.5-vl"]
    _show_at(page, demo.video.parent / "report.qwen2.5-vl.html", 1100)
    labels = page.locator("text.frame-label").all_text_contents()
    assert labels == [f"{f.width}×{f.height} · {f.tokens} tok" for f in plan.frames if f.role == "anchor"]
    assert len(labels) == len(plan.anchors) and all(re.fullmatch(r"\d+×\d+ · \d+ tok", t) for t in labels)
    assert " px" not in page.locator("#timeline").text_content()
    titles = page.eval_on_selector_all("image.thumb title", "els => els.map(e => e.textContent)")
    assert all(re.search(r" · \d+×\d+ · \d+ tokens", t) for t in titles)
    page.locator("image.thumb").first.dispatch_event("click")
    assert f" · {plan.frames[0].width}×{plan.frames[0].height} · " in page.locator("#full-label").inner_text()
    vit = demo.video.parent / "report.html"
    _show_at(page, vit, 1100)
    f = next(f for f in demo.plans["vit-p16"].frames if f.role == "anchor")
    assert f"{f.width}×{f.height} · {f.tokens} tok" in page.locator("text.frame-label").all_text_contents()


def test_chart_fills_the_window_and_redraws(demo, page):
    report = demo.video.parent / "report.html"
    sizes = {}
    for width in (1000, 1800):
        _show_at(page, report, width)
        sizes[width] = page.evaluate("""() => {
            const svg = document.getElementById('timeline'), ticks = [...svg.querySelectorAll('#axis text.tick')];
            return {svg: svg.getBoundingClientRect().width, body: document.body.clientWidth,
                    last: ticks[ticks.length - 1].getBoundingClientRect().left,
                    thumb: Math.min(...[...svg.querySelectorAll('image.thumb')].map(
                        e => e.getBoundingClientRect().width))};
        }""")
    small, wide = sizes[1000], sizes[1800]
    assert abs(small["svg"] - small["body"]) <= 1 and abs(wide["svg"] - wide["body"]) <= 1  # fills the width
    assert wide["svg"] - small["svg"] >= 790 and wide["last"] - small["last"] >= 700  # the time axis stretches
    assert wide["thumb"] > small["thumb"]  # more room, bigger pictures
    assert page.problems == []


def test_eval_record_page_redraws(tmp_path, page):
    from earmark.report.html import record_view

    rec = {"video_id": "clip-01", "path": "clips/clip-01.mp4", "category": "dog", "event": [3, 6],
           "labels": [0, 0, 0, 1, 1, 1, 0, 0, 0, 0], "label_names": ["background", "dog"],
           "index": {"energy": {"scores": [0, 0.2, 0.1, 5, 9, 4, 0, -0.3, 0.1, 0], "anchors": [4.5]}},
           "plans": {"uniform": {"frames": [[i + 0.5, 224, 196] for i in range(10)], "anchors": []},
                     "anchored": {"frames": [[i + 0.5, 448 if i == 4 else 160, 784 if i == 4 else 100, 448 if i == 4
                                              else 160] for i in range(10)], "anchors": [4.5]}},
           "strategies": {"uniform": {"accuracy": 0.6, "predictions": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]},
                          "anchored": {"accuracy": 0.8, "predictions": [0, 0, 0, 1, 1, 0, 0, 0, 0, 0]}}}
    from earmark.report.html import _env, page_data

    view = record_view(rec)
    out = tmp_path / "clip-01.html"
    out.write_text(_env().get_template("timeline.html.j2").render(v=view, data=page_data(view), back="../index.html"))
    _show_at(page, out, 1000)
    narrow = page.eval_on_selector_all("rect.cell", "els => els.map(e => e.getBoundingClientRect().width)")
    titles = page.eval_on_selector_all("rect.cell title", "els => els.map(e => e.textContent)")
    assert "224 px wide" in titles[0] and any("448×448" in t for t in titles)
    assert page.locator("text.ytick").count() >= 2
    _show_at(page, out, 1800)
    wide = page.eval_on_selector_all("rect.cell", "els => els.map(e => e.getBoundingClientRect().width)")
    assert len(wide) == 20 and min(wide) > max(narrow) > 0
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


def test_report_with_a_plan_shows_the_plans_anchors_in_chromium(events_mp4, tmp_path, page):
    """The page marks the anchors the plan was made with (k=1 here), not those of the index's default K."""
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(events_mp4), "--model", "vit-p16", "--budget", "1000", "--k", "1", "--mode", "topk",
                 "--out", str(plan_file), "-q"]) == 0
    plan = json.loads(plan_file.read_text())
    times = [a["time_s"] for a in plan["anchors"]]
    assert len(times) == 1
    out = tmp_path / "r.html"
    assert main(["report", str(events_mp4), "--plan", str(plan_file), "--out", str(out)]) == 0
    page.goto(out.as_uri())
    shown = page.eval_on_selector_all("line.plan-anchor", "els => els.map(e => +e.dataset.t)")
    curves = page.eval_on_selector_all("g.curve", "gs => Object.fromEntries(gs.map(g => [g.dataset.probe, "
                                       "[...g.querySelectorAll('line.anchor')].map(e => +e.dataset.t)]))")
    assert shown == pytest.approx(times) and curves["energy"] == pytest.approx(times)
    # The other probes' curves mark their own anchors under the plan's settings: one each (k=1), not the default.
    assert set(curves) == {"energy", "flux", "onset"} and all(len(t) == 1 for t in curves.values())
    assert page.locator("image.thumb").count() == len(plan["frames"])
    assert page.problems == []
    # A hand-edited plan whose anchor settings make no sense is a one-line error naming the plan file.
    for bad in ({"mode": "loudest"}, {"k": -1}, {"colour": "red"}):
        plan["config"]["anchor_settings"] = {**plan["config"]["anchor_settings"], **bad}
        plan_file.write_text(json.dumps(plan))
        assert main(["report", str(events_mp4), "--plan", str(plan_file), "--out", str(tmp_path / "bad.html")]) == 1
        plan["config"]["anchor_settings"] = {k: v for k, v in plan["config"]["anchor_settings"].items() if k not in bad}
    assert not (tmp_path / "bad.html").exists()


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


def test_the_envelope_is_the_rms_of_each_stretch(tmp_path):
    """Streamed in chunks (a 3-hour file no longer holds its whole track): values equal the RMS of each bin."""
    from earmark.media.write import VideoSpec, write_media
    from earmark.report.html import envelope

    sr = 48_000
    t = np.arange(4 * sr) / sr
    audio = np.where(t >= 2.0, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
    clip = write_media(tmp_path / "half.mp4", 4.0, audio, sr, video=VideoSpec(64, 64, 10.0))
    pts = envelope(clip, 4.0, points=8)
    want = (20 * np.log10(0.5 / np.sqrt(2)) + 60) / 60  # a 0.5 sine: RMS 0.354, -9 dBFS
    assert [p["t"] for p in pts] == [0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75]
    assert [p["h"] for p in pts[:3]] == [0.0, 0.0, 0.0]
    assert [p["h"] for p in pts[5:]] == pytest.approx([want] * 3, abs=0.01)


def test_hostile_labels_and_names_open_no_dialog_in_chromium(demo, page, tmp_path):
    """A truth file's labels and a video's name reach the page as text: no dialog, no script error, shown as typed."""
    evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)>\u2028"
    video = tmp_path / "a<b>&'c.mp4"
    video.write_bytes(demo.video.read_bytes())
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"events": [{"start_s": 2.0, "end_s": 3.0, "label": evil}]}))
    out = tmp_path / "r.html"
    assert main(["report", str(video), "--truth", str(truth), "--out", str(out)]) == 0
    page.goto(out.as_uri())
    page.wait_for_timeout(300)
    assert page.problems == []
    text = page.inner_text("body")
    assert "<img src=x onerror=alert(2)>" in text and "a<b>&'c.mp4" in text
