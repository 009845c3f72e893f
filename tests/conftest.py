"""Fixtures: real media written with PyAV (H.264/VP9 + AAC/Opus/PCM), with sound events at known seconds."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from earmark.media.write import VideoSpec, write_media
from earmark.synth import Event, mix

SR = 48_000
CLIP_S = 12.0
# One event of each family at known whole seconds: a tone burst, a noise burst and a chirp.
EVENTS = (Event("tone", 2.0, 3.0), Event("noise", 6.0, 7.0), Event("chirp", 9.0, 10.0))
EVENT_SECONDS = [2, 6, 9]
SMALL = VideoSpec(width=64, height=48, fps=25.0, gop=25)


def events_audio(duration_s: float = CLIP_S, events=EVENTS, snr_db: float = 20.0, seed: int = 1) -> np.ndarray:
    return mix(duration_s, list(events), sr=SR, snr_db=snr_db, seed=seed)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def events_audio_48k() -> np.ndarray:
    return events_audio()


def _write(media_dir: Path, name: str, audio, **kw) -> Path:
    path = media_dir / name
    if not path.exists():
        write_media(path, kw.pop("duration_s", CLIP_S), audio, SR, **kw)
    return path


@pytest.fixture(scope="session")
def events_mp4(media_dir, events_audio_48k) -> Path:
    """H.264 + AAC, 12 s, tone/noise/chirp at seconds 2, 6, 9."""
    return _write(media_dir, "events.mp4", events_audio_48k, video=SMALL)


@pytest.fixture(scope="session", params=["mp4", "mkv", "webm", "wav"])
def events_any(request, media_dir, events_audio_48k) -> Path:
    """The same events in MP4 (H.264/AAC), MKV (H.264/Opus), WebM (VP9/Opus) and WAV (PCM, no video)."""
    return _write(media_dir, f"events.{request.param}", events_audio_48k, video=SMALL)


@pytest.fixture(scope="session")
def silent_video(media_dir) -> Path:
    """A video with no audio stream at all."""
    return _write(media_dir, "noaudio.mp4", None, video=SMALL, duration_s=3.0)


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        pytest.fail("ffmpeg is required for the golden tests (.ci/run installs it with apt-get)")
    return exe


def ffmpeg_decode_16k_mono(path: Path, stream: str = "a:0") -> np.ndarray:
    """The reference decode: ``ffmpeg -vn -ac 1 -ar 16000 -f f32le``."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:{stream}", "-vn", "-ac", "1",
                          "-ar", "16000", "-f", "f32le", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(out, dtype=np.float32)
