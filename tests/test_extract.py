"""Frame extraction: the planned frames, checked against ffprobe's timestamps and the number in each picture."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import earmark
from earmark.cli import main
from earmark.errors import MediaError, NoVideoStreamError
from earmark.media.frames import extract, save_frames
from earmark.media.write import VideoSpec, draw_number, read_number, write_media
from earmark.types import Plan, PlannedFrame, PlanVideo

W, H, FPS = 160, 96, 25.0
BITS = 10


def numbered(i: int, t: float) -> np.ndarray:
    img = np.zeros((H, W, 3), dtype=np.uint8)
    img[:, :, 1] = (np.arange(W) * 255 // W)[None, :]  # some texture below the number band
    img[H // 2:, : W // 4] = (200, 40, 40)  # a red block, bottom-left: shows orientation
    return draw_number(img, i, BITS)


VFR_TIMES = tuple(np.round(np.cumsum([0.0] + [0.04 if (k // 10) % 2 == 0 else 0.1 for k in range(99)]), 3))


@pytest.fixture(scope="module")
def clips(tmp_path_factory, ffmpeg) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("frames")
    bframes = write_media(d / "bframes.mp4", 6.0, None, video=VideoSpec(W, H, FPS, gop=12, bframes=2),
                          frame_fn=numbered)
    # MPEG-TS as broadcast and capture devices write it: no keyframe index, timestamps starting at 601.4 s.
    ts = d / "start600.ts"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(bframes), "-c", "copy", "-output_ts_offset", "600",
                    "-f", "mpegts", str(ts)], check=True)
    return {
        "bframes": bframes,
        "ts600": ts,
        "vfr": write_media(d / "vfr.mkv", float(VFR_TIMES[-1]) + 0.1, None,
                           video=VideoSpec(W, H, FPS, gop=10, frame_times=VFR_TIMES), frame_fn=numbered),
        "rotated": write_media(d / "rotated.mp4", 2.0, None, video=VideoSpec(W, H, FPS, gop=25, rotation=90),
                               frame_fn=numbered),
    }


def ffprobe_pts(path: Path) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=best_effort_timestamp_time", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return sorted(float(x.strip().rstrip(",")) for x in out.split() if x.strip().rstrip(","))


def plan_for(path: Path, times, width=W, height=H, fit="stretch") -> Plan:
    vi = earmark.info(path)
    frames = tuple(PlannedFrame(time_s=float(t), width=width, height=height, tokens=1) for t in times)
    return Plan(PlanVideo(str(path), vi.fingerprint, vi.duration_s, W, H), "vit-p16", "uniform", len(times),
                len(times), frames, fit=fit)


@pytest.mark.parametrize("name", ["bframes", "vfr", "ts600"])
@pytest.mark.parametrize("seek", ["auto", "sequential", "seek"])
def test_frames_match_ffprobe_timestamps_and_picture_numbers(clips, name, seek, ffmpeg):
    path = clips[name]
    pts = ffprobe_pts(path)
    origin = pts[0]
    if name == "ts600":
        assert origin > 600 and earmark.info(path).duration_s == pytest.approx(6.0, abs=0.05)
    rng = np.random.default_rng(3)
    ends = pts[-1] - origin + 0.04
    # Random times, exact frame starts and times just before the next frame starts.
    times = sorted({round(float(t), 6) for t in [*rng.uniform(0, ends, 12), pts[5] - origin, pts[40] - origin,
                                                  pts[41] - origin - 1e-3, 0.0]})
    got = list(extract(path, plan_for(path, times), seek=seek))
    assert [f.planned.time_s for f in got] == times
    for f in got:
        want = max(i for i, p in enumerate(pts) if p - origin <= f.planned.time_s + 1e-9)
        assert f.pts_s == pytest.approx(pts[want] - origin, abs=1e-6), f.planned.time_s
        assert read_number(f.image, BITS) == want, f.planned.time_s
        assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8


@pytest.mark.parametrize("name", ["bframes", "ts600"])
def test_seek_policies_give_identical_pictures(clips, name):
    path = clips[name]
    times = [0.1, 0.5, 0.52, 2.0, 4.9, 5.96]
    runs = {(s, w): [f.image.tobytes() for f in extract(path, plan_for(path, times), seek=s, workers=w)]
            for s in ("auto", "sequential", "seek") for w in (1, 2)}
    first = runs["auto", 2]
    assert all(r == first for r in runs.values())


def test_auto_decodes_each_gop_once_and_skips_the_rest(clips):
    path = clips["bframes"]
    stats_auto, stats_seq = {}, {}
    times = [0.2, 0.3, 5.0]  # two in the first GOP, one near the end
    list(extract(path, plan_for(path, times), seek="auto", stats=stats_auto))
    list(extract(path, plan_for(path, times), seek="sequential", stats=stats_seq))
    assert stats_auto["seeks"] == 1  # the first GOP is where the decoder starts; one seek for 5.0 s
    assert stats_auto["decoded"] < stats_seq["decoded"] / 2


def test_fit_policies(clips):
    path = clips["bframes"]
    pad = next(extract(path, plan_for(path, [1.0], 64, 64, fit="pad")))
    assert pad.image.shape == (64, 64, 3)
    # 160x96 into 64x64 keeps 64x38: black bars above and below, picture in the middle rows.
    assert pad.image[:12].max() == 0 and pad.image[-12:].max() == 0 and pad.image[32].max() > 0
    crop = next(extract(path, plan_for(path, [1.0], 64, 64, fit="crop")))
    assert crop.image.shape == (64, 64, 3) and crop.image[0].max() > 0 and crop.image[-1].max() > 0
    stretch = next(extract(path, plan_for(path, [1.0], 40, 24, fit="stretch")))
    assert stretch.image.shape == (24, 40, 3) and read_number(stretch.image, BITS) == 25


def test_rotation_is_applied_like_ffmpeg(clips, ffmpeg):
    path = clips["rotated"]
    vi = earmark.info(path)
    assert vi.video.rotation in (90, 270)
    # ffmpeg turns the picture upright by default: compare with its frame 10, scaled to the same size.
    raw = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-vf", "select=eq(n\\,10),scale=48:80",
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True,
                         capture_output=True).stdout
    ref = np.frombuffer(raw, dtype=np.uint8).reshape(80, 48, 3)
    frames = tuple(PlannedFrame(time_s=0.4, width=48, height=80, tokens=1) for _ in range(1))
    plan = Plan(PlanVideo(str(path), vi.fingerprint, vi.duration_s, H, W), "vit-p16", "uniform", 1, 1, frames)
    img = next(extract(path, plan)).image
    assert img.shape == ref.shape
    assert np.abs(img.astype(int) - ref.astype(int)).mean() < 12


def test_bad_plans_and_files(clips, events_mp4, tmp_path):
    path = clips["bframes"]
    other = plan_for(clips["vfr"], [1.0])
    with pytest.raises(MediaError, match="the plan was made for another file"):
        list(extract(path, other))
    late = plan_for(path, [1.0, 7.5])
    with pytest.raises(MediaError, match=r"planned frame at 7.500 s, but the video ends at 6.000 s"):
        list(extract(path, late))
    audio_only = write_media(tmp_path / "a.wav", 2.0, np.zeros(32000, np.float32), 16000, video=None)
    with pytest.raises(NoVideoStreamError, match="no video stream"):
        list(extract(audio_only, plan_for(path, [1.0])))
    out = tmp_path / "frames"
    with pytest.raises(MediaError):
        save_frames(path, late, out)
    assert not out.exists() and not list(tmp_path.glob(".frames*"))


def test_save_frames_writes_images_and_manifest_byte_identically(clips, tmp_path):
    path = clips["bframes"]
    plan = plan_for(path, [0.5, 1.0, 2.25, 4.0], 64, 48)
    a = save_frames(path, plan, tmp_path / "a")
    b = save_frames(path, plan, tmp_path / "b", seek="sequential")
    names = sorted(p.name for p in a.iterdir())
    assert names == ["00000.500000s.png", "00001.000000s.png", "00002.250000s.png", "00004.000000s.png",
                     "manifest.json"]
    for n in names:
        if n.endswith(".png"):
            assert (a / n).read_bytes() == (b / n).read_bytes()
    man = json.loads((a / "manifest.json").read_text())
    assert [r["pts_s"] for r in man["frames"]] == [0.48, 1.0, 2.24, 4.0]
    assert man["kind"] == "earmark.frames" and man["plan"]["model"] == "vit-p16"
    from PIL import Image

    assert Image.open(a / names[2]).size == (64, 48)


def test_cli_plan_then_extract(events_mp4, tmp_path, capsys):
    plan = tmp_path / "plan.json"
    assert main(["plan", str(events_mp4), "--model", "qwen2.5-vl", "--budget", "400", "--k", "2", "--out",
                 str(plan), "-q"]) == 0
    out = tmp_path / "frames"
    assert main(["extract", str(events_mp4), "--plan", str(plan), "--out", str(out), "--format", "jpg"]) == 0
    assert "wrote 12 frames" in capsys.readouterr().out
    man = json.loads((out / "manifest.json").read_text())
    p = earmark.read_plan(plan)
    assert [r["time_s"] for r in man["frames"]] == [f.time_s for f in p.frames]
    assert sum(r["tokens"] for r in man["frames"]) == p.total_tokens
    # A plan for another file, a corrupt plan: one line, exit 1, nothing written.
    (tmp_path / "bad.json").write_text('{"kind": "earmark.plan", "schema_version": 1')
    for bad, msg in [(tmp_path / "bad.json", "not valid JSON")]:
        assert main(["extract", str(events_mp4), "--plan", str(bad), "--out", str(tmp_path / "x")]) == 1
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_extract_never_deletes_a_users_folder(events_mp4, tmp_path, capsys, monkeypatch):
    """Only a folder of earmark frames with its own manifest is replaced; anything else is refused, as are the
    current folder and the folders above it; stale temporaries of a killed run are cleaned, foreign ones kept."""
    import os
    import time

    plan = tmp_path / "plan.json"
    assert main(["plan", str(events_mp4), "--model", "vit-p16", "--budget", "2352", "--frames", "12", "--upscale",
                 "--out", str(plan), "-q"]) == 0
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text("{}")  # somebody's manifest, not ours
    (app / "src" / "main.js").write_text("keep")
    assert main(["extract", str(events_mp4), "--plan", str(plan), "--out", str(app)]) == 1
    assert "holds files earmark did not write" in capsys.readouterr().err
    assert (app / "src" / "main.js").read_text() == "keep" and (app / "manifest.json").read_text() == "{}"
    ours = tmp_path / "frames"
    assert main(["extract", str(events_mp4), "--plan", str(plan), "--out", str(ours)]) == 0
    (ours / "notes.txt").write_text("mine")  # a user's file inside an earmark frames folder: no longer ours
    assert main(["extract", str(events_mp4), "--plan", str(plan), "--out", str(ours)]) == 1
    assert (ours / "notes.txt").read_text() == "mine"
    (ours / "notes.txt").unlink()
    assert main(["extract", str(events_mp4), "--plan", str(plan), "--out", str(ours)]) == 0  # ours: replaced
    capsys.readouterr()
    work = tmp_path / "work"
    (work / "deep").mkdir(parents=True)
    (work / "keep.txt").write_text("keep")
    monkeypatch.chdir(work / "deep")
    for target in (".", "..", str(work)):
        assert main(["extract", str(events_mp4), "--plan", str(plan), "--out", target]) == 1
        assert "refusing to write frames over this folder" in capsys.readouterr().err
    assert (work / "keep.txt").read_text() == "keep"
    # A killed run's temporary folder (only frame files, older than this run) goes; one with a stranger's file stays.
    stale, foreign = tmp_path / ".frames.abc123.part", tmp_path / ".frames.def456.part"
    for d, extra in ((stale, "00001.000000s.png"), (foreign, "thesis.tex")):
        d.mkdir()
        (d / extra).write_bytes(b"x")
        old = time.time() - 3600
        os.utime(d, (old, old))
    assert main(["extract", str(events_mp4), "--plan", str(plan), "--out", str(ours)]) == 0
    assert not stale.exists() and (foreign / "thesis.tex").exists()
