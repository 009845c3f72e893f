"""Fixtures: real media written with PyAV (H.264/VP9 + AAC/Opus/PCM), with sound events at known seconds."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from earmark.media.write import VideoSpec, write_media
from earmark.synth import Event, mix

# The same examples on every run, so CI is a verdict on the code, not on the draw; set HYPOTHESIS_PROFILE=explore
# to search with fresh random examples while developing.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

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


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Debian's headless Chromium driven by playwright (no browser download), with a fresh profile."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_FLAGS, viewport={"width": 1100, "height": 760})
        yield ctx
        ctx.close()


@pytest.fixture
def page(browser):
    """A page that records console errors, page errors and dialogs (an XSS would open one)."""
    pg = browser.new_page()
    pg.problems = []
    pg.on("console", lambda m: pg.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))

    def on_dialog(d):
        pg.problems.append(f"dialog: {d.message}")
        d.dismiss()

    pg.on("dialog", on_dialog)
    yield pg
    pg.close()
