"""Synthetic sound events with real-world-like character (door knock, dog bark, water, engine, cheer, ...).

Used by ``earmark demo``, SynthAVE (``earmark eval synth``), the tests and the benchmarks. Every function is
pure given its ``rng`` seed, so generated media is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def _t(dur_s: float, sr: int) -> np.ndarray:
    return np.arange(int(round(dur_s * sr))) / sr


def _env(n: int, sr: int, attack_s: float = 0.01, release_s: float = 0.05) -> np.ndarray:
    env = np.ones(n)
    a, r = max(1, int(attack_s * sr)), max(1, int(release_s * sr))
    env[:a] = np.linspace(0, 1, min(a, n))[: min(a, n)]
    env[-r:] *= np.linspace(1, 0, min(r, n))[-min(r, n):]
    return env


def _band(x: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    from scipy.signal import butter, sosfilt  # imported when media is generated, not at CLI start

    sos = butter(4, [lo / (sr / 2), min(hi, sr / 2 * 0.95) / (sr / 2)], btype="band", output="sos")
    return sosfilt(sos, x)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def tone_burst(dur_s: float, sr: int, f0: float = 440.0, harmonics: int = 4, rng=None) -> np.ndarray:
    t = _t(dur_s, sr)
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, harmonics + 1))
    return x * _env(len(t), sr)


def noise_burst(dur_s: float, sr: int, lo: float = 500.0, hi: float = 4000.0, rng=None) -> np.ndarray:
    rng = rng or np.random.default_rng(0)
    x = _band(rng.standard_normal(int(round(dur_s * sr))), sr, lo, hi)
    return x * _env(len(x), sr)


def chirp(dur_s: float, sr: int, f0: float = 300.0, f1: float = 3000.0, rng=None) -> np.ndarray:
    t = _t(dur_s, sr)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * max(dur_s, 1e-6)))
    return np.sin(phase) * _env(len(t), sr)


def door_knock(dur_s: float, sr: int, knocks: int = 3, rng=None) -> np.ndarray:
    """A few sharp, low, quickly decaying knocks."""
    rng = rng or np.random.default_rng(0)
    out = np.zeros(int(round(dur_s * sr)))
    spacing = min(0.18, dur_s / (knocks + 1))
    for k in range(knocks):
        start = int((0.02 + k * spacing) * sr)
        n = min(int(0.12 * sr), len(out) - start)
        if n <= 0:
            break
        t = np.arange(n) / sr
        body = np.sin(2 * np.pi * (110 + 20 * rng.random()) * t) + 0.5 * rng.standard_normal(n)
        out[start:start + n] += body * np.exp(-t / 0.025)
    return out


def dog_bark(dur_s: float, sr: int, barks: int = 2, rng=None) -> np.ndarray:
    """Short harmonic barks with a falling pitch and a noisy attack."""
    rng = rng or np.random.default_rng(0)
    out = np.zeros(int(round(dur_s * sr)))
    for b in range(barks):
        start = int((0.05 + b * dur_s / barks) * sr)
        n = min(int(0.22 * sr), len(out) - start)
        if n <= 0:
            break
        t = np.arange(n) / sr
        f0 = (500 + 80 * rng.random()) * (1 - 0.4 * t / 0.22)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        voiced = sum(np.sin(h * phase) / h for h in range(1, 7))
        out[start:start + n] += (voiced + 0.3 * rng.standard_normal(n)) * _env(n, sr, 0.005, 0.08)
    return out


def water(dur_s: float, sr: int, rng=None) -> np.ndarray:
    """Babbling water: band noise with fast random amplitude modulation and droplet chirps."""
    rng = rng or np.random.default_rng(0)
    n = int(round(dur_s * sr))
    x = _band(rng.standard_normal(n), sr, 800, 6000)
    am = np.interp(np.arange(n), np.linspace(0, n, max(2, int(dur_s * 30))), rng.random(max(2, int(dur_s * 30))))
    return x * (0.3 + am) * _env(n, sr, 0.05, 0.1)


def engine(dur_s: float, sr: int, rpm_hz: float = 35.0, rng=None) -> np.ndarray:
    """A low sawtooth-like drone with firing-rate amplitude modulation."""
    t = _t(dur_s, sr)
    saw = sum(np.sin(2 * np.pi * rpm_hz * h * t) / h for h in range(1, 12))
    return saw * (0.7 + 0.3 * np.sin(2 * np.pi * rpm_hz / 2 * t)) * _env(len(t), sr, 0.2, 0.2)


def cheer(dur_s: float, sr: int, rng=None) -> np.ndarray:
    """Crowd cheer: broadband noise swell with many short voiced chirps."""
    rng = rng or np.random.default_rng(0)
    n = int(round(dur_s * sr))
    x = _band(rng.standard_normal(n), sr, 300, 5000) * 0.6
    for _ in range(int(dur_s * 12)):
        c = chirp(0.15, sr, 300 + 500 * rng.random(), 600 + 900 * rng.random())
        s = int(rng.random() * max(1, n - len(c)))
        x[s:s + len(c)] += 0.5 * c[: n - s]
    return x * _env(n, sr, 0.15, 0.3)


SOUNDS: dict[str, Callable[..., np.ndarray]] = {
    "tone": tone_burst,
    "noise": noise_burst,
    "chirp": chirp,
    "door knock": door_knock,
    "dog bark": dog_bark,
    "water": water,
    "engine": engine,
    "cheer": cheer,
}


def background(dur_s: float, sr: int, rng=None) -> np.ndarray:
    """Room tone: pink-ish noise plus a faint mains hum, unit RMS."""
    rng = rng or np.random.default_rng(0)
    n = int(round(dur_s * sr))
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    spec /= np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / sr), 20.0))
    pink = np.fft.irfft(spec, n)
    x = pink / max(rms(pink), 1e-12) + 0.2 * np.sin(2 * np.pi * 50 * np.arange(n) / sr)
    return x / max(rms(x), 1e-12)


@dataclass(frozen=True)
class Event:
    """A sound event placed on the timeline: ``[start_s, end_s)``."""

    label: str
    start_s: float
    end_s: float


def mix(duration_s: float, events: list[Event], sr: int = 48_000, snr_db: float = 20.0,
        background_db: float = -36.0, seed: int = 0) -> np.ndarray:
    """Background at ``background_db`` dBFS with each event scaled to ``snr_db`` above it (RMS over the event)."""
    rng = np.random.default_rng(seed)
    bg_rms = 10 ** (background_db / 20)
    out = background(duration_s, sr, rng) * bg_rms
    for ev in events:
        make = SOUNDS[ev.label]
        sound = make(ev.end_s - ev.start_s, sr, rng=rng)
        sound = sound / max(rms(sound), 1e-12) * bg_rms * 10 ** (snr_db / 20)
        a = int(round(ev.start_s * sr))
        out[a:a + len(sound)] += sound[: len(out) - a]
    peak = np.max(np.abs(out))
    if peak > 0.99:
        out *= 0.99 / peak
    return out.astype(np.float32)
