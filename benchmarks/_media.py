"""Long benchmark media, generated once with PyAV and cached under benchmarks/_media/ (git-ignored)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from earmark.media.write import VideoSpec, write_media
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
