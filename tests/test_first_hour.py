"""What a new user meets in the first hour: plans that spend the budget on real pixels, prompts that say what
happened once per event, anchors that say where they came from, and options that either work or are refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import earmark
from conftest import SR, events_audio
from earmark.budget.costs import cost_model
from earmark.budget.planner import AUTO_FILL, auto_frame_count, plan_frames, source_levels, uniform_level
from earmark.cli import main
from earmark.media.write import VideoSpec, write_media
from earmark.sinks.prompts import audio_prompt
from earmark.types import Anchor


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def small_hd(tmp_path_factory):
    """320x180 with the test events: smaller than the sizes a large budget would buy."""
    path = tmp_path_factory.mktemp("hd") / "small.mp4"
    write_media(path, 12.0, events_audio(), SR, video=VideoSpec(width=320, height=180, fps=10.0, gop=10))
    return path


def test_tokens_buy_pixels_not_interpolation(small_hd, capsys):
    res = earmark.IndexResult(info=earmark.info(small_hd), timeline=(tl := earmark.index(small_hd)),
                              anchors=tuple(earmark.anchors(tl)), anchor_config=earmark.AnchorConfig().to_dict())
    for model in ("qwen2.5-vl", "vit-p16"):
        p = earmark.plan(res, model, 20000, "anchored", frames=8)
        assert max(f.width for f in p.frames) <= 320 and max(f.height for f in p.frames) <= 320
        if model.startswith("qwen"):
            assert max(f.height for f in p.frames) <= 180
        assert any("capped at the source picture (320x180)" in n for n in p.notes)
        big = earmark.plan(res, model, 20000, "anchored", frames=8, upscale=True)
        assert max(f.width for f in big.frames) > 320  # what the old planner did
    video = earmark.plan(res, "qwen2.5-vl-video", 20000, "anchored", frames=8)  # its smallest legal size is 420x238
    smallest = cost_model("qwen2.5-vl-video").levels(320, 180, square=False)[0]
    assert {(f.width, f.height) for f in video.frames} == {(smallest.width, smallest.height)}
    code, out, err = run(capsys, "plan", small_hd, "--model", "qwen2.5-vl", "--budget", "20000", "--frames", "8")
    assert code == 0, err
    assert "capped at the source picture" in out


def test_without_frames_the_count_spends_the_budget():
    cm = cost_model("qwen2.5-vl")
    levels = source_levels(cm.levels(1280, 720, square=False), 1280, 720, False)
    old_n = 60  # one frame per second of a 60 s clip: 60 frames of 84x56, 480 of 640 tokens
    u = uniform_level(levels, old_n, 640)
    assert old_n * levels[u].tokens == 480
    n = auto_frame_count(levels, cm.frames_per_group, 60, 640, least=6)
    target, frames, _, _ = plan_frames(cm, 60.0, 1280, 720, 640, "uniform", frames=n, upscale=False)
    assert target >= AUTO_FILL * 640 and n == 20
    assert min(frames[0].width, frames[0].height) >= 112


def test_default_plan_notes_why_it_chose_fewer_frames(small_hd):
    res = earmark.IndexResult(info=earmark.info(small_hd), timeline=(tl := earmark.index(small_hd)),
                              anchors=tuple(earmark.anchors(tl)), anchor_config=earmark.AnchorConfig().to_dict())
    p = earmark.plan(res, "qwen2.5-vl", 640, "uniform")
    one_per_window = earmark.plan(res, "qwen2.5-vl", 640, "uniform", frames=12)
    assert one_per_window.total_tokens == 540 and p.total_tokens == 600  # 10 frames of the largest size in 320x180
    assert len(p.frames) == 10 and "not one per window, 12" in p.notes[0]


def _anchor(t, lo, hi, score, source="audio"):
    return Anchor(index=int(t), time_s=t, start_s=lo, end_s=hi, score=score, confidence=0.9, source=source)


def test_prompt_says_each_event_once_and_counts_anchor_frames(small_hd):
    res = earmark.IndexResult(info=earmark.info(small_hd), timeline=(tl := earmark.index(small_hd)),
                              anchors=tuple(earmark.anchors(tl)), anchor_config=earmark.AnchorConfig().to_dict())
    p = earmark.plan(res, "vit-p16", 196 * 12, "anchored", k=2, upscale=True)
    touching = dataclasses.replace(p, anchors=(_anchor(6.5, 6.0, 7.0, 20.0), _anchor(7.5, 7.0, 8.0, 18.0)))
    text = audio_prompt(touching)
    assert text.count("A sound event") == 1
    assert "A sound event at 00:06–00:08. What in the frames near 00:06" in text
    n_anchor = sum(f.role == "anchor" for f in p.frames)
    assert text.startswith(f"{n_anchor} of the {len(p.frames)} frames were placed at moments where the audio")
    visual = dataclasses.replace(p, anchors=(_anchor(6.5, 6.0, 7.0, 20.0, "visual"),))
    assert "The picture changes at 00:06–00:07" in audio_prompt(visual) and "sound" not in audio_prompt(visual)


def test_anchors_name_their_probe_family(silent_video):
    tl = earmark.index(silent_video, probe="motion")
    got = earmark.anchors(tl, k=1)
    assert got[0].source in ("visual", "fallback")
    scores = np.zeros(len(tl))
    scores[1] = 9.0
    forced = dataclasses.replace(tl, scores=scores.astype(np.float32))
    assert [a.source for a in earmark.anchors(forced, k=1)] == ["visual"]


def test_options_that_would_do_nothing_are_refused(events_mp4, tmp_path, capsys):
    idx = tmp_path / "i.json"
    assert main(["index", str(events_mp4), "--out", str(idx), "-q"]) == 0
    code, _, err = run(capsys, "report", idx, "--probe", "flux,onset", "--out", tmp_path / "r.html")
    assert code == 1 and "--probe applies to a video" in err
    code, _, err = run(capsys, "prompt", events_mp4, "--model", "vit-p16", "--budget", "2352", "--question", "Q?",
                       "--strategy", "oracle", "--out", tmp_path / "m.json")
    assert code == 2 and "oracle" in err
    assert main(["plan", str(idx), "--model", "vit-p16", "--budget", "2352", "--upscale", "--out",
                 str(tmp_path / "p.json")]) == 0
    code, _, err = run(capsys, "prompt", events_mp4, "--plan", tmp_path / "p.json", "--budget", "100",
                       "--question", "Q?", "--out", tmp_path / "m.json")
    assert code == 1 and "already fixes the frames: drop --budget" in err
    assert not (tmp_path / "m.json").exists()


def test_plan_prompt_and_report_take_the_index_anchor_options(events_mp4, tmp_path, capsys):
    idx = tmp_path / "i.json"
    assert main(["index", str(events_mp4), "--k", "3", "--out", str(idx), "-q"]) == 0
    saved = json.loads(idx.read_text())
    assert len(saved["anchors"]) == 3
    # The index's own anchors are the plan's (not chosen a second time).
    assert main(["plan", str(idx), "--model", "vit-p16", "--budget", "2352", "--k", "3", "--upscale", "--out",
                 str(tmp_path / "p.json")]) == 0
    plan = json.loads((tmp_path / "p.json").read_text())
    assert [a["time_s"] for a in plan["anchors"]] == [a["time_s"] for a in saved["anchors"]]
    # Anchor options on a video and on an index file give the same plan.
    for source in (events_mp4, idx):
        assert main(["plan", str(source), "--model", "vit-p16", "--budget", "2352", "--k", "2", "--mode", "topk",
                     "--min-gap", "4", "--upscale", "--out", str(tmp_path / f"{source.suffix[1:]}.json")]) == 0
    a = json.loads((tmp_path / "mp4.json").read_text())
    b = json.loads((tmp_path / "json.json").read_text())
    assert [x["time_s"] for x in a["anchors"]] == [x["time_s"] for x in b["anchors"]]
    gaps = np.diff(sorted(x["time_s"] for x in a["anchors"]))
    assert len(a["anchors"]) == 2 and (gaps >= 4).all()
    # prompt accepts an index file and an existing plan; its image paths resolve from the JSON's folder.
    from earmark.sinks.vlm import read_messages

    out = tmp_path / "sub" / "m.json"
    assert main(["prompt", str(idx), "--plan", str(tmp_path / "p.json"), "--question", "What?", "--out", str(out),
                 "-q"]) == 0
    moved = tmp_path / "moved"
    (tmp_path / "sub").rename(moved)
    doc = read_messages(moved / "m.json")
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            [walk(v) for v in node.values()]
        elif isinstance(node, list):
            [walk(v) for v in node]
        elif isinstance(node, str) and node.endswith(".jpg"):
            found.append(node)

    walk(doc["messages"])
    assert len(found) == len(plan["frames"])
    assert all(f.startswith(str(moved / "m_frames")) and Path(f).is_file() for f in found)
    # A file that is not a messages document is a one-line error naming it.
    from earmark.errors import ConfigError

    for text in ("{not json", json.dumps({"kind": "earmark.plan"}), json.dumps([1, 2])):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(ConfigError, match=r"bad\.json: (cannot read|not an earmark messages document)"):
            read_messages(tmp_path / "bad.json")


def test_prompt_keeps_the_old_frames_when_it_fails(events_mp4, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["prompt", str(events_mp4), "--model", "vit-p16", "--budget", "2352", "--frames", "12", "--upscale",
                 "--question", "What?", "--out", str(out), "-q"]) == 0
    before = sorted(p.name for p in (tmp_path / "m_frames").iterdir())
    assert main(["prompt", str(events_mp4), "--model", "vit-p16", "--budget", "2352", "--frames", "8", "--upscale",
                 "--question", "What \udcff?", "--out", str(out), "-q"]) == 1  # not valid Unicode
    assert "not valid Unicode" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "m_frames").iterdir()) == before
    assert json.loads(out.read_text())["question"] == "What?"
    assert not list(tmp_path.glob(".m_frames*"))
