"""media: container facts and the streamed 16 kHz mono decode, checked against ffmpeg itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import earmark
from conftest import SMALL, SR, ffmpeg_decode_16k_mono
from earmark.errors import MediaError, NoAudioStreamError
from earmark.media import info, stream_audio
from earmark.media.write import VideoSpec, write_media


def test_info_reports_streams_rates_and_keyframes(events_mp4):
    vi = info(events_mp4)
    assert vi.duration_s == pytest.approx(12.0, abs=0.05)
    assert vi.start_time_s == 0.0
    assert vi.video is not None
    assert (vi.video.width, vi.video.height) == (64, 48)
    assert vi.video.fps_nominal == pytest.approx(25.0)
    assert vi.video.fps_average == pytest.approx(25.0)
    assert vi.video.frame_count == 300
    assert vi.video.vfr is False
    assert vi.video.rotation == 0
    assert vi.video.keyframe_interval_s == pytest.approx(1.0)  # gop=25 at 25 fps
    assert [a.codec for a in vi.audio_streams] == ["aac"]
    assert vi.default_audio_stream == vi.audio_streams[0].index == 1
    assert vi.audio_streams[0].sample_rate == SR
    assert len(vi.fingerprint) == 16


def test_info_matches_ffprobe(events_mp4, ffmpeg):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                          "stream=width,height,avg_frame_rate,nb_read_packets", "-of", "csv=p=0", str(events_mp4)],
                         check=True, capture_output=True, text=True).stdout.strip().split(",")
    width, height, avg, packets = out
    vi = info(events_mp4)
    num, den = (int(x) for x in avg.split("/"))
    assert (vi.video.width, vi.video.height) == (int(width), int(height))
    assert vi.video.fps_average == pytest.approx(num / den)
    assert vi.video.frame_count == int(packets)


def test_info_detects_vfr_and_rotation(media_dir):
    times = tuple(np.cumsum([0.0] + [0.04, 0.02, 0.08] * 20)[:60].tolist())
    vfr = media_dir / "vfr.mp4"
    write_media(vfr, 3.0, None, video=VideoSpec(64, 48, frame_times=times))
    rot = media_dir / "rot90.mp4"
    write_media(rot, 2.0, None, video=VideoSpec(64, 48, rotation=90))
    assert info(vfr).video.vfr is True
    assert info(rot).video.rotation == 90
    assert info(rot).video.vfr is False


def test_info_of_audio_only_file(events_any):
    vi = info(events_any)
    assert vi.has_audio
    assert vi.has_video == (events_any.suffix != ".wav")
    assert vi.duration_s == pytest.approx(12.0, abs=0.05)


@pytest.mark.parametrize("channels,rate", [(1, 48_000), (2, 44_100)])
def test_decode_matches_ffmpeg(media_dir, ffmpeg, channels, rate):
    """Sample count and RMS of our 16 kHz mono decode agree with ``ffmpeg -ac 1 -ar 16000``."""
    t = np.arange(int(5 * rate)) / rate
    audio = (0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2).astype(np.float32)
    path = media_dir / f"golden_{channels}ch_{rate}.mp4"
    write_media(path, 5.0, audio, rate, video=SMALL, channels=channels)
    ours = np.concatenate(list(stream_audio(info(path))))
    ref = ffmpeg_decode_16k_mono(path)
    assert abs(len(ours) - len(ref)) <= 16  # within 1 ms
    n = min(len(ours), len(ref))
    rms = lambda x: float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    assert rms(ours[:n]) == pytest.approx(rms(ref[:n]), rel=0.01)
    corr = np.corrcoef(ours[:n], ref[:n])[0, 1]
    assert corr > 0.99


def test_decode_is_streamed_in_bounded_chunks(events_mp4):
    chunks = stream_audio(info(events_mp4), chunk_s=0.5)
    sizes = [len(c) for c in chunks]
    assert max(sizes) == 8000  # 0.5 s at 16 kHz: never the whole track
    assert len(sizes) >= 24
    assert sum(sizes) == pytest.approx(12 * 16_000, abs=400)
    assert chunks.audio_start_s == 0.0
    assert chunks.audio_end_s == pytest.approx(12.0, abs=0.05)


def test_late_audio_is_aligned_to_the_picture(media_dir):
    """A burst 3 s into an audio track that starts 2 s after the picture is at second 5 of the index."""
    audio = np.zeros(10 * SR, dtype=np.float32)
    audio[3 * SR:4 * SR] = 0.5 * np.sin(2 * np.pi * 500 * np.arange(SR) / SR)
    audio += 0.001 * np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32)
    path = media_dir / "late.mp4"
    write_media(path, 10.0, audio, SR, video=SMALL, audio_start_s=2.0)
    with pytest.warns(earmark.EarmarkWarning, match="audio starts at 1.98 s, after the picture"):
        tl = earmark.index(path)
    assert [a.index for a in earmark.anchors(tl, k=1)] == [5]
    assert tl.coverage[0] == 0.0 and tl.coverage[1] < 0.05 and tl.coverage[3] == 1.0
    assert tl.confidence[0] == 0.0


def test_audio_stream_selection(media_dir, events_mp4, ffmpeg):
    """Two audio tracks: the default is the first; ``audio_stream=2`` reads the second."""
    second = media_dir / "second_track.wav"
    tone = np.zeros(12 * SR, dtype=np.float32)
    tone[4 * SR:5 * SR] = 0.5 * np.sin(2 * np.pi * 700 * np.arange(SR) / SR)
    tone += 0.001 * np.random.default_rng(1).standard_normal(len(tone)).astype(np.float32)
    write_media(second, 12.0, tone, SR)
    both = media_dir / "two_tracks.mkv"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(events_mp4), "-i", str(second), "-map", "0:v", "-map",
                    "0:a", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(both)], check=True)
    vi = info(both)
    assert [a.index for a in vi.audio_streams] == [1, 2]
    assert [a.index for a in earmark.anchors(earmark.index(both), k=1)] in ([2], [6], [9])
    assert [a.index for a in earmark.anchors(earmark.index(both, audio_stream=2), k=1)] == [4]
    with pytest.raises(MediaError, match=r"stream #0 is not an audio stream; audio streams: #1, #2"):
        earmark.index(both, audio_stream=0)


def test_no_audio_stream_is_a_clear_error(silent_video):
    with pytest.raises(NoAudioStreamError) as e:
        earmark.index(silent_video, fallback=None)
    msg = str(e.value)
    assert msg.startswith(f"{silent_video}: no audio stream")
    assert "visual fallback probe" in msg


@pytest.mark.parametrize("content,problem", [
    (None, "file not found"),
    (b"", "file is empty (0 bytes)"),
    (b"hello, this is a text file and not a video\n" * 20, "not a media file, or corrupt/truncated"),
    (bytes(range(256)) * 64, "not a media file, or corrupt/truncated"),
])
def test_bad_files_name_the_file_and_problem(tmp_path, content, problem):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MediaError) as e:
        info(path)
    assert str(e.value).startswith(f"{path}: {problem}")


def test_truncated_file_is_a_clear_error(tmp_path, events_mp4):
    """An MP4 cut in half loses its index (moov at the end): not openable, and we say so."""
    data = Path(events_mp4).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match=r"cut\.mp4: not a media file, or corrupt/truncated \(FFmpeg: "):
        earmark.index(cut)


def test_directory_is_not_a_media_file(tmp_path):
    with pytest.raises(MediaError, match="is a directory"):
        info(tmp_path)


def test_decode_from_a_seek_matches_the_full_decode(events_mp4):
    """``start_s`` seeks and yields the same timeline samples a full decode yields there (after AAC settles)."""
    vi = info(events_mp4)
    full = np.concatenate(list(stream_audio(vi)))
    part = np.concatenate(list(stream_audio(vi, start_s=5.0, end_s=9.0)))
    assert len(part) == 4 * 16_000
    ref = full[5 * 16_000:9 * 16_000]
    # The first AAC frame after a seek lacks its overlap-add partner, and an AAC frame is 341.33 samples
    # at 16 kHz, so the restart can sit a third of a sample off: compare the signal after 0.1 s, not samples.
    a, b = part[1600:].astype(np.float64), ref[1600:].astype(np.float64)
    assert np.corrcoef(a, b)[0, 1] > 0.98
    block = lambda x: np.sqrt(np.mean(x.reshape(-1, 160) ** 2, axis=1))
    np.testing.assert_allclose(20 * np.log10(block(a) + 1e-9), 20 * np.log10(block(b) + 1e-9), atol=0.5)


def test_resampling_in_blocks_is_bit_identical_to_frame_by_frame(events_mp4, monkeypatch):
    """Decoded frames are gathered into blocks before resampling (PyAV's per-call overhead cost more CPU than the
    decoding); libswresample streams, so every sample is the same as one resampler call per decoded frame."""
    import av

    from earmark.media import audio

    vi = info(events_mp4)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
    ref = []
    with av.open(str(events_mp4)) as c:
        for frame in c.decode(c.streams.audio[0]):
            ref += [np.frombuffer(o.planes[0], np.float32, o.samples) for o in resampler.resample(frame)]
    ref += [np.frombuffer(o.planes[0], np.float32, o.samples) for o in resampler.resample(None)]
    ref = np.concatenate(ref)
    for block in (1, 5000, audio.RESAMPLE_BLOCK):
        monkeypatch.setattr(audio, "RESAMPLE_BLOCK", block)
        ours = np.concatenate(list(stream_audio(vi)))
        assert ours.tobytes() == ref[: len(ours)].tobytes()
        assert len(ours) == len(ref)


def test_a_stream_that_changes_layout_and_rate_is_decoded_whole(tmp_path, ffmpeg):
    """An MPEG-TS audio stream that goes from 48 kHz mono to 44.1 kHz stereo (two captures joined, as broadcast
    recordings are): both parts are decoded, in order (before: ValueError from the resampler)."""
    parts = []
    for name, freq, rate, ch in (("a", 440, 48_000, 1), ("b", 1760, 44_100, 2)):
        parts.append(tmp_path / f"{name}.ts")
        subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate={rate}:"
                        "duration=3", "-c:a", "aac", "-ac", str(ch), str(parts[-1])], check=True)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    x = np.concatenate(list(stream_audio(info(joined))))
    assert len(x) == pytest.approx(6 * 16_000, abs=1600)
    peak_hz = [np.argmax(np.abs(np.fft.rfft(x[a:a + 16_000]))) for a in (8_000, len(x) - 24_000)]
    assert peak_hz == [440, 1760]  # 1 Hz bins: the first part, then the second


def test_zero_length_media_is_a_clear_error(tmp_path, capsys, ffmpeg):
    """A valid WAV header with no samples: the file exists and opens, but holds nothing to index."""
    path = tmp_path / "zero.wav"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "anullsrc", "-t", "0", str(path)], check=True)
    assert path.stat().st_size > 0
    with pytest.raises(MediaError, match=r"zero\.wav: zero-length: the file declares no duration and holds no media"):
        info(path)
    from earmark.cli import main

    assert main(["index", str(path)]) == 1
    assert "zero-length" in capsys.readouterr().err


def test_a_header_that_lies_about_the_duration_is_not_believed(tmp_path, ffmpeg):
    """A 6 s Matroska file whose Segment Duration says ten hours: info, index and plan use the 6 s the streams
    hold (before: 36000 s, windows to match, and planned frames at thousands of seconds)."""
    import struct

    clip = write_media(tmp_path / "ok.mkv", 6.0, np.zeros(6 * 48_000), video=VideoSpec(160, 96, 25.0))
    data = bytearray(clip.read_bytes())
    at = data.find(b"\x44\x89\x88")  # EBML Duration, an 8-byte float in milliseconds
    assert at > 0
    data[at + 3:at + 11] = struct.pack(">d", 3.6e7)
    lie = tmp_path / "lie.mkv"
    lie.write_bytes(bytes(data))
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(lie)],
                           capture_output=True, text=True, check=True).stdout
    assert float(probe) == pytest.approx(36000.0)  # what the header says
    assert info(lie).duration_s == pytest.approx(info(clip).duration_s, abs=1e-6)
    assert info(lie).duration_s == pytest.approx(6.0, abs=0.05)
    tl = earmark.index(lie)
    assert len(tl) == 6
    res = earmark.IndexResult(info=info(lie), timeline=tl, anchors=tuple(earmark.anchors(tl, k=2)),
                              anchor_config={})
    p = earmark.plan(res, "qwen2.5-vl", 2000)
    assert max(f.time_s for f in p.frames) < 6.0


@pytest.mark.parametrize("angle,turn", [(45, 0), (100, 90), (90, 90)])
def test_a_display_rotation_is_a_quarter_turn(tmp_path, ffmpeg, capsys, angle, turn):
    """A 45° display matrix was reported as 45, and the index earmark wrote could not be read back."""
    from earmark.cli import main

    src = write_media(tmp_path / "src.mp4", 2.0, np.zeros(2 * 48_000), video=VideoSpec(160, 96, 25.0))
    rot = tmp_path / f"rot{angle}.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(src), "-c", "copy", "-metadata:s:v:0", f"rotate={angle}",
                    str(rot)], check=True)
    idx = tmp_path / "i.json"
    assert main(["index", str(rot), "--out", str(idx), "-q"]) == 0
    assert main(["plan", str(idx), "--model", "vit-p16", "--budget", "400", "-q"]) == 0
    err = capsys.readouterr().err
    assert info(rot).video.rotation == turn
    # (FFmpeg's display matrix keeps 100° as 99°)
    assert (f"is not a quarter turn: frames are turned {turn}° (the nearest)" in err) == (angle % 90 != 0), err
    assert (f"{rot}: display rotation" in err) == (angle % 90 != 0)
