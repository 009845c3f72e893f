"""Highlights: segment arithmetic (golden values and invariants), the activation scorer, the ranking metrics, the
CMX3600 EDL read back by an independent reader, CSV/JSON/HTML outputs, clips probed with ffprobe, and one clear
line for every bad input with nothing written."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SR
from earmark.cli import main
from earmark.errors import ConfigError
from earmark.highlights import (
    HighlightConfig,
    Highlights,
    Segment,
    activation_raw,
    activation_scores,
    average_precision,
    check_highlight_config,
    find_segments,
    hit_at_1,
    segment_iou,
    select_segments,
)
from earmark.media.write import VideoSpec, draw_number, read_number, write_media
from earmark.sinks.edl import (
    csv_text,
    edl_text,
    frames_to_timecode,
    segment_frames,
    timecode_to_frames,
)
from earmark.synth import Event, mix

NTSC = Fraction(30000, 1001)
BITS = 10


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def segs(found) -> list[tuple[float, float, float]]:
    return [(g.start_s, g.end_s, g.score) for g in found]


# ------------------------------------------------------------------------------------------- segment arithmetic


def test_region_growing_merging_and_ranking_golden():
    z = np.zeros(30)
    z[3:6] = [2.0, 6.0, 3.0]      # one event, grown over its windows >= level
    z[10] = 5.0                   # a one-window event: widened to min_len over its better neighbour
    z[9] = 0.5
    z[14:16], z[17:19] = [4.0, 4.0], [3.5, 2.0]   # two parts of one event 1 s apart: merged
    z[22:30] = 1.5                # a long plateau: split at max_len
    cfg = HighlightConfig(min_len_s=2, max_len_s=6, level=1.0, merge_gap_s=1.0, top=None)
    found = find_segments(z, 1.0, 1.0, 30.0, cfg)
    assert segs(found)[:6] == [(3.0, 6.0, 6.0), (9.0, 11.0, 5.0), (14.0, 19.0, 4.0), (22.0, 28.0, 1.5),
                               (28.0, 30.0, 1.5), (0.0, 2.0, 0.0)]
    assert [g.rank for g in found] == list(range(1, len(found) + 1))
    assert found[2].peak_s == 14.5  # equal peaks 14 and 15: the earlier seeds the segment
    # The rest are quiet fillers of min_len, never overlapping the events.
    assert all(g.score == 0.0 and g.duration_s == 2.0 for g in found[5:])


def test_select_top_and_total_duration_trims_around_the_peak():
    found = (Segment(10.0, 20.0, 9.0, 12.5, 4.0, 1), Segment(30.0, 34.0, 5.0, 31.5, 3.0, 2),
             Segment(40.0, 46.0, 3.0, 45.5, 2.0, 3))
    assert segs(select_segments(found, top=2)) == [(10.0, 20.0, 9.0), (30.0, 34.0, 5.0)]
    reel = select_segments(found, total_duration_s=13.0, min_len_s=2.0)
    assert [(g.start_s, g.end_s, g.rank) for g in reel] == [(10.0, 20.0, 1), (30.0, 33.0, 2)]  # centred on 31.5
    reel = select_segments(found, total_duration_s=11.0, min_len_s=2.0)  # 1 s left < min_len: the reel is full
    assert [(g.start_s, g.end_s) for g in reel] == [(10.0, 20.0)]
    reel = select_segments(found, total_duration_s=4.0, min_len_s=2.0)   # the best trimmed to 4 s around 12.5
    assert [(g.start_s, g.end_s) for g in reel] == [(10.5, 14.5)]


def test_ties_break_by_time_and_hop_half_seconds():
    z = np.array([0, 3, 0, 0, 3, 0, 0, 3, 0, 0], float)
    found = find_segments(z, 0.5, 1.0, 5.5, HighlightConfig(min_len_s=1.0, max_len_s=2.0, top=None))
    assert segs(found)[:3] == [(0.5, 1.5, 3.0), (2.0, 3.0, 3.0), (3.5, 4.5, 3.0)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-3, 8, allow_nan=False), min_size=1, max_size=80), st.sampled_from([0.5, 1.0]),
       st.floats(0.5, 4), st.floats(0, 8), st.floats(-1, 3), st.floats(0, 3))
def test_segments_are_disjoint_inside_the_video_and_within_lengths(scores, hop, min_len, extra, level, gap):
    n = len(scores)
    duration = (n - 1) * hop + 1.0
    cfg = HighlightConfig(min_len_s=min_len, max_len_s=max(min_len + extra, 1.0), level=level, merge_gap_s=gap,
                          top=None)
    found = find_segments(np.array(scores), hop, 1.0, duration, cfg)
    spans = sorted((g.start_s, g.end_s) for g in found)
    assert all(0 <= a < b <= duration + 1e-6 for a, b in spans)
    assert all(b1 <= a2 + 1e-9 for (_, b1), (a2, _) in itertools.pairwise(spans))
    for g in found:
        assert g.duration_s <= cfg.max_len_s + 1e-6
        # At least min_len, less the window overlap better neighbours keep when hop < window.
        assert g.duration_s >= min(cfg.min_len_s, duration) - 2 * (1.0 - hop) - 1e-6
        assert g.start_s <= g.peak_s <= g.end_s
    keys = [(-g.score, -g.mean_score, g.start_s) for g in found]
    assert keys == sorted(keys)
    assert find_segments(np.array(scores), hop, 1.0, duration, cfg) == found  # deterministic


@pytest.mark.parametrize(("kw", "message"), [
    ({"top": 0}, "--top 0: must be an integer >= 1"),
    ({"min_len_s": -1.0}, "--min-len -1.0: must be a number of seconds > 0"),
    ({"max_len_s": -2.0}, "--max-len -2.0: must be a number of seconds > 0"),
    ({"min_len_s": 5.0, "max_len_s": 2.0}, "--min-len 5.0 is longer than --max-len 2.0"),
    ({"merge_gap_s": -0.5}, "--merge-gap -0.5: must be a number of seconds >= 0"),
    ({"total_duration_s": 0.0}, "--total-duration 0.0: must be a number of seconds > 0"),
    ({"total_duration_s": 1.0}, "--total-duration 1.0 is shorter than --min-len 2.0"),
    ({"level": math.nan}, "--level nan: must be a finite z-score"),
    ({"scorer": "loudness"}, "unknown scorer 'loudness'; valid scorers: eventness, activation"),
])
def test_bad_settings_name_the_option(kw, message):
    with pytest.raises(ConfigError) as e:
        check_highlight_config(HighlightConfig(**kw))
    assert message in str(e.value)


# ------------------------------------------------------------------------------------------- activation, metrics


def test_activation_finds_the_atypical_window_and_ignores_constant_dimensions():
    rng = np.random.default_rng(0)
    e = rng.normal(0, 1, (40, 16))
    e[:, 0] = 5.0                 # a constant dimension: a tiny wobble must not dominate
    e[7, 0] = 5.001
    e[25, 3:6] += 8.0             # three dimensions light up in window 25
    raw = activation_raw(e, top_k=3)
    assert int(np.argmax(raw)) == 25 and raw[25] > 4 * np.median(raw)
    z = activation_scores(e, top_k=3)
    assert int(np.argmax(z)) == 25 and z[25] > 5 and abs(float(np.median(z))) < 1e-6


def test_iou_ap_and_hit_at_1_values():
    assert segment_iou((0, 4), (2, 6)) == pytest.approx(1 / 3)
    assert segment_iou((0, 2), (2, 4)) == 0.0
    truth = [(20.0, 30.0)]
    ranked = [(0.0, 2.0), (21.0, 29.0), (20.0, 30.0)]
    assert average_precision(ranked, truth, 0.5) == 0.5        # found at rank 2; the exact copy later is a miss
    assert average_precision(ranked, truth, 0.9) == pytest.approx(1 / 3)
    assert average_precision([(0.0, 2.0)], truth, 0.3) == 0.0
    two = [(0.0, 5.0), (10.0, 15.0)]
    assert average_precision([(10.0, 15.0), (50, 52), (0.0, 5.0)], two, 0.5) == pytest.approx((1 + 2 / 3) / 2)
    assert hit_at_1(ranked, truth) == 0.0 and hit_at_1(ranked[1:], truth) == 1.0


# ------------------------------------------------------------------------------------------- timecodes and EDL


def test_timecodes_golden():
    assert frames_to_timecode(0, NTSC) == "00:00:00;00"
    assert frames_to_timecode(1799, NTSC) == "00:00:59;29"
    assert frames_to_timecode(1800, NTSC) == "00:01:00;02"      # ;00 and ;01 do not exist at minute 1
    assert frames_to_timecode(17982, NTSC) == "00:10:00;00"     # ... but do every tenth minute
    assert frames_to_timecode(107892, NTSC) == "01:00:00;00"
    assert frames_to_timecode(2589407, NTSC) == "23:59:59;29"   # a day of 29.97 holds 2589408 frames
    assert frames_to_timecode(3600, Fraction(60000, 1001)) == "00:01:00;04"
    assert frames_to_timecode(90000, Fraction(25)) == "01:00:00:00"
    assert frames_to_timecode(86400, Fraction(24000, 1001)) == "01:00:00:00"  # 23.976 counts 24 non-drop
    for f in (0, 1, 1799, 1800, 17981, 17982, 17983, 107892, 2589407):
        assert timecode_to_frames(frames_to_timecode(f, NTSC), NTSC) == f
    with pytest.raises(ConfigError, match="does not exist in drop-frame"):
        timecode_to_frames("00:01:00;00", NTSC)


def _drop_frame_labels(n: int, base: int = 30, drop: int = 2) -> list[str]:
    """Independent drop-frame counter: tick a clock label frame by frame, skipping the dropped labels."""
    hh = mm = ss = ff = 0
    out = []
    for _ in range(n):
        out.append(f"{hh:02d}:{mm:02d}:{ss:02d};{ff:02d}")
        ff += 1
        if ff == base:
            ff, ss = 0, ss + 1
            if ss == 60:
                ss, mm = 0, mm + 1
                if mm == 60:
                    mm, hh = 0, hh + 1
                if mm % 10:
                    ff = drop
    return out


def test_drop_frame_matches_a_ticking_counter():
    labels = _drop_frame_labels(40000)
    assert [frames_to_timecode(f, NTSC) for f in range(0, 40000, 7)] == labels[::7]
    labels60 = _drop_frame_labels(8000, 60, 4)
    assert [frames_to_timecode(f, Fraction(60000, 1001)) for f in range(0, 8000, 3)] == labels60[::3]


EDL_EVENT = re.compile(r"^(\d{3})  (.{8}) (.{4})  C        (\S{11}) (\S{11}) (\S{11}) (\S{11})$")


def read_edl(text: str, rate: Fraction) -> dict:
    """An EDL reader written for this test: header, then events by column; timecodes to frames by counting labels
    (drop-frame) or by plain arithmetic (non-drop)."""
    lines = text.split("\r\n")
    assert lines[-1] == "" and all("\n" not in line and line.isascii() for line in lines)
    base = round(float(rate))
    drop = lines[1] == "FCM: DROP FRAME"
    hour = _drop_frame_labels(3600 * base, base, 2 * base // 30) if drop else []
    table = {lab: i for i, lab in enumerate(hour)}
    per_hour = table.get("01:00:00;00", 0)

    def frames(tc: str) -> int:
        if drop:
            assert tc[8] == ";"
            return table[f"00{tc[2:]}"] + int(tc[:2]) * per_hour
        assert tc[8] == ":"
        hh, mm, ss, ff = (int(x) for x in tc.split(":"))
        return ((hh * 60 + mm) * 60 + ss) * base + ff

    events, comments = [], []
    for line in lines[3:]:
        if line.startswith("* "):
            comments.append(line)
            continue
        if not line:
            continue
        m = EDL_EVENT.match(line)
        assert m, line
        events.append({"n": int(m[1]), "reel": m[2].strip(), "channel": m[3].strip(),
                       "src": (frames(m[4]), frames(m[5])), "rec": (frames(m[6]), frames(m[7]))})
    return {"title": lines[0], "fcm": lines[1], "events": events, "comments": comments}


def _highlights(rate: str | None, segments, has_audio=True, video="clip.mp4") -> Highlights:
    return Highlights(video=video, fingerprint="0" * 16, duration_s=4000.0, fps=rate, has_audio=has_audio,
                      scorer="eventness", probe="energy", embedding=None, config={}, segments=tuple(segments))


@pytest.mark.parametrize("rate", ["30000/1001", "60000/1001", "25/1", "24000/1001", "2/1"])
def test_edl_reads_back_frame_accurate(rate):
    r = Fraction(rate)
    segments = [Segment(601.5, 612.25, 7.0, 605.5, 3.0, 1), Segment(59.9, 61.0, 5.0, 60.5, 2.0, 2),
                Segment(1.0, 3.0, 4.0, 2.5, 2.0, 3)]
    h = _highlights(rate, segments)
    doc = read_edl(edl_text(h), r)
    drop = r in (Fraction(30000, 1001), Fraction(60000, 1001))
    assert doc["title"] == "TITLE: clip" and doc["fcm"] == ("FCM: DROP FRAME" if drop else "FCM: NON-DROP FRAME")
    assert [e["n"] for e in doc["events"]] == [1, 2, 3]
    assert {(e["reel"], e["channel"]) for e in doc["events"]} == {("AX", "AA/V")}
    # Sources in time order: every frame whose display interval the segment touches.
    want = [(math.floor(a * r), math.ceil(b * r)) for a, b in ((1.0, 3.0), (59.9, 61.0), (601.5, 612.25))]
    assert [e["src"] for e in doc["events"]] == want
    rec = doc["events"][0]["rec"][0]
    assert rec == (107892 if r == NTSC else 215784 if drop else 3600 * math.ceil(r - Fraction(1, 1000)))
    for e in doc["events"]:  # laid end to end, each as long as its source
        assert e["rec"] == (rec, rec + e["src"][1] - e["src"][0])
        rec = e["rec"][1]
    assert doc["comments"][0] == "* FROM CLIP NAME: clip.mp4" and "rank 3" in doc["comments"][1]
    by_rank = read_edl(edl_text(h, order="rank"), r)
    assert [e["src"] for e in by_rank["events"]] == [want[2], want[1], want[0]]


def test_edl_golden_text_at_2997():
    h = _highlights("30000/1001", [Segment(1.0, 3.0, 4.0, 2.5, 2.0, 1)], video="/x/My Clip\u00e9.mp4")
    assert edl_text(h).split("\r\n")[:5] == [
        "TITLE: My Clip_", "FCM: DROP FRAME", "",
        "001  AX       AA/V  C        00:00:00;29 00:00:03;00 01:00:00;00 01:00:02;01",
        "* FROM CLIP NAME: My Clip_.mp4"]
    silent = _highlights("25/1", [Segment(1.0, 3.0, 4.0, 2.5, 2.0, 1)], has_audio=False)
    assert "001  AX       V     C        00:00:01:00 00:00:03:00 01:00:00:00 01:00:02:00" in edl_text(silent)


def test_edl_opens_in_opentimelineio():
    otio = pytest.importorskip("opentimelineio", reason="an editor-side reader, when installed")
    pytest.importorskip("otio_cmx3600_adapter")
    segments = [Segment(1.0, 3.0, 4.0, 2.5, 2.0, 1), Segment(59.9, 61.0, 5.0, 60.5, 2.0, 2)]
    text = edl_text(_highlights("30000/1001", segments, has_audio=False))
    tl = otio.adapters.read_from_string(text, "cmx_3600", rate=float(NTSC))
    clips = list(tl.find_clips())
    assert [(c.name, c.source_range.start_time.value, c.source_range.duration.value) for c in clips] == [
        ("clip.mp4", 29.0, 61.0), ("clip.mp4", 1795.0, 34.0)]


TIME = re.compile(r"^(0|[1-9]\d*/[1-9]\d*)s$")


def read_fcpxml(text: str) -> dict:
    """An FCPXML reader written for this test: the header, the one format, asset and spine; every time attribute
    checked to be ``0s`` or ``N/Ds`` on a frame boundary, returned in frames."""
    import xml.etree.ElementTree as ET

    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n')
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "fcpxml" and root.get("version") == "1.10"
    [fmt] = root.findall("./resources/format")
    frame = Fraction(fmt.get("frameDuration").removesuffix("s"))
    assert TIME.match(fmt.get("frameDuration"))

    def frames(value: str) -> int:
        assert TIME.match(value), value
        n = Fraction(value.removesuffix("s")) / frame
        assert n.denominator == 1, f"{value} is not on a frame boundary ({frame} s a frame)"
        return int(n)

    [asset] = root.findall("./resources/asset")
    assert asset.get("format") == fmt.get("id") and asset.find("media-rep").get("kind") == "original-media"
    [sequence] = root.findall("./library/event/project/sequence")
    assert sequence.get("format") == fmt.get("id")
    clips = []
    for c in sequence.findall("./spine/asset-clip"):
        assert c.get("ref") == asset.get("id") and c.get("tcFormat") == sequence.get("tcFormat")
        markers = [(frames(m.get("start")), frames(m.get("duration")), m.get("value")) for m in c.findall("marker")]
        clips.append({"name": c.get("name"), "offset": frames(c.get("offset")), "start": frames(c.get("start")),
                      "duration": frames(c.get("duration")), "markers": markers})
    return {"rate": 1 / frame, "size": (fmt.get("width"), fmt.get("height")), "src": asset.find("media-rep").get("src"),
            "asset": (frames(asset.get("start")), frames(asset.get("duration"))), "has_audio": asset.get("hasAudio"),
            "sequence": frames(sequence.get("duration")), "tc": sequence.get("tcFormat"), "clips": clips}


@pytest.mark.parametrize("rate", ["30000/1001", "60000/1001", "25/1", "24000/1001", "2/1"])
def test_fcpxml_reads_back_frame_accurate(rate):
    from earmark.sinks.edl import fcpxml_text

    r = Fraction(rate)
    segments = [Segment(601.5, 612.25, 7.0, 605.5, 3.0, 1), Segment(59.9, 61.0, 5.0, 60.5, 2.0, 2),
                Segment(1.0, 3.0, 4.0, 2.5, 2.0, 3)]
    h = _highlights(rate, segments, video="/media/My Clip.mp4")
    doc = read_fcpxml(fcpxml_text(h, size=(1920, 1080)))
    assert doc["rate"] == r and doc["size"] == ("1920", "1080") and doc["src"] == "file:///media/My%20Clip.mp4"
    assert doc["tc"] == ("DF" if r in (Fraction(30000, 1001), Fraction(60000, 1001)) else "NDF")
    assert doc["asset"] == (0, math.ceil(4000 * r)) and doc["has_audio"] == "1"
    want = [(math.floor(a * r), math.ceil(b * r)) for a, b in ((1.0, 3.0), (59.9, 61.0), (601.5, 612.25))]
    assert [(c["start"], c["start"] + c["duration"]) for c in doc["clips"]] == want  # the EDL's frames
    offset = 0
    for c, g in zip(doc["clips"], (segments[2], segments[1], segments[0])):  # laid end to end from 0
        assert c["offset"] == offset and c["name"] == f"My Clip #{g.rank}"
        [(at, length, value)] = c["markers"]
        assert length == 1 and at == math.floor(g.peak_s * r) and value == f"rank {g.rank}, score {g.score:.2f}"
        offset += c["duration"]
    assert doc["sequence"] == offset
    by_rank = read_fcpxml(fcpxml_text(h, order="rank"))
    assert [(c["start"], c["start"] + c["duration"]) for c in by_rank["clips"]] == want[::-1]
    assert by_rank["size"] == (None, None)


def test_fcpxml_golden_times_at_2997_and_refusals():
    from earmark.sinks.edl import fcpxml_text, rational_time

    assert rational_time(29, NTSC) == "29029/30000s" and rational_time(0, NTSC) == "0s"
    h = _highlights("30000/1001", [Segment(1.0, 3.0, 4.0, 2.5, 2.0, 1)], has_audio=False, video="/x/a\x01b.mp4")
    text = fcpxml_text(h)
    assert ('<asset-clip ref="r2" name="a_b #1" offset="0s" start="29029/30000s" duration="61061/30000s" '
            'format="r1" tcFormat="DF">') in text
    assert '<format id="r1" frameDuration="1001/30000s" />' in text and 'hasAudio="0"' in text
    with pytest.raises(ConfigError, match="clip.mp4: no video stream, so no frame rate for FCPXML times"):
        fcpxml_text(_highlights(None, [Segment(1.0, 3.0, 4.0, 2.5, 2.0, 1)]))
    empty = read_fcpxml(fcpxml_text(_highlights("25/1", [])))  # a reel with nothing in it is still a document
    assert empty["clips"] == [] and empty["sequence"] == 0


def test_fcpxml_opens_in_opentimelineio():
    otio = pytest.importorskip("opentimelineio", reason="an editor-side reader, when installed")
    pytest.importorskip("otio_fcpx_xml_adapter")
    from earmark.sinks.edl import fcpxml_text

    segments = [Segment(1.0, 3.0, 4.0, 2.5, 2.0, 1), Segment(59.9, 61.0, 5.0, 60.5, 2.0, 2)]
    tl = otio.adapters.read_from_string(fcpxml_text(_highlights("25/1", segments), size=(160, 96)), "fcpx_xml")
    [timeline] = list(tl) if isinstance(tl, otio.schema.SerializableCollection) else [tl]
    clips = list(timeline.find_clips())
    assert [(c.name, c.source_range.start_time.value, c.source_range.duration.value, c.source_range.start_time.rate)
            for c in clips] == [("clip #1", 25.0, 50.0, 25.0), ("clip #2", 1497.0, 28.0, 25.0)]
    assert [c.range_in_parent().start_time.value for c in clips] == [0.0, 50.0]
    assert [m.name for c in clips for m in c.markers] == ["rank 1, score 4.00", "rank 2, score 5.00"]


def test_csv_quotes_formula_cells_and_keeps_numbers():
    h = _highlights("25/1", [Segment(1.0, 3.0, 4.0, 2.5, 2.0, 1)], video="=HYPERLINK(1).mp4")
    rows = list(csv.DictReader(io.StringIO(csv_text(h))))
    assert rows[0]["video"] == "'=HYPERLINK(1).mp4"
    assert (rows[0]["start_tc"], rows[0]["end_tc"], rows[0]["start_s"]) == ("00:00:01:00", "00:00:03:00", "1.0")
    for bad in ("+1", "-1", "@x"):
        assert csv_text(_highlights(None, [], video=bad)).count("'" + bad) == 0  # no rows: header only
        h = _highlights(None, [Segment(1.0, 3.0, 4.0, 2.5, 2.0, 1)], video=bad)
        assert next(csv.DictReader(io.StringIO(csv_text(h))))["video"] == "'" + bad


def test_segment_frames_cover_every_touched_frame():
    assert segment_frames(Segment(1.0, 3.0, 0, 2, 0), NTSC) == (29, 90)
    assert segment_frames(Segment(1001 / 30000 * 30, 1001 / 30000 * 60, 0, 2, 0), NTSC) == (30, 60)
    assert segment_frames(Segment(2.0, 2.001, 0, 2, 0), Fraction(25)) == (50, 51)


# ------------------------------------------------------------------------------------------- media, CLI


def numbered(i: int, t: float) -> np.ndarray:
    img = np.zeros((96, 160, 3), dtype=np.uint8)
    img[:, :, 1] = (np.arange(160) * 255 // 160)[None, :]
    return draw_number(img, i, BITS)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("highlights")
    audio = mix(10.0, [Event("tone", 2.0, 3.0), Event("noise", 6.0, 7.0)], sr=SR, snr_db=20.0, seed=3)
    out = {
        # 29.97 with B-frames and a keyframe every 30 frames (~1 s): stream copy starts early, re-encode does not.
        "ntsc": write_media(d / "ntsc.mp4", 10.0, audio, SR, video=VideoSpec(160, 96, 30000 / 1001, gop=30,
                                                                               bframes=2), frame_fn=numbered),
        "pal": write_media(d / "pal.mp4", 10.0, audio, SR, video=VideoSpec(160, 96, 25.0, gop=25),
                           frame_fn=numbered),
        "wav": write_media(d / "sound.wav", 10.0, audio, SR, video=None),
    }
    return out


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_type,start_time,duration,nb_read_frames", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return {s["codec_type"]: s for s in json.loads(out)["streams"]}


def first_number(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return read_number(frame.to_ndarray(format="rgb24"), BITS)


def test_cli_writes_every_format_from_a_video(capsys, media, tmp_path):
    out = tmp_path / "o"
    code, stdout, err = run(capsys, "highlights", media["ntsc"], "--top", "2", "--out", out / "h.json", "--out",
                            out / "h.csv", "--out", out / "h.edl", "--out", out / "reel.html", "--out",
                            out / "h.fcpxml")
    assert code == 0, err
    doc = json.loads((out / "h.json").read_text())
    assert doc["kind"] == "earmark.highlights" and doc["fps"] == "30000/1001" and doc["scorer"] == "eventness"
    got = [(g["rank"], g["start_s"], g["end_s"]) for g in doc["segments"]]
    # Events at [2, 3) and [6, 7) s; each widened to 2 s over its louder neighbour (energy z of window 1: -0.18
    # vs window 3: -0.29; window 5: 0.23 vs window 7: 0.06).
    assert got == [(1, 5.0, 7.0), (2, 1.0, 3.0)]
    assert [g["peak_s"] for g in doc["segments"]] == [6.5, 2.5]
    rows = list(csv.DictReader((out / "h.csv").open()))
    assert [(r["rank"], r["start_tc"], r["end_tc"]) for r in rows] == [
        ("2", "00:00:00;29", "00:00:03;00"), ("1", "00:00:04;29", "00:00:07;00")]
    edl = read_edl((out / "h.edl").read_bytes().decode("ascii"), NTSC)
    assert [e["src"] for e in edl["events"]] == [(29, 90), (149, 210)]
    fcp = read_fcpxml((out / "h.fcpxml").read_text(encoding="utf-8"))
    assert [(c["start"], c["start"] + c["duration"]) for c in fcp["clips"]] == [(29, 90), (149, 210)]
    assert fcp["rate"] == NTSC and fcp["size"] == ("160", "96") and fcp["src"] == media["ntsc"].resolve().as_uri()
    html = (out / "reel.html").read_text()
    assert html.count('<tr class="segment"') == 2
    assert re.search(r'<video id="reel"[^>]* src="\.\./[^"]*/ntsc\.mp4"', html)  # relative to the page
    assert 'data-t0="5.0" data-t1="7.0"' in html
    assert "#1  [0:05.0, 0:07.0)" in stdout


def test_index_json_gives_the_same_segments(capsys, media, tmp_path):
    idx = tmp_path / "i.json"
    assert run(capsys, "index", media["pal"], "--out", idx)[0] == 0
    a = run(capsys, "highlights", idx, "--json", "--top", "3")
    b = run(capsys, "highlights", media["pal"], "--json", "--top", "3")
    assert a[0] == b[0] == 0
    assert json.loads(a[1])["segments"] == json.loads(b[1])["segments"]
    code, _, err = run(capsys, "highlights", idx, "--probe", "flux")
    assert code == 1 and err.startswith("earmark: error: --probe flux:") and err.count("\n") == 1


def test_activation_scorer_with_sound_and_picture_alone(capsys, media, tmp_path):
    code, out, err = run(capsys, "highlights", media["pal"], "--scorer", "activation", "--json", "--top", "2")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["embedding"] == "logmel"
    assert sorted((g["start_s"], g["end_s"]) for g in doc["segments"]) == [(2.0, 4.0), (6.0, 8.0)]
    code, out, err = run(capsys, "highlights", media["pal"], "--scorer", "activation", "--embedding", "visual",
                         "--json", "--top", "1")
    assert code == 0, err
    assert json.loads(out)["embedding"] == "visual"


def test_activation_from_an_index_reads_its_video(capsys, media, tmp_path):
    video = tmp_path / "v.mp4"
    shutil.copy(media["pal"], video)
    idx = tmp_path / "i.json"
    assert run(capsys, "index", video, "--out", idx)[0] == 0
    a = run(capsys, "highlights", idx, "--scorer", "activation", "--json")
    b = run(capsys, "highlights", video, "--scorer", "activation", "--json")
    assert a[0] == b[0] == 0 and json.loads(a[1])["segments"] == json.loads(b[1])["segments"]
    video.unlink()
    assert run(capsys, "highlights", idx, "--json")[0] == 0  # eventness needs only the index
    code, _, err = run(capsys, "highlights", idx, "--scorer", "activation")
    assert code == 1 and err.startswith(f"earmark: error: {video}: not found: the activation scorer reads")
    assert err.count("\n") == 1


def test_stream_copy_clips_start_on_the_keyframe_before(capsys, media, tmp_path):
    cut = tmp_path / "clips"
    code, out, err = run(capsys, "highlights", media["ntsc"], "--top", "2", "--cut", cut)
    assert code == 0, err
    assert "stream copy: fast, each starts on the keyframe at or before its segment" in out
    manifest = json.loads((cut / "manifest.json").read_text())
    assert manifest["kind"] == "earmark.clips" and manifest["mode"] == "copy"
    clips = {c["rank"]: c for c in manifest["clips"]}
    # Keyframes every 30 frames: frame 120 (4.004 s) is the last at or before 5.0 s, frame 0 the last before 1.0.
    assert (clips[1]["clip_start_s"], clips[2]["clip_start_s"]) == (pytest.approx(120 / NTSC), 0.0)
    for c in clips.values():
        p = cut / c["file"]
        probe = ffprobe(p)
        assert float(probe["video"]["start_time"]) == 0.0
        assert first_number(p) == round(c["clip_start_s"] * NTSC)  # the keyframe's own picture comes first
        frames = int(probe["video"]["nb_read_frames"])
        # It reaches the segment's end (its last frames decode), at most a few B-frame reorderings beyond.
        assert math.ceil(c["end_s"] * NTSC) - round(c["clip_start_s"] * NTSC) <= frames
        assert frames <= math.ceil(c["end_s"] * NTSC) - round(c["clip_start_s"] * NTSC) + 3
        assert abs(float(probe["audio"]["start_time"])) < 0.03


def test_reencoded_clips_are_frame_accurate(capsys, media, tmp_path):
    cut = tmp_path / "clips"
    code, out, err = run(capsys, "highlights", media["ntsc"], "--top", "2", "--cut", cut, "--reencode")
    assert code == 0, err
    assert "frame-accurate" in out
    clips = {c["rank"]: c for c in json.loads((cut / "manifest.json").read_text())["clips"]}
    assert [clips[r]["file"] for r in (1, 2)] == ["001_000005.000s.mp4", "002_000001.000s.mp4"]
    for c, (first, last) in ((clips[1], (149, 210)), (clips[2], (29, 90))):
        probe = ffprobe(cut / c["file"])
        assert float(probe["video"]["start_time"]) == 0.0
        assert int(probe["video"]["nb_read_frames"]) == last - first
        assert float(probe["video"]["duration"]) == pytest.approx((last - first) / NTSC, abs=1e-3)
        assert float(probe["audio"]["start_time"]) == 0.0
        assert float(probe["audio"]["duration"]) == pytest.approx((last - first) / NTSC, abs=0.03)
        assert first_number(cut / c["file"]) == first
        assert c["clip_start_s"] == pytest.approx(first / NTSC, abs=1e-6)
    # Again into the same folder: earmark's own clips folder is replaced.
    assert run(capsys, "highlights", media["ntsc"], "--top", "1", "--cut", cut, "--reencode")[0] == 0
    assert sorted(p.name for p in cut.iterdir()) == ["001_000005.000s.mp4", "manifest.json"]


def test_total_duration_reel_from_the_cli(capsys, media):
    code, out, err = run(capsys, "highlights", media["pal"], "--total-duration", "3", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [(g["start_s"], g["end_s"]) for g in doc["segments"]] == [(5.0, 7.0)]
    assert doc["total_s"] == 2.0


@pytest.mark.parametrize(("args", "message"), [
    (["--top", "0"], "--top 0: must be an integer >= 1"),
    (["--min-len", "-2"], "--min-len -2.0: must be a number of seconds > 0"),
    (["--max-len", "-1"], "--max-len -1.0: must be a number of seconds > 0"),
    (["--min-len", "8", "--max-len", "3"], "--min-len 8.0 is longer than --max-len 3.0"),
    (["--merge-gap", "-1"], "--merge-gap -1.0: must be a number of seconds >= 0"),
    (["--total-duration", "-5"], "--total-duration -5.0: must be a number of seconds > 0"),
    (["--out", "x.txt"], "--out x.txt: unknown highlights format '.txt'"),
    (["--reencode"], "--reencode applies to --cut DIR"),
    (["--embedding", "visual"], "--embedding visual: applies to --scorer activation"),
])
def test_bad_options_one_line_exit_1_nothing_written(capsys, media, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    cut = [] if "--reencode" in args else ["--cut", "clips"]
    code, out, err = run(capsys, "highlights", media["pal"], *args, "--out", "h.json", *cut)
    assert code == 1
    assert err.startswith("earmark: error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_missing_file_and_hostile_index(capsys, media, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "highlights", "nope.mp4", "--out", "h.json")
    assert code == 1 and err == "earmark: error: nope.mp4: file not found\n"
    assert run(capsys, "index", media["pal"], "--out", "i.json")[0] == 0
    doc = json.loads(Path("i.json").read_text())
    bad = {
        "nan.json": Path("i.json").read_text().replace('"scores": [', '"scores": [NaN, ', 1),
        "trunc.json": Path("i.json").read_text()[:200],
        "kind.json": json.dumps({**doc, "kind": "earmark.plan"}),
        "windows.json": json.dumps({**doc, "timeline": {**doc["timeline"], "scores": doc["timeline"]["scores"][:3]}}),
    }
    for name, text in bad.items():
        Path(name).write_text(text)
        code, _, err = run(capsys, "highlights", name, "--out", "h.json", "--out", "h.edl")
        assert code == 1 and err.startswith(f"earmark: error: {name}: ") and err.count("\n") == 1, (name, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["i.json", *bad])


def test_a_failing_output_writes_none_of_them(capsys, media, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "highlights", media["wav"], "--out", "h.json", "--out", "h.edl")
    assert code == 1 and "no video stream, so no frame rate for EDL timecodes" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
    code, _, err = run(capsys, "highlights", media["wav"], "--out", "h.json", "--out", "h.fcpxml")
    assert code == 1 and err == f"earmark: error: {media['wav']}: no video stream, so no frame rate for FCPXML times\n"
    assert list(tmp_path.iterdir()) == []
    code, _, err = run(capsys, "highlights", media["wav"], "--out", "h.json", "--out", "h.csv")
    assert code == 0, err
    assert next(csv.DictReader(io.StringIO(Path("h.csv").read_text())))["start_tc"] == ""


def test_cut_refuses_a_folder_it_did_not_write(capsys, media, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    code, _, err = run(capsys, "highlights", media["pal"], "--cut", folder)
    assert code == 1 and "exists and holds files earmark did not write" in err and err.count("\n") == 1
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temporary folder left beside it


def test_stream_copy_of_sound_only(capsys, media, tmp_path):
    cut = tmp_path / "clips"
    code, _, err = run(capsys, "highlights", media["wav"], "--top", "1", "--cut", cut)
    assert code == 0, err
    clip = json.loads((cut / "manifest.json").read_text())["clips"][0]
    probe = ffprobe(cut / clip["file"])
    assert clip["file"].endswith(".wav") and "video" not in probe
    assert float(probe["audio"]["duration"]) == pytest.approx(clip["end_s"] - clip["clip_start_s"], abs=0.05)


def test_no_ffmpeg_program_needed(capsys, media, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg, no ffprobe: PyAV does the cutting
    assert shutil.which("ffmpeg") is None
    code, _, err = run(capsys, "highlights", media["pal"], "--top", "1", "--cut", tmp_path / "c", "--reencode")
    assert code == 0, err
