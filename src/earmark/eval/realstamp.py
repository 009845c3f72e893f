"""RealStamp-AVE: real photographs of things with their own real recordings, in the AVE layout.

Debian's ``tuxpaint-stamps-default`` (GPL-2) ships photographs of real objects (PNG with alpha) and, for some,
a recording of the thing's sound (``NAME.ogg``) and a spoken description (``NAME_desc.ogg``). A RealStamp clip
copies the label structure of a real AVE row (event start/end in whole seconds; SynthAVE's shipped statistics)
and shows one class's photograph, pasted at 25-50 % of the frame width over a real photograph (scikit-image's
samples) under a moving camera, exactly during the event seconds, while its own recording plays (looped or cut,
faded) ``snr_db`` over the bed. Nothing is drawn for the eye of one encoder: the pictures and sounds are real.

The hard cases, each a knob (``RealStampConfig``): off-screen sounds (another class's recording in background
seconds, no picture, at the event's level), recorded speech in background seconds (the package's spoken
descriptions), music beds (``asterisk-moh-opsound-wav``), silent visible events, partial occlusion, and an
AV offset. Clip lengths: 10 s (AVE-like) or 60 s (sparse: the event covers at most a sixth of the seconds).

The classes are fixed data (``realstamp_classes.json``), chosen once from the package by a rule that never
looked at any accuracy (:func:`find_classes`; ``scripts/make_realstamp_classes.py`` rebuilds the file):
a stamp with a photograph (>= 256 distinct colours at 5 bits per channel among opaque pixels, shorter side
>= 64 px, so drawings and icons are out) and a sound that is not speech (Silero VAD hears speech in less
than half of it; nothing under ``symbols/``). Near-duplicates are one class: recordings of the same sound
(zero-lag correlation >= 0.8), or the same thing in one folder (``pig``, ``pig_golden``, ``pig_golden2``).
The package's files are read from where apt installs them, never copied into this repository. Everything is
a pure function of (config, clip index): the same settings give the same files.
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
from ..types import Progress
from .datasets import SPLITS, DatasetError
from .generate import finish_folder, open_folder, run_jobs, write_clip
from .synthave import camera, paste, sample_rows, split_sizes

SAMPLE_RATE = 16_000
MANIFEST = "realstamp.json"
CLASSES_FILE = "realstamp_classes.json"
STAMPS = Path("/usr/share/tuxpaint/stamps")
MUSIC = Path("/usr/share/asterisk/moh")
STAMPS_PACKAGE = "tuxpaint-stamps-default"
MUSIC_PACKAGE = "asterisk-moh-opsound-wav"
BACKGROUNDS = ("astronaut", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field", "brick", "grass",
               "gravel", "camera", "coins", "moon", "clock")
"""Photographs that ship in scikit-image's wheel (CC0 / public domain); no animal or instrument among them."""
BACKGROUND_DB = -36.0
FADE_S = 0.02
DEFAULT_N = {10: 400, 60: 100}
"""Clips in all when ``n`` is None: sized so the default eval finishes in about 30 minutes on two cores."""
DEFAULT_CLASSES = {60: 8}
"""Classes when ``n_classes`` is None, by clip length (else all 72). 100 clips of 60 s leave 80 for training:
with all 72 classes they covered 50, one clip each, and every head, Uniform-448 included, answered background
on every second (0-11 % of event seconds right, measured on data seed 0): the head, not the index, failed.
Eight classes give each about ten training clips."""

# The class rule (see the module docstring): thresholds fixed before any eval was run.
PHOTO_MIN_COLOURS = 256
PHOTO_MIN_SIDE = 64
SPEECH_MAX = 0.5
SAME_SOUND = 0.8


@dataclass(frozen=True)
class RealStampConfig:
    """Everything that decides a RealStamp folder's content (saved in its ``realstamp.json``)."""

    duration_s: int = 10
    """10 (AVE-like) or longer (60: sparse, the AVE event at a random place)."""
    n: int | None = None
    """Clips in all (split sizes scaled from AVE's 3339/402/402); None: :data:`DEFAULT_N` for the length."""
    seed: int = 0
    """The dataset (generator) seed: a different seed is a different draw of every clip."""
    snr_db: float = 6.0
    """Event sound level over the bed (RMS of the sound where it is active, against the room tone)."""
    offscreen_rate: float = 0.2
    """Per background second: chance that another class's recording starts there, with nothing on screen."""
    speech_rate: float = 0.1
    """Per background second: chance that recorded speech (a spoken stamp description) starts there."""
    music_fraction: float = 0.3
    """Fraction of clips with a music bed under everything (needs ``asterisk-moh-opsound-wav``)."""
    music_db: float = 6.0
    """Music bed level over the room tone, dB."""
    silent_event_fraction: float = 0.1
    """Fraction of clips whose object is visible but makes no sound."""
    occlusion_fraction: float = 0.25
    """Fraction of clips in which something covers 30-50 % of the object during about half its seconds."""
    av_offset_s: float = 0.0
    """Picture time minus sound time of the event (> 0: the sound comes early), as ``earmark index --offset``."""
    object_min: float = 0.25
    object_max: float = 0.5
    """The object's width as a fraction of the frame's, drawn per clip."""
    event_s: int | None = None
    """Every event lasts this many seconds, at a random place (None: AVE's label structure, where most 10 s
    clips are one event from start to end)."""
    n_classes: int | None = None
    """Use this many of the classes (evenly spaced over the sorted list); None: :data:`DEFAULT_CLASSES` for the
    clip length (all 72 for 10 s)."""
    size: int = 448
    fps: float = 2.0
    crf: int = 26

    def check(self) -> None:
        total = len(class_table()["classes"])
        if self.n_classes is not None and not 2 <= self.n_classes <= total:
            raise ConfigError(f"n_classes must be in [2, {total}], got {self.n_classes}")
        for name in ("offscreen_rate", "speech_rate", "music_fraction", "silent_event_fraction",
                     "occlusion_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.05 <= self.object_min <= self.object_max <= 0.9:
            raise ConfigError(f"object size must satisfy 0.05 <= object_min <= object_max <= 0.9, got "
                              f"{self.object_min}, {self.object_max}")
        if self.duration_s < 10:
            raise ConfigError(f"duration_s must be >= 10 (AVE clips are 10 s), got {self.duration_s}")
        if abs(self.av_offset_s) >= self.duration_s:
            raise ConfigError(f"av_offset_s must be shorter than the clip, got {self.av_offset_s}")
        if self.event_s is not None and not 1 <= self.event_s <= self.duration_s:
            raise ConfigError(f"event_s must be in [1, duration_s], got {self.event_s}")
        if self.n is not None and self.n < 3:
            raise ConfigError(f"n must be >= 3 (one clip per split at least), got {self.n}")
        if self.size < 112 or self.fps <= 0:
            raise ConfigError(f"size must be >= 112 and fps > 0, got {self.size} and {self.fps}")

    @property
    def classes_used(self) -> int | None:
        return self.n_classes if self.n_classes is not None else DEFAULT_CLASSES.get(self.duration_s)

    @property
    def clips(self) -> int:
        return self.n if self.n is not None else DEFAULT_N.get(self.duration_s, max(30, 10_000 // self.duration_s))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RealStampConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ------------------------------------------------------------------------------------------- package files


def _require(path: Path, package: str, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{path}: {what} not found; install them with: apt-get install {package}")
    return path


@lru_cache(maxsize=1)
def class_table() -> dict[str, Any]:
    """The shipped class list: ``{"classes": [{"name", "stamps": [relative paths]}], "rule", ...}``."""
    return json.loads(resources.files("earmark.eval").joinpath(CLASSES_FILE).read_text(encoding="utf-8"))


def classes(n_classes: int | None = None) -> list[dict[str, Any]]:
    """The classes a config uses: all, or ``n_classes`` evenly spaced over the sorted list."""
    table = class_table()["classes"]
    if n_classes is None or n_classes >= len(table):
        return list(table)
    return [table[int(i * len(table) / n_classes)] for i in range(n_classes)]


def check_package(stamps: Path = STAMPS) -> None:
    """Fail in one line when a stamp the classes name is missing (the package is absent or another version)."""
    _require(stamps, STAMPS_PACKAGE, "Tux Paint stamps")
    for c in class_table()["classes"]:
        for s in c["stamps"]:
            for ext in (".png", ".ogg"):
                if not (stamps / (s + ext)).is_file():
                    raise DatasetError(f"{stamps / (s + ext)}: missing (RealStamp's classes were chosen from "
                                       f"{STAMPS_PACKAGE} {class_table()['package_version']}); reinstall it with: "
                                       f"apt-get install --reinstall {STAMPS_PACKAGE}")


def speech_files(stamps: Path = STAMPS) -> list[str]:
    """The package's English spoken descriptions (``NAME_desc.ogg``), relative to ``stamps``, sorted."""
    return sorted(str(p.relative_to(stamps)) for p in stamps.rglob("*_desc.ogg"))


def music_files(music: Path = MUSIC) -> list[str]:
    return sorted(p.name for p in _require(music, MUSIC_PACKAGE, "music-on-hold recordings").glob("*.wav"))


@lru_cache(maxsize=128)
def load_sound(path: str) -> np.ndarray:
    """A recording as mono float64 at 16 kHz, leading and trailing silence (30 dB under its peak) cut."""
    from ..realsound import load

    x = load(Path(path))  # 16 kHz mono float64, the one decoder of Debian sound-package files
    if len(x) < 160:
        raise DatasetError(f"{path}: too short to use ({len(x)} samples)")
    frames = np.sqrt(np.mean(x[: len(x) // 160 * 160].reshape(-1, 160) ** 2, 1))
    on = np.flatnonzero(frames >= frames.max() * 10 ** (-30 / 20))
    return x[on[0] * 160:(on[-1] + 1) * 160]


def active_rms(x: np.ndarray) -> float:
    """RMS over the 10 ms frames within 30 dB of the loudest (a bark's level, not diluted by its pauses)."""
    n = len(x) // 160 * 160
    if n == 0:
        return rms(x)
    f = np.mean(x[:n].reshape(-1, 160) ** 2, 1)
    return float(np.sqrt(np.mean(f[f >= f.max() * 1e-3])))


def fit_length(x: np.ndarray, n: int, fade: int) -> np.ndarray:
    """``x`` looped (with ``fade``-sample crossfades) or cut to ``n`` samples, faded in and out."""
    if n <= 0:
        return np.zeros(0)
    out = x[:n].copy()
    while len(out) < n:
        f = min(fade, len(out), len(x))
        ramp = np.linspace(0.0, 1.0, f) if f else np.zeros(0)
        nxt = x.copy()
        nxt[:f] *= ramp
        out[len(out) - f:] *= ramp[::-1]
        out[len(out) - f:] += nxt[:f]
        out = np.concatenate([out, nxt[f:]])[:n]
    f = min(fade, n // 2)
    if f:
        ramp = np.linspace(0.0, 1.0, f)
        out[:f] *= ramp
        out[-f:] *= ramp[::-1]
    return out


@lru_cache(maxsize=64)
def load_stamp(path: str) -> np.ndarray:
    """A stamp's picture as RGBA uint8."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


@lru_cache(maxsize=1)
def _backgrounds() -> dict[str, Any]:
    import skimage.data as data
    from PIL import Image

    out = {}
    for i, name in enumerate(BACKGROUNDS):
        img = getattr(data, name)()
        img = np.asarray(img[0] if isinstance(img, tuple) else img)  # stereo_motorcycle: (left, right, disparity)
        if img.ndim == 2:  # grey photographs get a mild tint so colour statistics vary
            tint = np.array([1.0, 0.93, 0.82]) if i % 2 else np.array([0.86, 0.95, 1.0])
            img = (img[..., None] * tint).clip(0, 255)
        out[name] = Image.fromarray(np.ascontiguousarray(img[..., :3].astype(np.uint8)))
    return out


# ------------------------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class StampClip:
    """One generated clip's truth (seconds; intervals ``[start, end)``)."""

    video_id: str
    split: str
    category: str
    class_index: int
    stamp: str
    """The photograph and recording used (relative to the stamps folder)."""
    start_s: int
    end_s: int
    """The object is on screen in these seconds (the AVE label)."""
    silent: bool
    sound_start_s: float
    sound_end_s: float
    """Where its recording plays (the label shifted by ``av_offset_s``; nothing when ``silent``)."""
    offscreen: tuple[tuple[float, float, str], ...]
    """(start, end, stamp): other classes' recordings, with nothing on screen, in background seconds."""
    speech: tuple[tuple[float, float, str], ...]
    """(start, end, file): recorded speech in background seconds."""
    music: str | None
    music_offset_s: float
    occluded_seconds: tuple[int, ...]
    background: str


def _place(free: list[int], rate: float, rng: np.random.Generator, taken: set[int],
           length: Callable[[], float]) -> list[tuple[float, float]]:
    """Sounds starting in seconds of ``free`` (each with chance ``rate``), never running into a second that
    is not free or already ``taken``; marks the seconds they use."""
    free_set = set(free)
    out = []
    for s in free:
        if rng.random() >= rate or s in taken:
            continue
        start = s + rng.uniform(0.0, 0.4)
        end = start + length()
        last = s
        while last + 1 < end and last + 1 in free_set and last + 1 not in taken:
            last += 1
        end = min(end, last + 1.0)
        if end - start < 0.3:
            continue
        taken.update(range(s, last + 1))
        out.append((round(start, 3), round(end, 3)))
    return out


def clip_spec(cfg: RealStampConfig, split: str, i: int, row: tuple[str, int, int]) -> StampClip:
    """Clip ``i`` of ``split``: what is seen and heard when (a pure function of the config)."""
    _, start, end = row
    table = classes(cfg.classes_used)
    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), i, 11])
    ci = int(rng.integers(len(table)))
    members = table[ci]["stamps"]
    stamp = members[int(rng.integers(len(members)))]
    if cfg.duration_s != 10 or cfg.event_s is not None:  # the event, at a random place in the clip
        length = end - start if cfg.event_s is None else cfg.event_s
        start = int(rng.integers(0, cfg.duration_s - length + 1))
        end = start + length
    silent = bool(rng.random() < cfg.silent_event_fraction)
    background_seconds = [s for s in range(cfg.duration_s) if not start <= s < end]
    taken: set[int] = set()
    others = [c for j, c in enumerate(table) if j != ci]
    off = [(a, b, others[int(rng.integers(len(others)))]["stamps"][0])
           for a, b in _place(background_seconds, cfg.offscreen_rate, rng, taken, lambda: rng.uniform(0.6, 2.0))]
    talks = speech_names()
    spk = [(a, b, talks[int(rng.integers(len(talks)))])
           for a, b in _place(background_seconds, cfg.speech_rate, rng, taken, lambda: rng.uniform(0.8, 2.5))]
    music = None
    music_offset = 0.0
    if rng.random() < cfg.music_fraction:
        tracks = music_names()
        music = tracks[int(rng.integers(len(tracks)))]
        music_offset = round(float(rng.uniform(0.0, 60.0)), 3)
    occluded: tuple[int, ...] = ()
    if rng.random() < cfg.occlusion_fraction and end - start > 1:
        k = max(1, (end - start) // 2)
        first = int(rng.integers(start, end - k + 1))
        occluded = tuple(range(first, first + k))
    s0 = min(max(start - cfg.av_offset_s, 0.0), cfg.duration_s)
    s1 = min(max(end - cfg.av_offset_s, 0.0), cfg.duration_s)
    return StampClip(video_id=f"{split}{i:05d}", split=split, category=table[ci]["name"], class_index=ci,
                     stamp=stamp, start_s=start, end_s=end, silent=silent, sound_start_s=float(s0),
                     sound_end_s=float(s1), offscreen=tuple(off), speech=tuple(spk), music=music,
                     music_offset_s=music_offset, occluded_seconds=occluded,
                     background=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])


@lru_cache(maxsize=1)
def speech_names() -> tuple[str, ...]:
    return tuple(speech_files())


@lru_cache(maxsize=1)
def music_names() -> tuple[str, ...]:
    return tuple(music_files())


def clip_audio(cfg: RealStampConfig, spec: StampClip, i: int, parts: tuple[str, ...] | None = None,
               stamps: Path = STAMPS, music_dir: Path = MUSIC) -> np.ndarray:
    """The clip's sound at 16 kHz: room tone (+ music), the event's recording, off-screen sounds and speech.
    ``parts`` keeps only some of ``("bed", "event", "offscreen", "speech")`` (for tests); None: all."""
    keep = set(parts) if parts is not None else {"bed", "event", "offscreen", "speech"}
    rng = np.random.default_rng([cfg.seed, SPLITS.index(spec.split), i, 12])
    sr = SAMPLE_RATE
    n = cfg.duration_s * sr
    bg_rms = 10 ** (BACKGROUND_DB / 20)
    drift = 1 + 0.15 * np.sin(2 * np.pi * np.arange(n) / sr / rng.uniform(4, 9) + rng.uniform(0, 6.3))
    out = room_tone(cfg.duration_s, sr, rng) * bg_rms * drift
    if "bed" not in keep:
        out[:] = 0.0
    elif spec.music is not None:
        x = load_sound(str(music_dir / spec.music))
        a = int(spec.music_offset_s * sr) % max(1, len(x) - 1)
        bed = fit_length(np.concatenate([x[a:], x[:a]]), n, int(FADE_S * sr))
        out += bed / max(active_rms(bed), 1e-12) * bg_rms * 10 ** (cfg.music_db / 20)
    level = bg_rms * 10 ** (cfg.snr_db / 20)
    fade = int(FADE_S * sr)

    def add(path: Path, a_s: float, b_s: float) -> None:
        a, b = int(round(a_s * sr)), int(round(b_s * sr))
        x = load_sound(str(path))
        snd = fit_length(x, b - a, fade)
        out[a:b] += snd / max(active_rms(x), 1e-12) * level

    if "event" in keep and not spec.silent and spec.sound_end_s > spec.sound_start_s:
        add(stamps / (spec.stamp + ".ogg"), spec.sound_start_s, spec.sound_end_s)
    if "offscreen" in keep:
        for a_s, b_s, stamp in spec.offscreen:
            add(stamps / (stamp + ".ogg"), a_s, b_s)
    if "speech" in keep:
        for a_s, b_s, f in spec.speech:
            add(stamps / f, a_s, b_s)
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    if peak > 0.99:
        out *= 0.99 / peak
    return out.astype(np.float32)


def clip_frames(cfg: RealStampConfig, spec: StampClip, i: int, show_object: bool = True,
                stamps: Path = STAMPS) -> Callable[[int, float], np.ndarray]:
    """``frame_fn(i, t)`` for :func:`earmark.media.write.write_media`: camera over a photograph, and the
    object's photograph in the event seconds (moving, breathing in scale, sometimes partly covered)."""
    from PIL import Image

    rng = np.random.default_rng([cfg.seed, SPLITS.index(spec.split), i, 13])
    S = cfg.size
    pictures = _backgrounds()
    view = camera(pictures[spec.background], S, rng)
    rgba = load_stamp(str(stamps / (spec.stamp + ".png")))
    if rng.random() < 0.5:
        rgba = rgba[:, ::-1]
    h0, w0 = rgba.shape[:2]
    width = rng.uniform(cfg.object_min, cfg.object_max) * S
    scale = min(width / w0, 0.9 * S / h0)
    obj = Image.fromarray(np.ascontiguousarray(rgba))
    w, h = w0 * scale, h0 * scale
    p0 = np.array([rng.uniform(w / 2, S - w / 2), rng.uniform(h / 2, S - h / 2)])
    p1 = np.clip(p0 + rng.uniform(-0.12, 0.12, 2) * S, [w / 2, h / 2], [S - w / 2, S - h / 2])
    breathe = (rng.uniform(0.03, 0.07), rng.uniform(3.0, 7.0), rng.uniform(0, 2 * np.pi))
    cover_side = int(rng.integers(4))
    cover_frac = rng.uniform(0.3, 0.5)
    cover = np.asarray(pictures[BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]].resize((S, S)), np.float32)
    occluded = set(spec.occluded_seconds)
    length = max(1, spec.end_s - spec.start_s)

    def frame(_: int, t: float) -> np.ndarray:
        img = view(t / cfg.duration_s, t)
        if show_object and spec.start_s <= t < spec.end_s:
            u = (t - spec.start_s) / length
            k = 1 + breathe[0] * np.sin(2 * np.pi * t / breathe[1] + breathe[2])
            ww, hh = max(4, int(round(w * k))), max(4, int(round(h * k)))
            cx, cy = p0 + (p1 - p0) * u
            small = np.asarray(obj.resize((ww, hh), Image.BILINEAR), np.float32)
            paste(img, small[..., :3], small[..., 3:] / 255.0, cx, cy)
            if int(t) in occluded:  # a piece of another photograph covers one side of the object
                x0, y0 = int(round(cx - ww / 2)), int(round(cy - hh / 2))
                cw, ch = int(ww * cover_frac), int(hh * cover_frac)
                box = [(x0, y0, x0 + cw, y0 + hh), (x0 + ww - cw, y0, x0 + ww, y0 + hh),
                       (x0, y0, x0 + ww, y0 + ch), (x0, y0 + hh - ch, x0 + ww, y0 + hh)][cover_side]
                xa, ya, xb, yb = max(0, box[0]), max(0, box[1]), min(S, box[2]), min(S, box[3])
                if xa < xb and ya < yb:
                    img[ya:yb, xa:xb] = cover[ya:yb, xa:xb]
        return np.clip(img, 0, 255).astype(np.uint8)

    return frame


# ------------------------------------------------------------------------------------------- folder


def plan_clips(cfg: RealStampConfig) -> list[tuple[StampClip, int]]:
    out = []
    for split, count in split_sizes(cfg.clips).items():
        for i, row in enumerate(sample_rows(split, count, cfg.seed)):
            out.append((clip_spec(cfg, split, i, row), i))
    return out


def make_realstamp(out_dir: str | Path, config: RealStampConfig | None = None, *, workers: int | None = None,
                   progress: Progress | None = None) -> Path:
    """Write a RealStamp folder in the AVE layout (resumable: finished clips are kept).

    >>> make_realstamp("realstamp", RealStampConfig(n=60))   # doctest: +SKIP

    Writes ``Annotations.txt``, the split files, ``AVE/<id>.mp4`` and ``realstamp.json`` (the config, the
    classes and every clip's truth). Needs ``tuxpaint-stamps-default`` (and ``asterisk-moh-opsound-wav`` when
    ``music_fraction`` > 0); a missing package is a one-line error naming the ``apt-get install``.
    """
    cfg = config or RealStampConfig()
    cfg.check()
    check_package()
    if cfg.music_fraction > 0:
        music_files()
    root = Path(out_dir)
    videos = open_folder(root, MANIFEST, "earmark.realstamp", asdict(cfg), asdict(RealStampConfig()))
    todo = plan_clips(cfg)
    run_jobs(write_clip, [(clip_audio, clip_frames, cfg, spec, i, str(videos), SAMPLE_RATE) for spec, i in todo],
             workers, progress)
    rows = [(spec.split, f"{spec.category}&{spec.video_id}&good&{spec.start_s}&{spec.end_s}") for spec, _ in todo]
    finish_folder(root, MANIFEST, rows, {"kind": "earmark.realstamp", "version": 1, "config": asdict(cfg),
                                         "classes": [c["name"] for c in classes(cfg.classes_used)],
                                         "segments": cfg.duration_s, "package": STAMPS_PACKAGE,
                                         "package_version": class_table()["package_version"],
                                         "clips": [asdict(spec) for spec, _ in todo]})
    return root


# ------------------------------------------------------------------------------------------- the class rule


def _colours(rgba: np.ndarray) -> int:
    opaque = rgba[..., 3] > 128
    return len(np.unique(rgba[..., :3][opaque] // 8, axis=0)) if opaque.any() else 0


def _same_sound(a: np.ndarray, b: np.ndarray) -> float:
    """Zero-lag correlation of two recordings of (nearly) one length; 0 when the lengths differ by > 5 %."""
    if abs(len(a) - len(b)) > 0.05 * max(len(a), len(b)):
        return 0.0
    n = min(len(a), len(b))
    x, y = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    return float(abs(x @ y) / np.sqrt((x @ x) * (y @ y) + 1e-12))


def _stem(rel: str) -> str:
    """A stamp's thing: its name up to the first ``_``, without trailing digits (``pig_golden2`` -> ``pig``)."""
    return Path(rel).name.split("_")[0].rstrip("0123456789") or Path(rel).name


def _class_name(stamps: list[str]) -> str:
    """One stamp: its name; several of one thing: the thing (``pig``); else the names joined (``badger/beaver``)."""
    stems = set(map(_stem, stamps))
    return stems.pop() if len(stamps) > 1 and len(stems) == 1 else "/".join(Path(s).name for s in stamps)


def _same_thing(a: tuple[str, np.ndarray], b: tuple[str, np.ndarray]) -> bool:
    """Near-duplicates: the same recording, or the same thing (name stem) in the same folder."""
    same_name = Path(a[0]).parent == Path(b[0]).parent and _stem(a[0]) == _stem(b[0])
    return same_name or _same_sound(a[1], b[1]) >= SAME_SOUND


def find_classes(stamps: Path = STAMPS) -> dict[str, Any]:
    """Apply the class rule (module docstring) to the installed package: the document ``realstamp_classes.json``
    holds. Needs the ``probes`` extra (Silero VAD) to tell speech from other sounds."""
    from ..probes import get_probe

    _require(stamps, STAMPS_PACKAGE, "Tux Paint stamps")
    vad = get_probe("vad")
    kept: list[tuple[str, np.ndarray]] = []
    excluded: dict[str, str] = {}
    for png in sorted(stamps.rglob("*.png")):
        rel = str(png.relative_to(stamps).with_suffix(""))
        ogg = png.with_suffix(".ogg")
        if not ogg.is_file():
            continue
        if rel.startswith("symbols/"):
            excluded[rel] = "symbols (letters, digits, faces: spoken or drawn)"
            continue
        rgba = load_stamp(str(png))
        if min(rgba.shape[:2]) < PHOTO_MIN_SIDE or _colours(rgba) < PHOTO_MIN_COLOURS:
            excluded[rel] = f"not a photograph ({rgba.shape[1]}x{rgba.shape[0]}, {_colours(rgba)} colours)"
            continue
        x = load_sound(str(ogg))
        vad.reset()
        p = vad.frame_values(x[: len(x) // 160 * 160].reshape(-1, 160).astype(np.float32))
        speech = float((p >= 0.5).mean())
        if speech >= SPEECH_MAX:
            excluded[rel] = f"speech ({speech:.0%} of the recording)"
            continue
        kept.append((rel, x))
    groups: list[list[int]] = []
    for i in range(len(kept)):  # union of "same thing" pairs, in path order
        home = next((g for g in groups if any(_same_thing(kept[i], kept[j]) for j in g)), None)
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    classes = [{"name": _class_name([kept[j][0] for j in g]), "stamps": [kept[j][0] for j in g]} for g in groups]
    return {"kind": "earmark.realstamp-classes", "version": 1, "package": STAMPS_PACKAGE,
            "rule": {"photo_min_colours": PHOTO_MIN_COLOURS, "photo_min_side": PHOTO_MIN_SIDE,
                     "speech_max": SPEECH_MAX, "same_sound": SAME_SOUND},
            "classes": sorted(classes, key=lambda c: c["name"]), "excluded": excluded}
