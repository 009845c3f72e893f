"""anchors: pure functions, unit cases and hypothesis properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import earmark
from earmark.anchors import (
    AnchorConfig,
    above_threshold,
    check_anchor_config,
    choose_anchors,
    distinct_events,
    event_regions,
    merge_regions,
    spread,
    top_k,
    uniform_indices,
)
from earmark.errors import ConfigError, EarmarkWarning
from earmark.types import Timeline


def pick(scores, cfg=AnchorConfig(), hop=1.0, window=1.0, duration=None, confidence=None, coverage=None):
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    starts = np.arange(n) * hop
    duration = duration if duration is not None else (n - 1) * hop + window
    conf = np.ones(n) if confidence is None else np.asarray(confidence)
    cov = np.ones(n) if coverage is None else np.asarray(coverage)
    return choose_anchors(scores, conf, cov, starts, window, hop, duration, cfg)


def test_top_k_with_nms_prefers_best_then_earliest():
    s = np.array([0, 9, 8, 0, 9, 0], dtype=float)
    starts = np.arange(6.0)
    assert top_k(s, starts, 2, min_gap_s=1.0) == [1, 4]  # tie 9/9: both; adjacent allowed at gap 1
    assert top_k(s, starts, 3, min_gap_s=2.0) == [1, 4]  # 2 is within 2 s of 1; nothing else left
    assert top_k(s, starts, 3, min_gap_s=1.0) == [1, 2, 4]


def test_threshold_mode_and_cap():
    s = np.array([0, 5, 0, 4, 0, 6, 3.5], dtype=float)
    starts = np.arange(7.0)
    assert above_threshold(s, starts, 3.5, 1.0) == [1, 3, 5, 6]
    assert above_threshold(s, starts, 3.5, 1.0, k=2) == [1, 5]
    out = pick(s, AnchorConfig(k=None, mode="threshold", threshold=4.0))
    assert [a.index for a in out] == [1, 3, 5]


def test_spread_mode_covers_event_regions_instead_of_their_loudest_seconds():
    starts = np.arange(10.0)
    long_event = np.array([0, 0, 4, 5, 6, 5, 4, 0, 0, 0], dtype=float)  # one 5 s event, loudest in the middle
    assert event_regions(long_event, 3.0) == [(2, 7)]
    assert top_k(long_event, starts, 2, 1.0) == [3, 4]  # top-K: two adjacent seconds beside the peak
    assert spread(long_event, starts, 2, 3.0, 1.0) == [3, 5]  # centres of the event's two halves
    assert spread(long_event, starts, 3, 3.0, 1.0) == [2, 4, 6]
    assert spread(long_event, starts, 2, 3.0, 3.0) == [2, 6]  # centres 2 s apart: edge to edge instead
    assert spread(long_event, starts, 2, 3.0, 5.0) == [4, 9]  # cannot fit twice: the best other window fills up
    two = np.array([0, 0, 9, 0, 0, 0, 4, 4, 4, 4], dtype=float)  # a short loud event, a long quieter one
    assert spread(two, starts, 1, 3.0, 1.0) == [2]  # the strongest region first
    assert spread(two, starts, 2, 3.0, 1.0) == [2, 8]  # one per region
    assert spread(two, starts, 3, 3.0, 1.0) == [2, 7, 9]  # the extra anchor goes to the longer region
    out = pick(long_event, AnchorConfig(k=2, mode="spread"))
    assert [a.index for a in out] == [3, 5] and {a.source for a in out} == {"audio"}
    flat = pick(np.zeros(10), AnchorConfig(k=2, mode="spread"))  # nothing stands out: the usual fallback
    assert [a.index for a in flat] == uniform_indices(10, 2) and flat[0].source == "fallback"


def test_dilation_offset_and_clipping():
    out = pick([0, 0, 10, 0, 0, 0, 0, 0, 0, 10], AnchorConfig(k=2, dilate_s=1.0, offset_s=0.5))
    assert [(a.start_s, a.end_s) for a in out] == [(1.5, 4.5), (8.5, 10.0)]
    assert [a.time_s for a in out] == [3.0, pytest.approx(np.nextafter(10.0, 0))]  # clipped into [0, 10)
    neg = pick([10, 0, 0, 0], AnchorConfig(k=1, offset_s=-0.25))
    assert (neg[0].start_s, neg[0].end_s, neg[0].time_s) == (0.0, 0.75, 0.25)


def test_uncertainty_widening():
    conf = [0, 0.9, 0, 0, 0.2, 0]
    out = pick([0, 9, 0, 0, 8, 0], AnchorConfig(k=2), confidence=conf)
    assert [(a.start_s, a.end_s) for a in out] == [(1.0, 2.0), (3.0, 6.0)]
    out = pick([0, 9, 0, 0, 8, 0], AnchorConfig(k=2, widen_s=0.5, widen_below=0.1), confidence=conf)
    assert [(a.start_s, a.end_s) for a in out] == [(1.0, 2.0), (4.0, 5.0)]


def test_fallback_when_nothing_stands_out():
    out = pick(np.zeros(10), AnchorConfig(k=3))
    assert [a.source for a in out] == ["fallback"] * 3
    assert [a.index for a in out] == uniform_indices(10, 3) == [1, 5, 8]
    # Windows without audio never anchor: a high score there still means "nothing stands out".
    out = pick([0, 0, 50, 0], AnchorConfig(k=1), coverage=[1, 1, 0, 1])
    assert out[0].source == "fallback"


def test_a_short_video_gets_the_anchors_it_holds():
    one = np.ones(1, np.float32)
    tl = Timeline(video="clip.mp4", fingerprint="f", duration_s=1.0, hop_s=1.0, window_s=1.0, probe="energy",
                  probe_config={}, raw_unit="dB", raw=one * 0, scores=one * 0, confidence=one, coverage=one,
                  norm_center=0.0, norm_scale=1.0, audio_stream=None, sample_rate=16000)
    with pytest.warns(EarmarkWarning, match="clip.mp4: k=2 anchors asked for, but the video holds 1 window: "
                                            "using k=1"):
        out = earmark.anchors(tl, k=2)
    assert [(a.index, a.time_s) for a in out] == [(0, 0.5)]
    check_anchor_config(AnchorConfig(k=11), 10, 10.0, "clip.mp4")  # not an error: anchors() clamps it


def test_config_checks():
    with pytest.raises(ConfigError, match="anchor mode must be one of events, topk, threshold, spread, got 'peaks'"):
        check_anchor_config(AnchorConfig(mode="peaks"), 10, 10.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="spread anchors need k"):
        check_anchor_config(AnchorConfig(k=None, mode="spread"), 10, 10.0)
    with pytest.raises(ConfigError, match="k must be >= 1, got 0"):
        check_anchor_config(AnchorConfig(k=0), 10, 10.0)
    with pytest.raises(ConfigError, match="min-gap must be >= 0, got -1"):
        check_anchor_config(AnchorConfig(min_gap_s=-1), 10, 10.0)
    with pytest.raises(ConfigError, match="dilate must be >= 0"):
        check_anchor_config(AnchorConfig(dilate_s=-0.5), 10, 10.0)
    with pytest.raises(ConfigError, match="offset 12.0 s is not shorter than the video"):
        check_anchor_config(AnchorConfig(offset_s=12.0), 10, 10.0)


def test_merge_regions_half_open():
    assert merge_regions([(3, 4), (0, 1), (1, 2), (5, 7), (6, 8)]) == [(0, 2), (3, 4), (5, 8)]
    assert merge_regions([(1, 1), (2, 3)]) == [(2, 3)]


@st.composite
def anchor_cases(draw):
    n = draw(st.integers(1, 60))
    hop = draw(st.sampled_from([0.25, 0.5, 1.0, 2.0]))
    window = hop * draw(st.sampled_from([1, 2]))
    scores = draw(st.lists(st.floats(-5, 40, allow_nan=False), min_size=n, max_size=n))
    conf = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    k = draw(st.integers(1, n))
    duration = (n - 1) * hop + window * draw(st.sampled_from([0.6, 1.0]))
    cfg = AnchorConfig(k=k, mode=draw(st.sampled_from(["topk", "threshold", "spread"])),
                       min_gap_s=draw(st.sampled_from([0.0, 0.5, 1.0, 3.0])),
                       dilate_s=draw(st.sampled_from([0.0, 0.5, 1.0])),
                       offset_s=draw(st.floats(-0.9, 0.9) if duration > 1 else st.just(0.0)))
    return np.array(scores), np.array(conf), hop, window, duration, cfg


@settings(max_examples=300, deadline=None)
@given(anchor_cases())
def test_anchor_invariants(case):
    scores, conf, hop, window, duration, cfg = case
    out = pick(scores, cfg, hop=hop, window=window, duration=duration, confidence=conf)
    assert len(out) <= cfg.k
    times = [a.index for a in out]
    assert times == sorted(times) and len(set(times)) == len(times)
    for a in out:
        assert 0.0 <= a.start_s < a.end_s <= duration  # non-empty, half-open, inside the video
        assert a.start_s <= a.time_s < a.end_s
        assert 0.0 <= a.confidence <= 1.0
    if out and out[0].source == "audio":
        starts = [a.index * hop for a in out]
        assert all(b - a >= cfg.min_gap_s - 1e-9 for a, b in itertools.pairwise(starts))
        if cfg.mode == "topk":
            # No unpicked window beats the weakest pick unless NMS suppressed it.
            weakest = min(scores[a.index] for a in out)
            for i in range(len(scores)):
                if scores[i] > weakest and i not in times:
                    assert any(abs(i * hop - s) < cfg.min_gap_s - 1e-9 for s in starts)
    merged = merge_regions([(a.start_s, a.end_s) for a in out])
    assert all(lo < hi for lo, hi in merged)
    assert all(prev[1] < nxt[0] for prev, nxt in itertools.pairwise(merged))  # sorted, disjoint, not touching


@given(st.integers(1, 500), st.integers(1, 50))
def test_uniform_indices_spread(n, k):
    idx = uniform_indices(n, k)
    assert len(idx) == min(n, k)
    assert idx == sorted(set(idx)) and idx[0] >= 0 and idx[-1] < n


def test_default_anchors_are_distinct_events_not_two_seconds_of_one_sound():
    # A 1.5 s phone ring loud over windows 31 and 32, and four quieter real sounds elsewhere (the clip).
    z = np.zeros(60)
    z[[31, 32]] = [30.7, 29.0]
    z[[5, 18, 44, 52]] = [6.0, 4.0, 8.0, 2.5]
    old = pick(z, AnchorConfig(k=2, mode="topk", min_gap_s=1.0))
    assert [a.index for a in old] == [31, 32]  # what top-K with a 1 s gap did: both anchors on one ring
    new = pick(z)
    assert [a.index for a in new] == [31, 44]  # one anchor per event, the two strongest events
    assert {a.source for a in new} == {"audio"}
    assert [a.index for a in pick(z, AnchorConfig(k=5))] == [5, 18, 31, 44, 52]


def test_distinct_events_fill_up_outside_the_chosen_events_and_keep_the_gap():
    starts = np.arange(10.0)
    s = np.array([0, 0, 5, 6, 5, 0, 0.5, 0, 0.8, 0], dtype=float)  # one event over windows 2-4
    assert distinct_events(s, starts, 1, 1.0, 2.0) == [3]  # its peak
    assert distinct_events(s, starts, 2, 1.0, 2.0) == [3, 8]  # then the best window outside it
    assert distinct_events(s, starts, 3, 1.0, 2.0) == [3, 6, 8]  # 6 is exactly 2 s from 8: kept (gap 2)
    assert distinct_events(s, starts, 3, 1.0, 2.5) == [0, 3, 8]  # a 2.5 s gap refuses 6: the next best, 0
    flat_top = np.array([0, 4, 4, 4, 4, 0], dtype=float)
    assert distinct_events(flat_top, np.arange(6.0), 1, 1.0, 2.0) == [3]  # equal peaks: the one nearest the centre


def test_events_fill_inside_the_events_before_outside():
    """One 8 s event and K=4: by default the extra anchors spread over the event (a plan's big frames land
    where something happens); --fill outside sends them to the best windows elsewhere."""
    z = np.zeros(30)
    z[10:18] = [3, 5, 6, 8, 7, 6, 5, 3]
    z[25] = 0.9  # a quiet blip under the event level
    inside = [a.index for a in pick(z, AnchorConfig(k=4))]
    assert len(inside) == 4 and all(10 <= i < 18 for i in inside) and np.all(np.diff(inside) >= 2)
    outside = [a.index for a in pick(z, AnchorConfig(k=4, fill="outside"))]
    assert sum(10 <= i < 18 for i in outside) == 1 and 25 in outside
    with pytest.raises(ConfigError, match="anchor fill must be one of inside, outside"):
        check_anchor_config(AnchorConfig(k=2, fill="middle"), 30, 30.0)  # type: ignore[arg-type]


def test_default_gap_is_two_hops():
    z = np.array([0, 9, 8.5, 0.2, 0, 0, 0, 0], dtype=float)
    assert [a.index for a in pick(z, AnchorConfig(k=2, mode="topk"))] == [1, 3]  # 2 is one hop from 1
    assert [a.index for a in pick(z, AnchorConfig(k=2, mode="topk"), hop=0.5, window=0.5)] == [1, 3]


def test_quiet_real_events_are_anchored_and_only_flat_audio_falls_back():
    z = np.zeros(20)
    z[[4, 13]] = [2.2, 1.8]  # quieter than z = 3: the old default replaced them with evenly spaced anchors
    assert [a.source for a in pick(z, AnchorConfig(k=2, min_score=3.0))] == ["fallback", "fallback"]
    got = pick(z)
    assert [(a.index, a.source) for a in got] == [(4, "audio"), (13, "audio")]
    flat = np.random.default_rng(0).normal(0, 0.3, 20)  # robust z of flat audio: no window near 1.5
    assert [a.source for a in pick(flat)] == ["fallback", "fallback"]


def test_spread_puts_a_single_anchor_on_the_region_peak():
    starts = np.arange(8.0)
    s = np.array([0, 0, 0, 30.7, 19.9, 0, 0, 0], dtype=float)
    assert spread(s, starts, 1, 3.0, 1.0) == [3]  # not the later, weaker window 4
