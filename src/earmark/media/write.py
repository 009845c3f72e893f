"""Write real media files with PyAV (H.264/VP9/MPEG-4 + AAC/Opus/PCM), streamed: for the demo, tests, benchmarks.

Audio and picture come from callables/arrays, so a one-hour file never sits in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .._io import atomic_path

FrameFn = Callable[[int, float], np.ndarray]
"""``frame_fn(i, t)`` -> the i-th picture (H, W, 3) uint8 shown at time t."""

_CONTAINER_DEFAULTS = {
    ".mp4": ("libx264", "aac"),
    ".mov": ("libx264", "aac"),
    ".mkv": ("libx264", "libopus"),
    ".webm": ("libvpx-vp9", "libopus"),
    ".wav": (None, "pcm_s16le"),
    ".m4a": (None, "aac"),
}


@dataclass(frozen=True)
class VideoSpec:
    """The picture track: size, rate, codec and how keyframes / B-frames are laid out."""

    width: int = 160
    height: int = 90
    fps: float = 25.0
    codec: str | None = None
    gop: int | None = None
    """Frames between keyframes (None: the encoder's default)."""
    bframes: int = 0
    rotation: int = 0
    frame_times: tuple[float, ...] | None = None
    """Explicit presentation times (makes a variable-frame-rate file); default: ``i / fps``."""
    crf: int = 28


def _solid(i: int, t: float, w: int, h: int) -> np.ndarray:
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[...] = ((i * 3) % 256, 96, 160)
    return img


def write_media(path: str | Path, duration_s: float, audio: np.ndarray | Callable[[int, int], np.ndarray] | None,
                sample_rate: int = 48_000, video: VideoSpec | None = VideoSpec(), frame_fn: FrameFn | None = None,
                audio_codec: str | None = None, audio_start_s: float = 0.0, channels: int = 1,
                audio_duration_s: float | None = None) -> Path:
    """Write ``path`` (container from the suffix) atomically.

    ``audio``: a mono float array in [-1, 1] at ``sample_rate``, or ``fn(start_sample, n) -> array`` for
    long files, or None for a silent (no audio stream) file. ``video``: None for an audio-only file.
    ``audio_start_s`` delays the audio stream's first timestamp (audio that starts after the picture);
    ``audio_duration_s`` makes the audio track shorter than the picture.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    default_v, default_a = _CONTAINER_DEFAULTS.get(suffix, ("libx264", "aac"))
    if default_v is None and (video is None or video.codec is None):
        video = None  # audio-only container
    with atomic_path(path) as tmp:
        fmt = {".mkv": "matroska", ".webm": "webm", ".mp4": "mp4", ".mov": "mov", ".wav": "wav",
               ".m4a": "ipod"}.get(suffix)
        with av.open(str(tmp), mode="w", format=fmt) as out:
            vstream = astream = None
            if video is not None:
                vstream = _add_video(out, video, default_v)
            if audio is not None:
                acodec = audio_codec or default_a
                rate = 48_000 if "opus" in acodec else sample_rate
                # ffmpeg's AAC encoder with its "fast" coder: 2.3× faster than the default two-loop search (10 vs
                # 25 ms per 10 s at 16 kHz); the quality difference does not matter for generated media.
                opts = {"aac_coder": "fast"} if acodec == "aac" else {}
                astream = out.add_stream(acodec, rate=rate, options=opts)
                astream.layout = "mono" if channels == 1 else "stereo"
                if "opus" in acodec and rate != sample_rate:
                    audio = _resample_source(audio, sample_rate, rate, duration_s)
                sample_rate = rate
            # Interleave by time so muxers never buffer a whole track.
            v_iter = _video_packets(vstream, video, duration_s, frame_fn) if vstream is not None else iter(())
            a_end = duration_s if audio_duration_s is None else audio_start_s + audio_duration_s
            a_iter = (_audio_packets(astream, audio, sample_rate, a_end, audio_start_s, channels)
                      if astream is not None else iter(()))
            _mux_interleaved(out, v_iter, a_iter)
    return path


def _add_video(out, spec: VideoSpec, default_codec: str | None):
    codec = spec.codec or default_codec or "libx264"
    rate = Fraction(spec.fps).limit_denominator(1001)
    s = out.add_stream(codec, rate=rate)
    s.width, s.height = spec.width, spec.height
    s.pix_fmt = "yuv420p"
    opts = {}
    if codec == "libx264":
        opts = {"crf": str(spec.crf), "preset": "ultrafast" if spec.bframes == 0 else "veryfast",
                "bf": str(spec.bframes)}
        if spec.gop:
            opts["keyint_min"] = str(spec.gop)
            opts["sc_threshold"] = "0"
    elif codec.startswith("libvpx"):
        opts = {"deadline": "realtime", "cpu-used": "8", "crf": "40", "b:v": "0"}
    s.options = opts
    if spec.gop:
        s.codec_context.gop_size = spec.gop
    if spec.frame_times is not None:
        s.codec_context.time_base = Fraction(1, 1000)
        s.time_base = Fraction(1, 1000)
    if spec.rotation:
        s.set_display_rotation(spec.rotation)
    return s


def _video_packets(stream, spec: VideoSpec, duration_s: float, frame_fn: FrameFn | None):
    times = spec.frame_times
    n = len(times) if times is not None else int(round(duration_s * spec.fps))
    for i in range(n):
        t = times[i] if times is not None else i / spec.fps
        img = frame_fn(i, t) if frame_fn else _solid(i, t, spec.width, spec.height)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        frame.pts = int(round(t * 1000)) if times is not None else i
        if times is not None:
            frame.time_base = Fraction(1, 1000)
        for p in stream.encode(frame):
            yield t, p
    for p in stream.encode(None):
        yield duration_s, p


def _audio_packets(stream, audio, sr: int, duration_s: float, start_s: float, channels: int):
    n_total = int(round((duration_s - start_s) * sr))
    frame_size = stream.codec_context.frame_size or 1024
    first = int(round(start_s * sr))
    block = frame_size * 16
    for a in range(0, n_total, block):
        n = min(block, n_total - a)
        chunk = audio[a:a + n] if isinstance(audio, np.ndarray) else audio(a, n)
        chunk = np.clip(np.asarray(chunk, dtype=np.float32), -1.0, 1.0)
        if len(chunk) < n:
            chunk = np.concatenate([chunk, np.zeros(n - len(chunk), np.float32)])
        planes = np.repeat(chunk[None, :], channels, axis=0) if channels > 1 else chunk[None, :]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planes), format="fltp",
                                           layout="mono" if channels == 1 else "stereo")
        frame.sample_rate = sr
        frame.pts = first + a
        frame.time_base = Fraction(1, sr)
        for p in stream.encode(frame):
            yield (first + a) / sr, p
    for p in stream.encode(None):
        yield duration_s, p


def _mux_interleaved(out, v_iter: Iterable, a_iter: Iterable) -> None:
    v_iter, a_iter = iter(v_iter), iter(a_iter)
    nv, na = next(v_iter, None), next(a_iter, None)
    while nv is not None or na is not None:
        if na is None or (nv is not None and nv[0] <= na[0]):
            out.mux(nv[1])
            nv = next(v_iter, None)
        else:
            out.mux(na[1])
            na = next(a_iter, None)


def _resample_source(audio, sr_in: int, sr_out: int, duration_s: float):
    """Opus only takes 48 kHz: resample a whole array (test/demo sizes) with scipy's polyphase filter."""
    from scipy.signal import resample_poly

    if not isinstance(audio, np.ndarray):
        audio = audio(0, int(round(duration_s * sr_in)))
    g = np.gcd(sr_in, sr_out)
    return resample_poly(audio, sr_out // g, sr_in // g).astype(np.float32)


def draw_number(img: np.ndarray, n: int, bits: int = 16, band: float = 0.2) -> np.ndarray:
    """Write ``n`` into the top ``band`` of a picture (luma plane or RGB, in place) as ``bits`` black/white blocks.

    Test and benchmark media carry their frame number this way, so extracted frames can be checked to be the
    right ones at any size (read back with :func:`read_number`). Bit i is block i from the left, MSB first.
    """
    h, w = img.shape[:2]
    rows = max(1, int(h * band))
    for i in range(bits):
        img[:rows, i * w // bits:(i + 1) * w // bits] = 235 if (n >> (bits - 1 - i)) & 1 else 16
    return img


def read_number(rgb: np.ndarray, bits: int = 16, band: float = 0.2) -> int:
    """The number :func:`draw_number` wrote, read from a picture of any size (stretched, not padded or cropped)."""
    h, w = rgb.shape[:2]
    row = rgb[max(0, int(h * band / 2))].reshape(w, -1).mean(axis=-1)
    n = 0
    for i in range(bits):
        n = (n << 1) | int(row[int((i + 0.5) * w / bits)] > 128)
    return n
