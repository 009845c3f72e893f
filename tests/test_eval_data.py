"""Eval datasets: the AVE loader on the real label files, and the SynthAVE generator."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from earmark.errors import ConfigError
from earmark.eval.datasets import DatasetError, load_ave, parse_rows, read_rows
from earmark.eval.encoders import GaborEncoder
from earmark.eval.synthave import (
    LEGACY_SETTINGS,
    SynthConfig,
    clip_frames,
    glyph,
    make_synthave,
    plan_clips,
    sample_rows,
    split_sizes,
)
from earmark.media.write import VideoSpec, write_media

AVE_LABELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ave"
needs_labels = pytest.mark.skipif(not (AVE_LABELS / "Annotations.txt").exists(),
                                  reason="the AVE label files (../shared/data/ave) are not beside the repository")
STAND_INS = ("MH3m4AwEcRY", "VWi2ENBuTbw")  # an event in seconds 6-7, and the release's one empty-event row


@pytest.fixture(scope="module")
def ave_root(tmp_path_factory) -> Path:
    """The real AVE label files, with generated stand-in videos for a few ids (first test clip too)."""
    root = tmp_path_factory.mktemp("ave")
    for f in ("Annotations.txt", "trainSet.txt", "valSet.txt", "testSet.txt"):
        shutil.copy(AVE_LABELS / f, root / f)
    (root / "AVE").mkdir()
    ids = [*STAND_INS, read_rows(root / "testSet.txt")[0].video_id, read_rows(root / "trainSet.txt")[0].video_id]
    for vid in ids:
        write_media(root / "AVE" / f"{vid}.mp4", 10.0, np.zeros(16000 * 10, np.float32), 16000,
                    video=VideoSpec(width=64, height=64, fps=4))
    return root


@needs_labels
def test_ave_loader_reads_the_release_layout(ave_root):
    ds = load_ave(ave_root)
    assert len(ds.classes) == 28 and ds.background == 28
    assert {s: len(ds.split(s)) for s in ("train", "val", "test")} == {"train": 3339, "val": 402, "test": 402}
    assert sum(len(v) for v in ds.missing.values()) == 4143 - 4
    assert "4139 video(s)" in ds.missing_summary()
    bell = next(c for c in ds.split("train") + ds.split("val") + ds.split("test") if c.video_id == STAND_INS[0])
    assert bell.path is not None and bell.path.name == "MH3m4AwEcRY.mp4"
    idx = ds.classes.index("Church bell")
    assert bell.labels.tolist() == [28] * 6 + [idx, idx] + [28, 28]
    empty = next(c for c in ds.split("train") if c.video_id == STAND_INS[1])
    assert empty.labels.tolist() == [28] * 10  # [0, 0): no event second at all


@needs_labels
def test_ave_loader_strict_and_limit(ave_root):
    with pytest.raises(DatasetError, match=r"4139 video\(s\).*missing.*--strict"):
        load_ave(ave_root, strict=True)
    ds = load_ave(ave_root, limit={"train": 5, "test": 1})
    assert len(ds.split("train")) == 5 and len(ds.split("test")) == 1 and len(ds.split("val")) == 402


def test_video_ids_cannot_point_outside_the_dataset():
    """A video id names files the eval writes (cache, records): a path in it is a one-line error naming the line."""
    for vid in ("../../etc/evil", "/abs/path", "a/b", "..", ".hidden", "a\\b"):
        with pytest.raises(DatasetError, match=r"x.txt:2: video id .* must be a plain file name"):
            parse_rows(f"Bark&ok_id-1&good&0&10\nBark&{vid}&good&0&10\n", "x.txt")
    assert parse_rows("Bark&-0gkU5ynuoA&good&0&10\n", "x.txt")[0].video_id == "-0gkU5ynuoA"  # YouTube ids


def test_malformed_lines_name_the_line(tmp_path):
    with pytest.raises(DatasetError, match=r"x.txt:2: expected 5 fields"):
        parse_rows("Bark&a&good&0&10\nBark&b&good&3\n", "x.txt")
    with pytest.raises(DatasetError, match=r"x.txt:1: start and end must be whole seconds"):
        parse_rows("Bark&a&good&zero&10\n", "x.txt")
    with pytest.raises(DatasetError, match=r"x.txt:3: event \[4, 12\) is not inside"):
        parse_rows("Category&VideoID&Quality&StartTime&EndTime\nBark&a&good&0&10\nBark&b&good&4&12\n", "x.txt")
    with pytest.raises(DatasetError, match="dataset root not found"):
        load_ave(tmp_path / "nope")
    (tmp_path / "Annotations.txt").write_text("Bark&a&good&0&10\n")
    with pytest.raises(DatasetError, match=r"trainSet.txt: label file not found"):
        load_ave(tmp_path)


@needs_labels
def test_synthave_label_structure_is_aves():
    assert split_sizes(None) == {"train": 3339, "val": 402, "test": 402}
    real = Counter((r.category, r.start_s, r.end_s) for r in read_rows(AVE_LABELS / "testSet.txt"))
    assert Counter(sample_rows("test", 402, seed=3)) == real  # the release's exact multiset at full size
    small = sample_rows("train", 50, seed=0)
    assert len(small) == 50 and small == sample_rows("train", 50, seed=0) != sample_rows("train", 50, seed=1)
    assert split_sizes(100) == {"train": 80, "val": 10, "test": 10}


def test_synthave_folder(tmp_path):
    cfg = SynthConfig(n=6, size=224, snr_db=20.0, distractor_rate=0.0)
    root = make_synthave(tmp_path / "s", cfg, workers=1)
    ds = load_ave(root, segments=10)
    clips = [c for s in ("train", "val", "test") for c in ds.split(s)]
    assert len(clips) == 6 and all(c.path is not None for c in clips)
    import earmark

    for c in clips:
        vi = earmark.info(c.path)
        assert vi.video.width == 224 and abs(vi.duration_s - 10.0) < 0.6
        if 0 < c.row.end_s - c.row.start_s < 10:  # the loudest second is inside the event
            tl = earmark.index(c.path, probe="energy")
            assert c.row.start_s <= int(np.argmax(tl.scores)) < c.row.end_s
    first = (root / "AVE" / f"{clips[0].video_id}.mp4").read_bytes()
    with pytest.raises(DatasetError, match="other settings"):
        make_synthave(root, SynthConfig(n=6, size=224, snr_db=0.0), workers=1)
    (root / "AVE" / f"{clips[0].video_id}.mp4").unlink()
    make_synthave(root, cfg, workers=1)  # resumes: the missing clip is made again, byte for byte
    assert (root / "AVE" / f"{clips[0].video_id}.mp4").read_bytes() == first


def test_glyph_shows_only_in_event_seconds():
    cfg = SynthConfig(n=100, distractor_rate=0.0)
    spec, i = next((s, i) for s, i in plan_clips(cfg) if s.start_s >= 1 and s.end_s <= 9)
    frame = clip_frames(cfg, spec, i)
    bare = clip_frames(cfg, type(spec)(**{**spec.__dict__, "start_s": 0, "end_s": 0}), i)
    inside, before = float(spec.start_s) + 0.5, float(spec.start_s) - 0.5
    assert np.abs(frame(0, inside).astype(int) - bare(0, inside)).max() > 50
    assert np.array_equal(frame(0, before), bare(0, before))


def test_resolution_matters_for_the_glyph():
    """Two glyphs of one colour pair, different stripe orientation, at the legacy 3 px: the encoder tells them apart
    at 448 px, not at 112 px (there the stripes average away) — the gap the benchmark's anchors can recover. The
    default period range: tests/test_synthave.py."""
    from PIL import Image

    enc, period = GaborEncoder(), LEGACY_SETTINGS["stripe_period_max"]

    def tokens(cls: int, size: int) -> np.ndarray:
        canvas = np.full((448, 448, 3), 128.0)
        g, a = glyph(cls, 29, 0.0, 0.0, period)
        canvas[200:229, 200:229] = canvas[200:229, 200:229] * (1 - a) + g * a
        img = Image.fromarray(canvas.astype(np.uint8)).resize((size, size), Image.BOX)
        return enc.encode(np.asarray(img)[None]).tokens[0].max(0)

    texture = slice(0, 16)  # the two finest octaves' orientation energies
    gap = {s: np.abs(tokens(0, s) - tokens(3, s))[texture].max() for s in (112, 448)}
    assert gap[448] > 0.5 and gap[112] < 0.25 * gap[448], gap
    assert period * 112 / 448 < 2  # below two pixels per period at 112 px: past the Nyquist limit


def test_event_motion_variant_makes_events_visible_to_the_motion_probe(tmp_path):
    """``event_motion`` adds a large moving disc in event seconds only (own random stream: default frames are
    unchanged), and the cheap visual probe then finds silent events it cannot find without it."""
    cfg = SynthConfig(n=100, distractor_rate=0.0)
    moving = SynthConfig(n=100, distractor_rate=0.0, event_motion=0.25)
    spec, i = next((s, i) for s, i in plan_clips(cfg) if s.start_s >= 2 and s.end_s <= 8)
    plain, visible = clip_frames(cfg, spec, i), clip_frames(moving, spec, i)
    inside, before = float(spec.start_s) + 0.5, float(spec.start_s) - 0.5
    assert np.array_equal(plain(0, before), visible(0, before))
    changed = np.abs(plain(0, inside).astype(int) - visible(0, inside)).max(2) > 20
    assert changed.mean() > 0.03  # a disc a quarter of the frame wide (~5 % of the pixels)
    assert plan_clips(moving)[0][0] == plan_clips(cfg)[0][0]  # same label structure
    with pytest.raises(ConfigError, match="event_motion must be in"):
        SynthConfig(event_motion=0.9).check()
    import earmark

    root = make_synthave(tmp_path / "m", SynthConfig(n=8, size=224, silent_event_fraction=1.0, event_motion=0.25,
                                                     distractor_rate=0.0), workers=1)
    ds = load_ave(root, segments=10)
    found = []
    for c in (c for s in ("train", "val", "test") for c in ds.split(s)):
        if 0 < c.row.end_s - c.row.start_s <= 6:
            tl = earmark.index(c.path, probe="motion")
            found.append(c.row.start_s <= int(np.argmax(tl.scores)) < c.row.end_s)
    assert found and np.mean(found) >= 0.75, found


def test_eval_never_writes_over_the_data_it_reads(tmp_path, capsys):
    """`eval ave --root DATA --out DATA` used to replace DATA/videos/ (a documented AVE video folder) with its
    per-video records; a videos/ folder of anything but our records is never replaced either."""
    from earmark.cli import main

    data = tmp_path / "DATA"
    (data / "videos").mkdir(parents=True)
    (data / "videos" / "clip.mp4").write_bytes(b"keep me")
    for f in ("Annotations.txt", "trainSet.txt", "valSet.txt", "testSet.txt"):
        (data / f).write_text("Category&VideoID&Quality&StartTime&EndTime\nBark&clip&good&0&10\n")
    assert main(["eval", "ave", "--root", str(data), "--out", str(data), "--quick"]) == 1
    err = capsys.readouterr().err
    assert f"--out {data}: holds the dataset ({data})" in err and err.count("\n") == 1, err
    inside = tmp_path / "out"
    (inside / "videos").mkdir(parents=True)
    (inside / "videos" / "notes.txt").write_text("mine")
    assert main(["eval", "ave", "--root", str(data), "--out", str(inside), "--quick"]) == 1
    assert "videos: exists and holds files eval did not write" in capsys.readouterr().err
    assert (data / "videos" / "clip.mp4").read_bytes() == b"keep me"
    assert (inside / "videos" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in inside.iterdir()) == ["videos"]


@pytest.mark.parametrize("edit,message", [
    (None, "no synthave.json; make the folder with `earmark eval synth --make"),
    ("{not json", "synthave.json: unreadable manifest"),
    ('{"kind": "earmark.realstamp", "complete": true}', "synthave.json: not a earmark.synthave manifest"),
    ('{"kind": "earmark.synthave"}', "synthave.json: the folder was not finished"),
    ('{"kind": "earmark.synthave", "complete": true, "segments": "10", "classes": ["a"]}',
     "synthave.json: segments must be an integer in 1..3600, got '10'"),
    ('{"kind": "earmark.synthave", "complete": true, "segments": 10, "classes": [1]}',
     "synthave.json: classes must be a non-empty list of names"),
])
def test_a_generated_folder_is_read_through_its_manifest_or_one_line(tmp_path, capsys, edit, message):
    """One manifest reader for eval and train-probe; a hand-broken one was a KeyError (exit 70) in both."""
    from earmark.cli import main

    if edit is not None:
        (tmp_path / "synthave.json").write_text(edit)
    assert main(["train-probe", "--dataset", "synth", "--root", str(tmp_path), "--out",
                 str(tmp_path / "p.pt")]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "p.pt").exists()
