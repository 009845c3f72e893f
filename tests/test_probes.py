"""probes: registry, window grid, normalisation, and anchors landing on known event seconds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import earmark
from conftest import EVENT_SECONDS, SMALL, SR, events_audio
from earmark.cli import main
from earmark.errors import ConfigError, UnknownNameError
from earmark.media.write import write_media
from earmark.probes import ProbeConfig, get_probe, normalise, probe_names, register_probe, window_grid
from earmark.probes.base import FRAME_HOP, FrameStream, Probe, reduce_frames
from earmark.synth import Event

DSP = ["energy", "flux", "onset"]


def test_registry_lists_dsp_probes_and_rejects_unknown_names():
    assert set(DSP) <= set(probe_names())
    with pytest.raises(UnknownNameError) as e:
        get_probe("loudness")
    assert str(e.value) == "unknown probe 'loudness'; valid probes: " + ", ".join(probe_names())
    assert {"energy", "flux", "onset", "vad", "ast", "linear", "motion", "cut", "novelty", "hybrid",
            "transfer"} <= set(probe_names())


def test_probe_config_overrides_and_bad_settings():
    p = get_probe("flux", n_mels=40)
    assert p.config.n_mels == 40
    with pytest.raises(ConfigError, match="probe 'flux'.*its settings are: z_ref, min_scale, n_fft"):
        get_probe("flux", bogus=1)


def test_a_registered_probe_is_usable_by_name(events_mp4):
    @dataclass(frozen=True)
    class PeakConfig(ProbeConfig):
        min_scale: float = 0.01

    @register_probe
    class PeakProbe(Probe):
        name = "test-peak"
        Config = PeakConfig
        raw_unit = "abs"
        reduce = "max"

        def frame_values(self, frames):
            return np.abs(frames).max(axis=1)

    try:
        tl = earmark.index(events_mp4, probe="test-peak")
        assert tl.probe == "test-peak" and len(tl) == 12
        assert sorted(a.index for a in earmark.anchors(tl, k=3)) == EVENT_SECONDS
    finally:
        from earmark.probes import base

        base._REGISTRY.pop("test-peak")


def test_index_reports_progress_in_media_seconds(events_mp4):
    seen = []
    tl = earmark.index(events_mp4, jobs=1, progress=lambda *a: seen.append(a))
    assert seen and {s for s, _, _ in seen} == {"index"}
    done = [d for _, d, _ in seen]
    assert done == sorted(done) and seen[-1][1] == seen[-1][2] == pytest.approx(tl.starts[-1] + tl.window_s, abs=1.0)


@pytest.mark.parametrize("duration,hop,window,n", [(10.0, 1.0, 1.0, 10), (9.98, 1.0, 1.0, 10), (10.01, 1.0, 1.0, 10),
                                                   (10.6, 1.0, 1.0, 11), (10.0, 0.5, 1.0, 19), (0.4, 1.0, 1.0, 1),
                                                   (60.0, 2.0, 4.0, 29)])
def test_window_grid(duration, hop, window, n):
    g = window_grid(duration, hop, window)
    assert g.n == n
    assert g.starts()[-1] == pytest.approx((n - 1) * hop)


@pytest.mark.parametrize("hop,window,msg", [(0.0, 1.0, "hop must be > 0 seconds, got 0.0"),
                                            (-1.0, 1.0, "hop must be > 0 seconds, got -1.0"),
                                            (1.0, 0.0, "window must be > 0 seconds, got 0.0"),
                                            (1.0, 0.001, "must be >= 0.01 s and window")])
def test_bad_hop_or_window(hop, window, msg):
    with pytest.raises(ConfigError, match=msg):
        window_grid(10.0, hop, window)


@pytest.mark.parametrize("probe", DSP)
def test_anchors_land_on_event_seconds(events_any, probe):
    """Tone, noise and chirp bursts at seconds 2, 6, 9: top-3 anchors with dilation 0 are exactly those windows."""
    tl = earmark.index(events_any, probe=probe)
    assert len(tl) == 12
    anchors = earmark.anchors(tl, k=3, dilate_s=0.0, widen_s=0.0)
    assert [a.index for a in anchors] == EVENT_SECONDS
    assert [(a.start_s, a.end_s) for a in anchors] == [(s, s + 1.0) for s in EVENT_SECONDS]
    assert all(a.source == "audio" for a in anchors)
    assert all(a.confidence > 0 for a in anchors)
    # Uncertainty widening: with the default settings, anchors below confidence 0.5 gain a hop each side.
    for a in earmark.anchors(tl, k=3):
        expected = (a.index - 1.0, a.index + 2.0) if a.confidence < 0.5 else (a.index, a.index + 1.0)
        assert (a.start_s, a.end_s) == expected


def test_low_snr_burst_still_ranks_top2_for_energy(media_dir):
    audio = events_audio(events=(Event("noise", 7.0, 8.0),), snr_db=5.0, seed=4)
    path = media_dir / "snr5.mp4"
    write_media(path, 12.0, audio, SR, video=SMALL)
    tl = earmark.index(path, probe="energy")
    assert 7 in [a.index for a in earmark.anchors(tl, k=2)]
    assert int(np.argmax(tl.scores)) == 7


def test_energy_raw_is_rms_dbfs(media_dir):
    """A sine of amplitude 0.5 has RMS 0.5/sqrt(2): -9.03 dBFS."""
    t = np.arange(4 * SR) / SR
    path = media_dir / "sine.wav"
    write_media(path, 4.0, (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), SR)
    tl = earmark.index(path, probe="energy")
    assert tl.raw_unit == "dBFS"
    np.testing.assert_allclose(tl.raw[:3], 20 * np.log10(0.5 / np.sqrt(2)), atol=0.1)


@pytest.mark.parametrize("probe", DSP)
def test_flat_and_silent_audio_fall_back_to_uniform(media_dir, probe):
    flat = media_dir / "flat.wav"
    silent = media_dir / "silent.wav"
    if not flat.exists():
        write_media(flat, 10.0, events_audio(10.0, events=(), seed=7), SR)
        write_media(silent, 10.0, np.zeros(10 * SR, np.float32), SR)
    for path in (flat, silent):
        tl = earmark.index(path, probe=probe)
        assert np.isfinite(tl.scores).all()
        anchors = earmark.anchors(tl, k=2)
        assert [a.source for a in anchors] == ["fallback", "fallback"]
        assert [a.index for a in anchors] == [2, 7]


@pytest.mark.parametrize("probe", DSP)
def test_frame_values_do_not_depend_on_chunking(events_audio_48k, probe):
    """Streaming must give the same frame values whatever the chunk sizes (state carried across chunks)."""
    from scipy.signal import resample_poly

    x = resample_poly(events_audio_48k, 1, 3).astype(np.float32)
    n_frames = len(x) // FRAME_HOP - 4
    whole = get_probe(probe).frame_values_stream([x], n_frames)
    cuts = np.cumsum(np.random.default_rng(0).integers(50, 5000, 200))
    parts = np.split(x, cuts[cuts < len(x)])
    chunked = get_probe(probe).frame_values_stream(parts, n_frames)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)


def test_framestream_frames_are_hop_spaced():
    fs = FrameStream(length=4, hop=2)
    a = fs.push(np.arange(5, dtype=np.float32))
    b = fs.push(np.arange(5, 9, dtype=np.float32))
    frames = np.concatenate([a, b])
    np.testing.assert_array_equal(frames[:, 0], [0, 2, 4])
    np.testing.assert_array_equal(frames[-1], [4, 5, 6, 7])


def test_reduce_frames_assigns_frames_by_newest_sample():
    g = window_grid(2.0, 1.0, 1.0)
    values = np.arange(201, dtype=np.float64)
    # 160-sample frames: frame i ends at sample 160 i + 159, so frames 0..99 are window 0.
    np.testing.assert_allclose(reduce_frames(values, g, 160, "mean"), [49.5, 149.5])
    np.testing.assert_allclose(reduce_frames(values, g, 160, "max"), [99, 199])
    # 512-sample frames end 31.9 ms after they start: frames 0..96 are window 0, 97..196 window 1.
    np.testing.assert_allclose(reduce_frames(values, g, 512, "max"), [96, 196])


def test_normalise_is_robust_and_floors_the_scale():
    raw = np.array([10.0, 10.5, 9.5, 10.0, 30.0])
    cov = np.ones(5)
    cfg = ProbeConfig(min_scale=0.1, z_ref=3.0)
    n = normalise(raw, cov, cfg)
    assert n.center == 10.0
    assert n.scale == pytest.approx(1.4826 * 0.5)
    assert n.scores[-1] == pytest.approx(20 / (1.4826 * 0.5), rel=1e-5)
    n_flat = normalise(np.full(5, -120.0), cov, cfg)
    assert n_flat.scale == 0.1 and (n_flat.scores == 0).all() and (n_flat.confidence == 0).all()
    # Confidence is 0.5 at z_ref and scaled by coverage.
    half = normalise(np.array([0.0, 0.0, 0.0, 3.0]), np.array([1, 1, 1, 0.5]), ProbeConfig(min_scale=1.0))
    assert half.confidence[-1] == pytest.approx(0.25)


def test_overlapping_windows(events_mp4):
    tl = earmark.index(events_mp4, probe="energy", hop_s=0.5, window_s=1.0)
    assert len(tl) == 23
    best = earmark.anchors(tl, k=1)[0]
    assert best.start_s in (2.0, 6.0, 9.0)
    assert best.end_s - best.start_s == 1.0


@pytest.mark.parametrize("probe", DSP)
def test_segmented_index_is_independent_of_jobs_and_close_to_one_pass(events_mp4, probe):
    """Long files are cut into fixed segments: any number of workers gives identical bytes, and the
    result stays within a whisker of a single pass (same anchors)."""
    one_pass = earmark.index(events_mp4, probe=probe)
    seg1 = earmark.index(events_mp4, probe=probe, segment_s=3.0, jobs=1)
    seg2 = earmark.index(events_mp4, probe=probe, segment_s=3.0, jobs=2)
    assert seg1 == seg2
    assert [a.index for a in earmark.anchors(seg1, k=3)] == EVENT_SECONDS
    np.testing.assert_allclose(seg1.raw, one_pass.raw, atol=0.05 * max(1.0, float(np.abs(one_pass.raw).max())))
    with pytest.raises(ConfigError, match="jobs must be >= 1, got 0"):
        earmark.index(events_mp4, probe=probe, jobs=0)


def test_segmented_index_of_audio_shorter_than_video(media_dir):
    """Audio that ends in an early segment: later segments seek past it; coverage and the warning must match
    a single pass (the segment grid must not invent audio, nor fail)."""
    path = media_dir / "short_audio_long_video.mp4"
    if not path.exists():
        audio = events_audio(12.0, seed=5)
        write_media(path, 12.0, audio, SR, video=SMALL, audio_duration_s=5.0)
    with pytest.warns(earmark.EarmarkWarning, match="ends at 5.0"):
        one_pass = earmark.index(path)
    with pytest.warns(earmark.EarmarkWarning, match="ends at 5.0"):
        segmented = earmark.index(path, segment_s=3.0, jobs=1)
    np.testing.assert_array_equal(segmented.coverage, one_pass.coverage)
    assert segmented.coverage[6:].max() == 0.0 and segmented.coverage[4] == 1.0
    np.testing.assert_array_equal(segmented.confidence[6:], 0.0)


@pytest.mark.parametrize("args,message", [
    (["--probe", "flux", "--probe-option", "n_fft=0"], "probe 'flux': n_fft must be between 64 and 8192, got 0"),
    (["--probe", "flux", "--probe-option", "n_fft=abc"], "probe 'flux': n_fft must be an integer, got 'abc'"),
    (["--probe", "flux", "--probe-option", "n_mels=100000"], "n_mels must be between 1 and 256, got 100000"),
    (["--probe", "flux", "--probe-option", "n_mels=0"], "n_mels must be between 1 and 256, got 0"),
    (["--probe", "flux", "--probe-option", "fmin=7000", "--probe-option", "fmax=6000"],
     "probe 'flux': fmin (7000 Hz) must be below fmax (6000 Hz)"),
    (["--probe", "onset", "--probe-option", "lag=-5"], "probe 'onset': lag must be between 1 and 100, got -5"),
    (["--probe", "onset", "--probe-option", "max_size=1e9"], "max_size must be an integer, got 1000000000.0"),
    (["--probe-option", "min_scale=[1,2]"], "probe 'energy': min_scale must be a finite number, got [1, 2]"),
    (["--probe-option", "min_scale=NaN"], "probe 'energy': min_scale must be a finite number, got nan"),
    (["--probe-option", "z_ref=0"], "probe 'energy': z_ref must be between 0.001 and 1000, got 0.0"),
    (["--probe", "motion", "--probe-option", "fps=100000"], "probe 'motion': fps must be between 0.01 and 30"),
    (["--probe", "motion", "--probe-option", "size=100000"], "probe 'motion': size must be between 8 and 1024"),
    (["--offset", "nan"], "offset must be a finite number, got nan"),
    (["--min-gap", "inf"], "min-gap must be a finite number, got inf"),
])
def test_probe_and_anchor_settings_out_of_range_are_one_line_before_decoding(capsys, events_mp4, tmp_path, args,
                                                                             message):
    # Before: "internal error" (exit 70) after a full decode, or minutes and gigabytes (n_mels, fps).
    out = tmp_path / "i.json"
    assert main(["index", str(events_mp4), *args, "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "internal error" not in err, err
    assert not out.exists()


def test_probe_settings_of_the_right_kind_are_normalised():
    p = get_probe("flux", fmin=50)
    assert p.config.fmin == 50.0 and isinstance(p.config.fmin, float)


@pytest.mark.parametrize("n_mels,fmin,fmax,frame", [(64, 30.0, 8000.0, 512), (32, 30.0, 8000.0, 400),
                                                     (40, 100.0, 4000.0, 512)])
def test_the_log_mel_front_end_matches_transformers_audio_utils(n_mels, fmin, fmax, frame):
    """earmark's one log-mel front end (flux, onset, linear, learned and eval's Audio-concat) against an
    independent implementation: transformers.audio_utils (periodic Hann, power spectrum, Slaney-normalised HTK
    mel filters, 10·log10)."""
    audio_utils = pytest.importorskip("transformers.audio_utils")
    from earmark.probes.dsp import log_mel, mel_filterbank

    sr = 16_000  # earmark's analysis rate
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(sr) + 0.3 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
    hop = 160
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]
    ours = log_mel(frames, 512, n_mels, fmin, fmax)
    fb = audio_utils.mel_filter_bank(257, n_mels, fmin, fmax, sr, norm="slaney", mel_scale="htk")
    np.testing.assert_allclose(mel_filterbank(sr, 512, n_mels, fmin, fmax), fb, rtol=1e-5, atol=1e-9)
    ref = audio_utils.spectrogram(x, audio_utils.window_function(frame, "hann", periodic=True), frame, hop,
                                  fft_length=512, power=2.0, center=False, mel_filters=fb, log_mel="dB",
                                  mel_floor=1e-10, dtype=np.float64)
    assert ref.T.shape == ours.shape
    np.testing.assert_allclose(ours, ref.T, atol=2e-3)


def test_mel_power_in_row_blocks_equals_one_transform_of_all_rows(events_audio_48k):
    """mel_power transforms 64 frames per call (small temporaries): every value equals one rfft over all rows, for
    float32 and float64 frames, a row count that is no multiple of 64, and no rows at all."""
    from scipy.signal import resample_poly

    from earmark.probes.dsp import _hann, mel_filterbank, mel_power

    x = resample_poly(events_audio_48k, 1, 3).astype(np.float32)
    for frames in (np.lib.stride_tricks.sliding_window_view(x, 512)[::160][:1001],
                   np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), 400)[::160][:130], x[:0, None]):
        spec = np.fft.rfft(frames * _hann(frames.shape[1]), n=512, axis=1)
        ref = (spec.real**2 + spec.imag**2).astype(np.float32) @ mel_filterbank(16_000, 512, 64, 30.0, 8000.0)
        ours = mel_power(frames)
        assert ours.shape == ref.shape and ours.dtype == ref.dtype and ours.tobytes() == ref.tobytes()


def test_the_band_maximum_filter_is_scipys():
    """onset's vibrato suppression: max_filter_bands is scipy.ndimage.maximum_filter1d(mode="nearest") for every
    allowed size, odd and even, without importing scipy."""
    from scipy.ndimage import maximum_filter1d

    from earmark.probes.dsp import max_filter_bands

    s = np.random.default_rng(0).standard_normal((40, 64)).astype(np.float32)
    for size in range(1, 65):
        assert max_filter_bands(s, size).tobytes() == maximum_filter1d(s, size, axis=1, mode="nearest").tobytes()
