"""SynthAVE: AVE-shaped clips generated here, where resolution matters and the sound says when to look.

Each clip copies the label structure of a real AVE row (class, event start/end; the split's rows are
sampled from the shipped AVE statistics, exactly the release's multiset at full size). During event seconds
a **small class glyph** (a striped disc about 6 % of the frame wide: 4 colour pairs × 7 stripe orientations
= 28 classes) sits in a photographic scene (scikit-image's CC0/public-domain samples) under a moving camera
with clutter; background seconds carry distractor discs of the same colours with unoriented texture, and
sometimes distractor sounds. Each clip draws its stripe period (2.5–8 px at 448 px by default), so no one
picture size or filter wavelength reads every clip: at 112 px a glyph is a coloured blob (the coarsest keep a
little orientation), at 224 px the coarse-striped glyphs are readable and the fine ones alias, at 448 px all
are plain — the gap anchoring can recover. The event sound is one of 28 synthetic sounds (7 families × 4
registers, jittered per clip) ``snr_db`` above a room-tone background, shifted by ``av_offset_s``, or absent
for silent events; by default it is drawn whatever the class, so the sound says *when* to look and the
picture says *what*. :data:`LEGACY_SETTINGS` (3 px stripes, a sound per class) make the generator from before
these two draws existed, byte for byte.

Everything is a pure function of (config, clip index): the same settings give the same files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..synth import background as room_tone
from ..synth import rms
from .datasets import SPLITS, AveRow
from .generate import finish_folder, open_folder, run_jobs, write_clip

SAMPLE_RATE = 16_000
MANIFEST = "synthave.json"
N_ORIENTATIONS = 7
COLOURS = (((255, 128, 104), (96, 12, 0)), ((250, 238, 120), (92, 80, 0)), ((240, 240, 240), (24, 24, 24)),
           ((124, 214, 255), (0, 40, 96)))
"""The four stripe colour pairs (light and dark of one hue: the stripes live in luma, which survives 4:2:0
chroma subsampling); distractor discs use the same pairs, so colour alone never names a class."""
N_SOUNDS = 28
"""Distinct event sounds: 7 families × 4 registers (:func:`event_sound`)."""
MIN_STRIPE_PERIOD, MAX_STRIPE_PERIOD = 2.0, 12.0
"""The stripe periods a glyph can have, pixels at 448 px: below 2 px the stripes alias even at 448 (nothing
could read them), above 12 px the 29 px glyph shows fewer than 2.5 periods (a pattern, not a texture)."""
LEGACY_SETTINGS: dict[str, Any] = {"stripe_period_min": 3.0, "stripe_period_max": 3.0, "class_sound_fraction": 1.0}
"""The settings SynthAVE had before they existed (every SynthAVE folder and number made until then): every glyph
striped at 3 px (1.5 px at 224: aliased; 0.75 px at 112: averaged away), and every class its own sound. A
folder whose stored settings lack these keys was made with these values (:func:`make_synthave`)."""
GLYPH_FRACTION = 0.065
BACKGROUND_DB = -36.0
BACKGROUNDS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
               "brick", "grass", "gravel", "camera", "coins")
"""scikit-image sample images shipped in its wheel (CC0 / public domain; see docs/synthave.md)."""


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides a SynthAVE folder's content (saved in its ``synthave.json``)."""

    snr_db: float = 10.0
    """Event sound level over the room tone (RMS over the event)."""
    av_offset_s: float = 0.0
    """Picture time minus sound time (> 0: the sound comes early), as ``earmark index --offset``."""
    silent_event_fraction: float = 0.0
    """Fraction of clips whose event is visible but makes no sound."""
    distractor_rate: float = 0.3
    """Per background second: chance of a distractor disc; half of it: chance of a distractor sound."""
    event_motion: float = 0.0
    """> 0: every event second also shows a large moving disc this fraction of the frame wide (class-blind: it
    says *that* something happens, not what), so cheap visual probes can find events, silent ones included —
    the variant that tests the hybrid and transfer probes. 0 (default): events are visible only as small glyphs."""
    stripe_period_min: float = 2.5
    """Shortest glyph stripe period, pixels at 448 px (scaled with ``size``). Each clip draws its period
    log-uniformly (the same chance per octave) in [``stripe_period_min``, ``stripe_period_max``]; its distractor
    discs use the same scale. The default 2.5–8 px is 1.25–4 px at 224 and 0.6–2 px at 112: the finest ~40 %
    of clips (under 4 px at 448: under the 2 px Nyquist limit at 224) need 448, the coarsest ~40 % (5 px and
    up) are readable at 224 too, and at 112 only the coarsest keep some orientation — resolution matters for
    some clips and not others, as in real video, and no fixed-wavelength filter is tuned to all of them.
    Equal min and max: one period for every clip."""
    stripe_period_max: float = 8.0
    """Longest glyph stripe period, pixels at 448 px (see ``stripe_period_min``)."""
    class_sound_fraction: float = 0.0
    """Fraction of clips whose event plays their class's own sound (of the 28: class ``c`` has sound ``c``); the
    others play one of the 28 dealt at random whatever the class (each run of 28 clips of a split hears each
    sound once). 0 (default): the sound is independent of the class — it says *when*, never *what*, so audio
    features alone are at chance on the class and a strategy must read the glyph; 1: every class has its own
    sound (the sound names the class: :data:`LEGACY_SETTINGS`)."""
    duration_s: int = 10
    """Clip length; 60 or 300 make sparse long-video variants (the AVE event placed at a random second)."""
    n: int | None = None
    """Clips in all (split sizes scaled from AVE's 3339/402/402); None: the full sizes."""
    seed: int = 0
    size: int = 448
    fps: float = 2.0
    crf: int = 26

    def check(self) -> None:
        if not 0.0 <= self.silent_event_fraction <= 1.0:
            raise ConfigError(f"silent_event_fraction must be in [0, 1], got {self.silent_event_fraction}")
        if not 0.0 <= self.distractor_rate <= 1.0:
            raise ConfigError(f"distractor_rate must be in [0, 1], got {self.distractor_rate}")
        if not 0.0 <= self.event_motion <= 0.5:
            raise ConfigError(f"event_motion must be in [0, 0.5], got {self.event_motion}")
        for name in ("stripe_period_min", "stripe_period_max"):
            if not MIN_STRIPE_PERIOD <= getattr(self, name) <= MAX_STRIPE_PERIOD:
                raise ConfigError(f"{name} must be in [{MIN_STRIPE_PERIOD:g}, {MAX_STRIPE_PERIOD:g}] px at 448 px, "
                                  f"got {getattr(self, name)}")
        if self.stripe_period_min > self.stripe_period_max:
            raise ConfigError(f"stripe_period_min must be <= stripe_period_max, got {self.stripe_period_min} > "
                              f"{self.stripe_period_max}")
        if not 0.0 <= self.class_sound_fraction <= 1.0:
            raise ConfigError(f"class_sound_fraction must be in [0, 1], got {self.class_sound_fraction}")
        if self.duration_s < 10:
            raise ConfigError(f"duration_s must be >= 10 (AVE clips are 10 s), got {self.duration_s}")
        if abs(self.av_offset_s) >= self.duration_s:
            raise ConfigError(f"av_offset_s must be shorter than the clip, got {self.av_offset_s}")
        if self.n is not None and self.n < 3:
            raise ConfigError(f"n must be >= 3 (one clip per split at least), got {self.n}")
        if self.size < 112 or self.fps <= 0:
            raise ConfigError(f"size must be >= 112 and fps > 0, got {self.size} and {self.fps}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SynthConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ------------------------------------------------------------------------------------------- labels


@lru_cache(maxsize=1)
def ave_label_stats() -> dict[str, list[tuple[str, int, int, int]]]:
    """Per split: (category, start, end, count) of the real AVE release's rows (shipped, labels only)."""
    text = resources.files("earmark.eval").joinpath("ave_label_stats.json").read_text(encoding="utf-8")
    return {k: [tuple(r) for r in v] for k, v in json.loads(text)["splits"].items()}


def label_stats_from_rows(rows: dict[str, list[AveRow]]) -> dict[str, list[list]]:
    """The shipped statistics' format, from AVE rows (used by ``scripts/make_ave_stats.py``)."""
    out = {}
    for split, rs in rows.items():
        counts: dict[tuple[str, int, int], int] = {}
        for r in rs:
            key = (r.category, r.start_s, r.end_s)
            counts[key] = counts.get(key, 0) + 1
        out[split] = [[c, s, e, n] for (c, s, e), n in sorted(counts.items())]
    return out


def split_sizes(n: int | None) -> dict[str, int]:
    full = {s: sum(r[3] for r in ave_label_stats()[s]) for s in SPLITS}
    if n is None:
        return full
    total = sum(full.values())
    sizes = {s: max(1, round(n * full[s] / total)) for s in ("val", "test")}
    sizes["train"] = max(1, n - sizes["val"] - sizes["test"])
    return {s: sizes[s] for s in SPLITS}


def sample_rows(split: str, count: int, seed: int) -> list[tuple[str, int, int]]:
    """``count`` label structures of ``split``: the release's exact multiset at full size, else a seeded draw."""
    stats = ave_label_stats()[split]
    pool = [(c, s, e) for c, s, e, k in stats for _ in range(k)]
    rng = np.random.default_rng([seed, SPLITS.index(split), 7])
    if count == len(pool):
        order = rng.permutation(len(pool))
    else:
        order = rng.choice(len(pool), size=count, replace=count > len(pool))
    return [pool[i] for i in order]


def classes() -> tuple[str, ...]:
    return tuple(sorted({r[0] for rs in ave_label_stats().values() for r in rs}))


# ------------------------------------------------------------------------------------------- sounds


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


# ------------------------------------------------------------------------------------------- pictures


@lru_cache(maxsize=1)
def _backgrounds() -> tuple[np.ndarray, ...]:
    import skimage.data as data

    out = []
    for name in BACKGROUNDS:
        img = np.asarray(getattr(data, name)())
        if img.ndim == 2:  # grey textures get a tint so colour statistics vary
            tint = np.array([1.0, 0.92, 0.8]) if len(out) % 2 else np.array([0.85, 0.95, 1.0])
            img = (img[..., None] * tint).clip(0, 255)
        out.append(np.ascontiguousarray(img[..., :3].astype(np.uint8)))
    return tuple(out)


def camera(picture, size: int, rng: np.random.Generator) -> Callable[[float, float], np.ndarray]:
    """A camera over a photograph (a PIL image): a slow pan and zoom with a little shake.

    Returns ``view(u, t)``: the (size, size, 3) float32 picture at clip fraction ``u`` and time ``t`` (s).
    Draws four values from ``rng`` (start side, end side, start centre, pan).
    """
    from PIL import Image

    W, H = picture.size
    side0 = min(H, W) * rng.uniform(0.55, 0.9)
    side1 = side0 * rng.uniform(0.85, 1.0)
    c0 = np.array([rng.uniform(side0 / 2, W - side0 / 2), rng.uniform(side0 / 2, H - side0 / 2)])
    c1 = c0 + rng.uniform(-0.15, 0.15, 2) * side0

    def view(u: float, t: float) -> np.ndarray:
        side = side0 + (side1 - side0) * u
        cx, cy = c0 + (c1 - c0) * u + 2.0 * np.sin(np.array([7.1, 5.3]) * t)  # pan, zoom and a little shake
        cx, cy = np.clip(cx, side / 2, W - side / 2), np.clip(cy, side / 2, H - side / 2)
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        return np.asarray(picture.resize((size, size), Image.BILINEAR, box=box), dtype=np.float32).copy()

    return view


def _disc_mask(d: int) -> np.ndarray:
    y, x = np.mgrid[:d, :d] - (d - 1) / 2
    return np.clip(d / 2 - np.hypot(x, y), 0.0, 1.0)[..., None]


def glyph(class_index: int, d: int, phase: float, tilt: float, period: float) -> tuple[np.ndarray, np.ndarray]:
    """The class glyph: a ``d`` px disc of stripes ``period`` px apart, in one colour pair at one of seven
    orientations (RGB, alpha)."""
    c0, c1 = COLOURS[class_index // N_ORIENTATIONS]
    th = np.pi * (class_index % N_ORIENTATIONS) / N_ORIENTATIONS + tilt
    y, x = np.mgrid[:d, :d] - (d - 1) / 2
    u = (x * np.cos(th) + y * np.sin(th)) / period
    on = np.cos(2 * np.pi * u + phase) > 0
    return np.where(on[..., None], np.array(c0, float), np.array(c1, float)), _disc_mask(d)


def distractor(d: int, rng: np.random.Generator, period: float) -> tuple[np.ndarray, np.ndarray]:
    """A disc in a class colour pair with unoriented (blocky random) texture at the glyph's scale (cells of half
    or one stripe ``period``, in px): a glyph look-alike when small."""
    c0, c1 = COLOURS[int(rng.integers(len(COLOURS)))]
    cell = max(1, int(round(period / 2 * rng.choice([1, 2]))))
    m = -(-d // cell)
    on = np.kron(rng.random((m, m)) > 0.5, np.ones((cell, cell), bool))[:d, :d]
    return np.where(on[..., None], np.array(c0, float), np.array(c1, float)), _disc_mask(d)


def paste(canvas: np.ndarray, img: np.ndarray, alpha: np.ndarray, cx: float, cy: float) -> None:
    """Blend ``img`` (h, w, 3) with ``alpha`` (h, w, 1) in [0, 1] onto ``canvas`` centred at (cx, cy), clipped."""
    dh, dw = img.shape[:2]
    x0, y0 = int(round(cx - dw / 2)), int(round(cy - dh / 2))
    h, w = canvas.shape[:2]
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x0 + dw), min(h, y0 + dh)
    if xa >= xb or ya >= yb:
        return
    sub = canvas[ya:yb, xa:xb]
    a = alpha[ya - y0:yb - y0, xa - x0:xb - x0]
    sub[...] = sub * (1 - a) + img[ya - y0:yb - y0, xa - x0:xb - x0] * a


@dataclass(frozen=True)
class ClipSpec:
    """One generated clip's truth: what is seen and heard when (seconds, ``[start, end)``)."""

    video_id: str
    split: str
    category: str
    class_index: int
    start_s: int
    end_s: int
    silent: bool
    sound_start_s: float
    sound_end_s: float
    distractor_seconds: tuple[int, ...]
    distractor_sound_seconds: tuple[int, ...]
    background: str
    stripe_period: float
    """The glyph's stripe period, pixels at 448 px."""
    sound: int
    """The event sound (of :data:`N_SOUNDS`): ``class_index`` when the clip plays its class's own sound."""


def clip_spec(cfg: SynthConfig, split: str, i: int, row: tuple[str, int, int], class_names: tuple[str, ...]
              ) -> ClipSpec:
    category, start, end = row
    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), i, 1])
    if cfg.duration_s != 10:  # long variants: the AVE event, at a random place in a long clip
        length = end - start
        start = int(rng.integers(0, cfg.duration_s - length + 1))
        end = start + length
    silent = bool(rng.random() < cfg.silent_event_fraction)
    bg_seconds = [s for s in range(cfg.duration_s) if not start <= s < end]
    d_vis = tuple(s for s in bg_seconds if rng.random() < cfg.distractor_rate)
    d_snd = tuple(s for s in bg_seconds if rng.random() < cfg.distractor_rate / 2)
    s0 = min(max(start - cfg.av_offset_s, 0.0), cfg.duration_s)
    s1 = min(max(end - cfg.av_offset_s, 0.0), cfg.duration_s)
    class_index = class_names.index(category)
    # Their own streams, every value drawn whatever the settings: the streams above (and so the clips made with
    # LEGACY_SETTINGS) are unchanged, and one setting does not shift another's draws.
    vrng = np.random.default_rng([cfg.seed, SPLITS.index(split), i, 6])
    lo, hi = cfg.stripe_period_min, cfg.stripe_period_max
    period = lo * (hi / lo) ** vrng.random()  # log-uniform; exactly lo when lo == hi
    own = vrng.random() < cfg.class_sound_fraction
    # The other sounds are dealt like cards, whatever the class: each run of 28 clips of a split hears every sound
    # once, so a small split hears them all (independent draws left a 32-clip train split with 13 of the 28).
    deal = np.random.default_rng([cfg.seed, SPLITS.index(split), i // N_SOUNDS, 8]).permutation(N_SOUNDS)
    return ClipSpec(video_id=f"{split}{i:05d}", split=split, category=category,
                    class_index=class_index, start_s=start, end_s=end, silent=silent,
                    sound_start_s=float(s0), sound_end_s=float(s1), distractor_seconds=d_vis,
                    distractor_sound_seconds=d_snd, background=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))],
                    stripe_period=float(period), sound=class_index if own else int(deal[i % N_SOUNDS]))


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


def clip_frames(cfg: SynthConfig, spec: ClipSpec, i: int) -> Callable[[int, float], np.ndarray]:
    """``frame_fn(i, t)`` for :func:`earmark.media.write.write_media`: camera path, clutter, glyph, distractors."""
    from PIL import Image

    rng = np.random.default_rng([cfg.seed, SPLITS.index(spec.split), i, 3])
    bg = _backgrounds()[BACKGROUNDS.index(spec.background)]
    picture = Image.fromarray(bg)
    S = cfg.size
    period = spec.stripe_period * (S / 448)  # pixels in this picture
    view = camera(picture, S, rng)
    d = max(5, int(round(GLYPH_FRACTION * S)))
    margin = d
    clutter = []
    for _ in range(int(rng.integers(4, 9))):
        size = int(rng.integers(d // 2, 2 * d))
        colour = rng.integers(0, 256, 3).astype(float)
        yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
        mask = (np.clip(size / 2 - np.hypot(xx, yy), 0, 1) if rng.random() < 0.5 else np.ones((size, size)))[..., None]
        clutter.append((np.broadcast_to(colour, (size, size, 3)), mask, rng.uniform(margin, S - margin),
                        rng.uniform(margin, S - margin)))
    tilt = rng.uniform(-0.08, 0.08)
    phase = rng.uniform(0, 2 * np.pi)
    gpos = (rng.uniform(margin, S - margin), rng.uniform(margin, S - margin))
    g_img, g_alpha = glyph(spec.class_index, d, phase, tilt, period)
    distractors = {s: (distractor(d, rng, period), rng.uniform(margin, S - margin), rng.uniform(margin, S - margin))
                   for s in spec.distractor_seconds}
    dur = cfg.duration_s
    mover = None
    if cfg.event_motion > 0:  # its own random stream: the default clips stay byte-identical
        mrng = np.random.default_rng([cfg.seed, SPLITS.index(spec.split), i, 5])
        md = max(8, int(round(cfg.event_motion * S)))
        yy, xx = np.mgrid[:md, :md] - (md - 1) / 2
        mask = np.clip(md / 2 - np.hypot(xx, yy), 0, 1)[..., None]
        shade = np.broadcast_to(mrng.uniform(30, 225, 3), (md, md, 3))
        start = mrng.uniform(md / 2, S - md / 2, 2)
        speed = mrng.uniform(0.3, 0.6) * S * np.array([np.cos(a := mrng.uniform(0, 2 * np.pi)), np.sin(a)])
        mover = (shade, mask, md, start, speed)

    def frame(_: int, t: float) -> np.ndarray:
        u = t / dur
        img = view(u, t)
        drift = np.array([S * 0.03 * np.sin(2 * np.pi * u), S * 0.02 * np.cos(2 * np.pi * u)])  # objects move too
        for c_img, c_mask, x, y in clutter:
            paste(img, c_img, c_mask, x + drift[0], y + drift[1])
        second = int(t)
        if second in distractors:
            (dimg, dmask), x, y = distractors[second]
            paste(img, dimg, dmask, x + drift[0], y + drift[1])
        if spec.start_s <= t < spec.end_s:
            paste(img, g_img, g_alpha, gpos[0] + drift[0], gpos[1] + drift[1])
            if mover is not None:
                shade, mask, md, start, speed = mover
                lo, span = md / 2, S - md
                pos = (start - lo + speed * (t - spec.start_s)) % (2 * span)  # bounce off the frame's edges
                pos = lo + np.where(pos > span, 2 * span - pos, pos)
                paste(img, shade, mask, pos[0], pos[1])
        return np.clip(img, 0, 255).astype(np.uint8)

    return frame


# ------------------------------------------------------------------------------------------- folder


def plan_clips(cfg: SynthConfig) -> list[tuple[ClipSpec, int]]:
    names = classes()
    out = []
    for split, count in split_sizes(cfg.n).items():
        for i, row in enumerate(sample_rows(split, count, cfg.seed)):
            out.append((clip_spec(cfg, split, i, row, names), i))
    return out


def make_synthave(out_dir: str | Path, config: SynthConfig | None = None, *, workers: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """Write a SynthAVE folder in the AVE layout (resumable: finished clips are kept).

    >>> make_synthave("synthave", SynthConfig(n=60, snr_db=10))   # doctest: +SKIP

    Writes ``Annotations.txt``, ``trainSet.txt``, ``valSet.txt``, ``testSet.txt``, ``AVE/<id>.mp4`` and
    ``synthave.json`` (the config and every clip's truth). A folder made with other settings is refused; one
    made before a setting existed counts as made with :data:`LEGACY_SETTINGS` (add them to resume it):

    >>> make_synthave("old-folder", SynthConfig(n=60, **LEGACY_SETTINGS))   # doctest: +SKIP
    """
    cfg = config or SynthConfig()
    cfg.check()
    root = Path(out_dir)
    videos = open_folder(root, MANIFEST, "earmark.synthave", asdict(cfg), asdict(SynthConfig()),
                         missing=LEGACY_SETTINGS)
    todo = plan_clips(cfg)
    run_jobs(write_clip, [(clip_audio, clip_frames, cfg, spec, i, str(videos), SAMPLE_RATE) for spec, i in todo],
             workers, progress)
    rows = [(spec.split, f"{spec.category}&{spec.video_id}&good&{spec.start_s}&{spec.end_s}") for spec, _ in todo]
    finish_folder(root, MANIFEST, rows, {"kind": "earmark.synthave", "version": 1, "config": asdict(cfg),
                                         "classes": list(classes()), "segments": cfg.duration_s,
                                         "clips": [asdict(spec) for spec, _ in todo]})
    return root
