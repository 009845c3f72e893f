"""SynthAVE's sound: 28 synthetic event sounds (7 families × 4 registers), distractor sounds, and each clip's
soundtrack over a room tone."""

from __future__ import annotations

import numpy as np

from ...synth import background as room_tone
from ...synth import rms
from ..datasets import SPLITS
from .spec import ClipSpec, SynthConfig

SAMPLE_RATE = 16_000
N_SOUNDS = 28
"""Distinct event sounds: 7 families × 4 registers (:func:`event_sound`)."""
BACKGROUND_DB = -36.0


def _unit(x: np.ndarray) -> np.ndarray:
    return x / max(rms(x), 1e-12)


def _fade(x: np.ndarray, sr: int, s: float = 0.02) -> np.ndarray:
    n = min(len(x) // 2, int(s * sr))
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def event_sound(sound: int, dur_s: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Sustained event sound ``sound`` of :data:`N_SOUNDS` (7 families × 4 registers), jittered in pitch and timbre."""
    family, register = sound % 7, sound // 7
    n = max(1, int(round(dur_s * sr)))
    t = np.arange(n) / sr
    base = (150.0, 300.0, 600.0, 1200.0)[register] * rng.uniform(0.9, 1.1)
    if family == 0:  # harmonic stack with a slow vibrato
        f = base * (1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 6) * t))
        ph = 2 * np.pi * np.cumsum(f) / sr
        w = rng.uniform(0.3, 1.0, 6) / np.arange(1, 7)
        x = sum(wk * np.sin((k + 1) * ph) for k, wk in enumerate(w))
    elif family == 1:  # repeated upward chirps
        period = rng.uniform(0.25, 0.4)
        u = (t % period) / period
        ph = 2 * np.pi * np.cumsum(base * (1 + 2.0 * u)) / sr
        x = np.sin(ph) * np.sin(np.pi * u) ** 0.5
    elif family == 2:  # siren: two alternating tones
        rate = rng.uniform(1.5, 3.0)
        f = base * np.where(np.sin(2 * np.pi * rate * t) > 0, 1.0, 1.26)
        x = np.sin(2 * np.pi * np.cumsum(f) / sr) + 0.3 * np.sin(4 * np.pi * np.cumsum(f) / sr)
    elif family == 3:  # amplitude-modulated noise band
        from scipy.signal import butter, sosfilt

        lo, hi = base * 1.5, min(base * 4.0, sr * 0.45)
        sos = butter(4, [lo / (sr / 2), hi / (sr / 2)], btype="band", output="sos")
        x = sosfilt(sos, rng.standard_normal(n)) * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(3, 8) * t))
    elif family == 4:  # click train of short resonant pings
        x = np.zeros(n)
        step = int(sr / rng.uniform(6, 12))
        tt = np.arange(int(0.03 * sr)) / sr
        ping = np.sin(2 * np.pi * base * 2 * tt) * np.exp(-tt / 0.006)
        for a in range(int(rng.integers(0, step)), n, step):
            m = min(len(ping), n - a)
            x[a:a + m] += ping[:m]
    elif family == 5:  # bell: inharmonic partials struck repeatedly
        x = np.zeros(n)
        step = int(sr * rng.uniform(0.5, 0.8))
        m = min(n, step)
        tt = np.arange(m) / sr
        ratios = (1.0, 2.76, 5.40, 8.93)
        strike = sum(np.sin(2 * np.pi * base * r * tt) * np.exp(-tt * (2 + r)) / (1 + i) for i, r in enumerate(ratios))
        for a in range(0, n, step):
            k = min(m, n - a)
            x[a:a + k] += strike[:k]
    else:  # buzzing square-ish wave with a tremolo
        ph = 2 * np.pi * base * t
        x = np.tanh(4 * np.sin(ph)) * (0.7 + 0.3 * np.sin(2 * np.pi * rng.uniform(10, 20) * t))
    return _fade(_unit(np.asarray(x, dtype=np.float64)), sr)


def distractor_sound(dur_s: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A short non-class sound: a formant 'babble' burst or a noisy knock (what speech/handling would make)."""
    n = max(1, int(round(dur_s * sr)))
    t = np.arange(n) / sr
    if rng.random() < 0.5:
        f0 = rng.uniform(110, 220) * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))
        ph = 2 * np.pi * np.cumsum(f0) / sr
        x = sum(np.sin(k * ph) * np.exp(-((k * f0 - rng.uniform(500, 900)) / 300) ** 2) for k in range(1, 15))
        x = x * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 6) * t) ** 2)
    else:
        x = rng.standard_normal(n) * np.exp(-t / 0.05)
    return _fade(_unit(np.asarray(x, dtype=np.float64)), sr)


def clip_audio(cfg: SynthConfig, spec: ClipSpec, i: int) -> np.ndarray:
    rng = np.random.default_rng([cfg.seed, SPLITS.index(spec.split), i, 2])
    sr = SAMPLE_RATE
    bg_rms = 10 ** (BACKGROUND_DB / 20)
    n = cfg.duration_s * sr
    drift = 1 + 0.15 * np.sin(2 * np.pi * np.arange(n) / sr / rng.uniform(4, 9) + rng.uniform(0, 6.3))
    out = room_tone(cfg.duration_s, sr, rng) * bg_rms * drift
    level = bg_rms * 10 ** (cfg.snr_db / 20)
    if not spec.silent and spec.sound_end_s > spec.sound_start_s:
        a, b = int(round(spec.sound_start_s * sr)), int(round(spec.sound_end_s * sr))
        out[a:b] += event_sound(spec.sound, (b - a) / sr, sr, rng)[: b - a] * level
    for s in spec.distractor_sound_seconds:
        dur = rng.uniform(0.3, 0.8)
        a = int((s + rng.uniform(0, 1 - dur)) * sr)
        snd = distractor_sound(dur, sr, rng) * level
        out[a:a + len(snd)] += snd[: n - a]
    peak = float(np.max(np.abs(out)))
    if peak > 0.99:
        out *= 0.99 / peak
    return out.astype(np.float32)
