"""RealStamp: real Tux Paint photographs and recordings written as AVE-layout clips, checked on the written MP4s.

Needs Debian's tuxpaint-stamps-default and asterisk-moh-opsound-wav (`make test` and CI install them).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from earmark.eval import realstamp as rs
from earmark.eval.datasets import DatasetError, load_ave
from earmark.media.audio import stream_audio
from earmark.media.container import info

pytestmark = pytest.mark.skipif(not rs.STAMPS.is_dir() or not rs.MUSIC.is_dir(),
                                reason="needs apt-get install tuxpaint-stamps-default asterisk-moh-opsound-wav")

QUIET = rs.RealStampConfig(n=6, n_classes=4, event_s=3, offscreen_rate=0.0, speech_rate=0.0, music_fraction=0.0,
                           silent_event_fraction=0.0, occlusion_fraction=0.0)


def _frames(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as f:
        return [(float(fr.time), fr.to_ndarray(format="rgb24")) for fr in f.decode(video=0)]


def _audio(path: Path) -> np.ndarray:
    return np.concatenate(list(stream_audio(info(path), sample_rate=rs.SAMPLE_RATE))).astype(np.float64)


def _changed(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels that differ by more than 40 in some channel (H.264 noise stays far below)."""
    return float((np.abs(a.astype(int) - b.astype(int)).max(-1) > 40).mean())


def _residual_rms(path: Path, cfg: rs.RealStampConfig, spec: rs.StampClip, i: int) -> np.ndarray:
    """Per second: RMS of the decoded sound minus the clip's bed alone (what was added on top of the bed)."""
    bed = rs.clip_audio(cfg, spec, i, parts=("bed",)).astype(np.float64)
    x = _audio(path)[: len(bed)]
    res = x - bed[: len(x)]
    sr = rs.SAMPLE_RATE
    return np.array([np.sqrt(np.mean(res[s * sr:(s + 1) * sr] ** 2)) for s in range(cfg.duration_s)])


@pytest.fixture(scope="module")
def quiet_set(tmp_path_factory) -> Path:
    return rs.make_realstamp(tmp_path_factory.mktemp("rs") / "quiet", QUIET, workers=1)


def test_the_class_list_is_the_rule_applied_to_the_package():
    table = rs.class_table()
    assert table["package"] == "tuxpaint-stamps-default" and len(table["classes"]) == 72
    names = [c["name"] for c in table["classes"]]
    assert names == sorted(names) and len(set(names)) == len(names)
    stamps = [s for c in table["classes"] for s in c["stamps"]]
    assert not any(s.startswith("symbols/") for s in stamps)  # spoken letters and digits are out
    assert "space/apollo_lander" in table["excluded"] and "speech" in table["excluded"]["space/apollo_lander"]
    assert {"pig": 3, "goat/mountaingoat/ram": 3}.items() <= {c["name"]: len(c["stamps"]) for c in
                                                             table["classes"]}.items()
    rs.check_package()  # every named file is installed
    assert [c["name"] for c in rs.classes(4)] == [names[0], names[18], names[36], names[54]]


def test_same_settings_same_files(quiet_set, tmp_path):
    again = rs.make_realstamp(tmp_path / "again", QUIET, workers=2)
    for f in sorted((quiet_set / "AVE").glob("*.mp4")):
        assert (again / "AVE" / f.name).read_bytes() == f.read_bytes(), f.name
    assert (again / rs.MANIFEST).read_text() == (quiet_set / rs.MANIFEST).read_text()
    other = rs.make_realstamp(tmp_path / "other", replace(QUIET, seed=1), workers=1)
    assert (other / rs.MANIFEST).read_text() != (quiet_set / rs.MANIFEST).read_text()  # the data seed matters
    ds = load_ave(quiet_set, segments=10, name="realstamp", classes=tuple(json.loads(
        (quiet_set / rs.MANIFEST).read_text())["classes"]))
    assert sum(len(ds.available(s)) for s in ("train", "val", "test")) == 6


def test_the_object_is_on_screen_exactly_in_the_labelled_seconds(quiet_set):
    m = json.loads((quiet_set / rs.MANIFEST).read_text())
    for i_spec, clip in enumerate(m["clips"][:3]):
        spec = rs.StampClip(**{k: tuple(tuple(x) for x in v) if k in ("offscreen", "speech") else
                               tuple(v) if k == "occluded_seconds" else v for k, v in clip.items()})
        i = int(spec.video_id[-5:])
        empty = rs.clip_frames(QUIET, spec, i, show_object=False)
        assert spec.end_s - spec.start_s == 3, i_spec
        for t, picture in _frames(quiet_set / "AVE" / f"{spec.video_id}.mp4"):
            changed = _changed(picture, empty(0, t))
            if spec.start_s <= t < spec.end_s:
                assert changed > 0.01, (spec.video_id, t, changed)  # the object covers >= 1 % of the frame
            else:
                assert changed < 0.002, (spec.video_id, t, changed)


def test_its_recording_plays_exactly_in_the_labelled_seconds(quiet_set):
    m = json.loads((quiet_set / rs.MANIFEST).read_text())
    for clip in m["clips"][:3]:
        spec = rs.StampClip(**{**clip, "offscreen": (), "speech": (), "occluded_seconds": ()})
        i = int(spec.video_id[-5:])
        level = _residual_rms(quiet_set / "AVE" / f"{spec.video_id}.mp4", QUIET, spec, i)
        on = np.arange(10)[(np.arange(10) >= spec.start_s) & (np.arange(10) < spec.end_s)]
        off = np.setdiff1d(np.arange(10), on)
        bed = 10 ** (rs.BACKGROUND_DB / 20)
        # The event plays ~6 dB over the bed where it is labelled; elsewhere only codec noise is left over.
        assert level[on].min() > 0.3 * bed and level[off].max() < 0.2 * level[on].min(), (spec.video_id, level)


def test_offscreen_sounds_are_heard_and_never_seen(tmp_path):
    cfg = replace(QUIET, n=3, offscreen_rate=1.0)
    root = rs.make_realstamp(tmp_path / "off", cfg, workers=1)
    m = json.loads((root / rs.MANIFEST).read_text())
    checked = 0
    for clip in m["clips"]:
        spec = rs.StampClip(**{**clip, "offscreen": tuple(tuple(x) for x in clip["offscreen"]), "speech": (),
                               "occluded_seconds": ()})
        i = int(spec.video_id[-5:])
        assert spec.offscreen and all(not spec.start_s <= a < spec.end_s for a, _, _ in spec.offscreen)
        assert all(s != spec.stamp for _, _, s in spec.offscreen)  # another class's recording
        path = root / "AVE" / f"{spec.video_id}.mp4"
        level = _residual_rms(path, cfg, spec, i)
        empty = rs.clip_frames(cfg, spec, i, show_object=False)
        pictures = dict(_frames(path))
        for a, b, _ in spec.offscreen:
            s = int(a)
            if b - s >= 0.5:  # at least half a second of it falls in second s
                assert level[s] > 0.3 * 10 ** (rs.BACKGROUND_DB / 20), (spec.video_id, s, level)
                checked += 1
            for t, picture in pictures.items():
                if a <= t < b:
                    assert _changed(picture, empty(0, t)) < 0.002, (spec.video_id, t)  # nothing on screen
    assert checked >= 3


def test_missing_package_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match=r"nope: Tux Paint stamps not found; install them with: apt-get install "
                                           r"tuxpaint-stamps-default$"):
        rs.check_package(tmp_path / "nope")
    monkeypatch.setattr(rs, "MUSIC", tmp_path / "moh")
    rs.music_names.cache_clear()
    with pytest.raises(DatasetError, match="apt-get install asterisk-moh-opsound-wav"):
        rs.music_files(rs.MUSIC)


def test_bad_settings_and_foreign_folders_are_refused(quiet_set, tmp_path):
    from earmark.errors import ConfigError

    for bad, msg in ((dict(offscreen_rate=1.5), "offscreen_rate must be in"), (dict(n_classes=1), "n_classes"),
                     (dict(event_s=11), "event_s must be in"), (dict(object_min=0.6), "object size")):
        with pytest.raises(ConfigError, match=msg):
            rs.make_realstamp(tmp_path / "bad", replace(QUIET, **bad))
    with pytest.raises(DatasetError, match="made with other settings"):
        rs.make_realstamp(quiet_set, replace(QUIET, snr_db=0.0))
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="exists and is not a realstamp folder"):
        rs.make_realstamp(tmp_path / "stuff", QUIET)
    (tmp_path / "hostile").mkdir()
    (tmp_path / "hostile" / rs.MANIFEST).write_text("{not json")
    with pytest.raises(DatasetError, match="unreadable manifest"):
        rs.make_realstamp(tmp_path / "hostile", QUIET)
