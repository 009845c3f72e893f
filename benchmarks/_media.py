"""Long benchmark media, generated once with PyAV and cached under benchmarks/_media/ (git-ignored)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from earmark.media.write import VideoSpec, draw_number, read_number, write_media
from earmark.synth import Event, mix

MEDIA = Path(__file__).parent / "_media"
SR = 48_000


def long_av(minutes: int, seed: int = 0) -> Path:
    """A ``minutes``-long H.264 + AAC (48 kHz stereo) file with a small picture and an event every ~37 s."""
    path = MEDIA / f"long_{minutes}min.mp4"
    if path.exists():
        return path
    MEDIA.mkdir(parents=True, exist_ok=True)
    duration = minutes * 60.0
    block_s = 60.0

    def audio(start: int, n: int) -> np.ndarray:
        # Generated a minute at a time so an hour of audio never sits in memory.
        out = np.empty(n, dtype=np.float32)
        done = 0
        while done < n:
            pos = start + done
            b = pos // int(block_s * SR)
            block = _block(int(b), block_s, seed)
            off = pos - b * int(block_s * SR)
            take = min(n - done, len(block) - off)
            out[done:done + take] = block[off:off + take]
            done += take
        return out

    write_media(path, duration, audio, SR, VideoSpec(width=64, height=36, fps=5.0, gop=50), channels=2)
    return path


def long_av_360p(minutes: int, seed: int = 0) -> Path:
    """:func:`long_av`'s sound (AAC 48 kHz stereo, stream copy) under a 640x360 25 fps H.264 picture (ffmpeg's
    testsrc2, x264 ultrafast, ~1.2 Mbit/s): the shape of the files a corpus holds, for CPU per media hour."""
    import subprocess

    path = MEDIA / f"long360_{minutes}min.mp4"
    if path.exists():
        return path
    sound = long_av(minutes, seed)
    tmp = path.with_suffix(".part.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=25:d={minutes * 60}",
                    "-i", str(sound), "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "30", "-g", "250", "-c:a", "copy", "-shortest", str(tmp)], check=True)
    tmp.rename(path)
    return path


_cache: dict[tuple[int, int], np.ndarray] = {}


def _block(b: int, block_s: float, seed: int) -> np.ndarray:
    key = (b, seed)
    if key not in _cache:
        _cache.clear()
        rng = np.random.default_rng([seed, b])
        t0 = float(rng.uniform(5, 20))
        events = [Event(str(rng.choice(["door knock", "dog bark", "water", "cheer"])), t0, t0 + 1.0),
                  Event("tone", t0 + 37 % block_s, t0 + 37 % block_s + 1.0)]
        _cache[key] = mix(block_s, events, sr=SR, snr_db=15.0, seed=seed * 100_003 + b)
    return _cache[key]


# ----------------------------------------------------------------------------------- extraction benchmark video

BAR_BITS = 20
BAR_BAND = 96 / 720
"""The frame number, drawn as BAR_BITS black/white blocks across the top 96 rows (luma)."""


def _texture(seed: int, h: int, w: int) -> np.ndarray:
    """A smooth-but-detailed luma texture (filtered noise at two scales), so decoding costs what real video does."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    coarse = gaussian_filter(rng.standard_normal((h, w)), 12)
    fine = gaussian_filter(rng.standard_normal((h, w)), 1.5)
    tex = 128 + 60 * coarse / coarse.std() + 18 * fine / fine.std()
    return np.clip(tex, 16, 235).astype(np.uint8)


def read_frame_number(rgb: np.ndarray) -> int:
    return read_number(rgb, BAR_BITS, BAR_BAND)


def video_720p(minutes: int, fps: int = 30, gop: int = 250, seed: int = 0) -> Path:
    """A 1280x720 H.264 (x264 veryfast, B-frames 3, keyframe every ``gop`` frames) file with a numbered picture.

    The 10-minute file is encoded; longer ones concatenate copies of it with ffmpeg's concat demuxer
    (stream copy), so the frame number is ``round(t * fps) % frames_of_10_min``.
    """
    import subprocess

    import av

    path = MEDIA / f"video720_{minutes}min.mp4"
    if path.exists():
        return path
    MEDIA.mkdir(parents=True, exist_ok=True)
    if minutes > 10 and minutes % 10 == 0:
        base = video_720p(10, fps, gop, seed)
        listing = MEDIA / f"concat_{minutes}.txt"
        listing.write_text("".join(f"file '{base.name}'\n" for _ in range(minutes // 10)))
        tmp = path.with_suffix(".part.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                        str(tmp)], check=True)
        listing.unlink()
        tmp.rename(path)
        return path
    w, h = 1280, 720
    tex = _texture(seed, h + 256, w + 1024)
    ctex = _texture(seed + 1, h // 2 + 128, w // 2 + 512)
    # Film grain (a cycle of 17 noise fields) gives the encoder real work: ~4-5 Mbit/s, like camera footage.
    rng = np.random.default_rng(seed)
    grain = [rng.integers(-3, 4, (h, w), dtype=np.int16) for _ in range(17)]
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23", "bf": "3", "g": str(gop), "keyint_min": str(gop),
                     "sc_threshold": "0"}
        s.codec_context.gop_size = gop
        for i in range(minutes * 60 * fps):
            dx, dy = (3 * i) % 1024, int(128 + 120 * np.sin(i / 200))
            y = np.clip(tex[dy:dy + h, dx:dx + w] + grain[i % 17], 16, 235).astype(np.uint8)
            draw_number(y, i, BAR_BITS, BAR_BAND)
            c = ctex[dy // 2:dy // 2 + h // 2, dx // 2:dx // 2 + w // 2]
            planes = [y, c.reshape(h // 4, w), (255 - c).reshape(h // 4, w)]  # yuv420p: Y, then U, then V
            frame = av.VideoFrame.from_ndarray(np.concatenate(planes), format="yuv420p")
            frame.pts = i
            for pkt in s.encode(frame):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    tmp.rename(path)
    return path


def video_720p_av(minutes: int) -> Path:
    """:func:`video_720p`'s numbered 1280x720 picture with :func:`long_av`'s sound (AAC 48 kHz stereo), both
    stream-copied into one MP4: the end-to-end benchmark's file (index the sound, extract the picture)."""
    import subprocess

    path = MEDIA / f"video720av_{minutes}min.mp4"
    if path.exists():
        return path
    picture, sound = video_720p(minutes), long_av(minutes)
    tmp = path.with_suffix(".part.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(picture), "-i", str(sound), "-map", "0:v", "-map", "1:a",
                    "-c", "copy", "-shortest", str(tmp)], check=True)
    tmp.rename(path)
    return path
