"""Real recordings from Debian packages, mixed into seeded clips: object sounds over music, speech or room tone.

Sound sets name a package, where it installs its files and which of them count (object sounds, spoken names,
music). :func:`make_clip` lays ``events`` recordings (1–3 s each, faded) into a 60 s bed at SNRs drawn from a
range; every random choice comes from the ``rng`` it is given, so a seed gives the same arrays on every machine
with the same packages. Used by ``earmark train-probe --dataset sounds`` (the training set of the ``learned``
probe), benchmarks/anchor_rules.py and benchmarks/learned_probe.py (a held-out set from other packages).

>>> from earmark import realsound as rs                                          # doctest: +SKIP
>>> pool = rs.load_pool(rs.TRAIN_SETS)                                           # doctest: +SKIP
>>> rng = np.random.default_rng(0)                                               # doctest: +SKIP
>>> clip = rs.make_clip(rng, "music", pool.events, pool.music, pool.speech)      # doctest: +SKIP
>>> clip.audio.shape, len(clip.truth)                                            # doctest: +SKIP
((960000,), 5)
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .errors import ConfigError

SR = 16_000
CLIP_S = 60.0
EVENTS_PER_CLIP = 5
BEDS = ("music", "speech", "room")
Role = Literal["event", "speech", "music"]


def _tuxpaint_object(p: Path, root: Path) -> bool:
    # An object's own sound is NAME.ogg beside its picture; spoken names are NAME_desc*.ogg or NAME_<lang>.ogg
    # (no picture of that name), and symbols/ holds spoken letters and digits.
    if "_desc" in p.stem or p.relative_to(root).parts[0] == "symbols":
        return False
    return p.with_suffix(".png").exists() or p.with_suffix(".svg").exists()


def _tuxpaint_name(p: Path, root: Path) -> bool:
    return "_desc" in p.stem and p.relative_to(root).parts[0] != "symbols"


def _not(*prefixes: str) -> Callable[[Path, Path], bool]:
    return lambda p, root: not p.name.startswith(prefixes)


@dataclass(frozen=True)
class SoundSet:
    """Recordings one Debian package installs: where, which files, and what they are in a mixture."""

    name: str
    package: str
    root: str
    role: Role
    pattern: str
    licence: str
    keep: Callable[[Path, Path], bool] | None = None
    """(file, root) -> whether the file belongs to the set (beyond matching ``pattern``)."""
    limit: int | None = None
    """Take at most this many files, evenly spread over the sorted list (a large set of short speech files)."""

    def files(self) -> list[Path]:
        """The set's files, sorted; a :class:`ConfigError` naming the ``apt-get install`` when it is missing."""
        root = Path(self.root)
        if not root.is_dir():
            raise ConfigError(f"{root}: not found; the {self.name!r} sounds need: apt-get install {self.package}")
        out = [p for p in sorted(root.glob(self.pattern)) if p.is_file() and (self.keep is None or self.keep(p, root))]
        if not out:
            raise ConfigError(f"{root}: no {self.pattern} files of the {self.name!r} sounds; reinstall: "
                              f"apt-get install --reinstall {self.package}")
        if self.limit is not None and len(out) > self.limit:
            out = [out[i] for i in np.linspace(0, len(out) - 1, self.limit).round().astype(int)]
        return out


_STAMPS = "/usr/share/tuxpaint/stamps"
SOUND_SETS: dict[str, SoundSet] = {s.name: s for s in (
    # Training sets (the learned probe and the anchor-rules benchmark).
    SoundSet("tuxpaint-objects", "tuxpaint-stamps-default", _STAMPS, "event", "**/*.ogg", "GPL-2",
             _tuxpaint_object),
    SoundSet("tuxpaint-names", "tuxpaint-stamps-default", _STAMPS, "speech", "**/*_desc*.ogg", "GPL-2",
             _tuxpaint_name, limit=300),
    SoundSet("asterisk-en", "asterisk-core-sounds-en-wav", "/usr/share/asterisk/sounds/en", "speech", "*.wav",
             "CC-BY-SA-3.0", limit=200),
    SoundSet("asterisk-moh", "asterisk-moh-opsound-wav", "/usr/share/asterisk/moh", "music", "*.wav",
             "CC-BY-SA-3.0"),
    # Held-out sets: other packages, never seen in training.
    SoundSet("minetest", "minetest-data", "/usr/share/games/minetest/games/minetest_game", "event",
             "mods/*/sounds/*.ogg", "CC-BY-SA-3.0, CC-BY-3.0, CC0-1.0"),
    SoundSet("freedesktop", "sound-theme-freedesktop", "/usr/share/sounds/freedesktop/stereo", "event", "*.oga",
             "GPL-2+, CC-BY-3.0, CC-BY-SA-3.0", _not("audio-channel-", "audio-test-signal")),
    SoundSet("teeworlds", "teeworlds-data", "/usr/share/games/teeworlds/data/audio", "event", "*.wv",
             "CC-BY-SA-3.0", _not("music_")),
    SoundSet("chromium-bsu", "chromium-bsu-data", "/usr/share/games/chromium-bsu/wav", "event", "*.wav",
             "Clarified-Artistic", _not("music_")),
    SoundSet("chromium-bsu-music", "chromium-bsu-data", "/usr/share/games/chromium-bsu/wav", "music",
             "music_*.wav", "Clarified-Artistic"),
    SoundSet("mu-cade-music", "mu-cade-data", "/usr/share/games/mu-cade/sounds/musics", "music", "*.ogg",
             "BSD-2-clause"),
    SoundSet("asterisk-fr", "asterisk-core-sounds-fr-wav", "/usr/share/asterisk/sounds/fr", "speech", "*.wav",
             "CC-BY-SA-3.0", limit=200),
)}

TRAIN_SETS = ("tuxpaint-objects", "tuxpaint-names", "asterisk-en", "asterisk-moh")
"""What the ``learned`` probe is trained on (``earmark train-probe --dataset sounds``)."""
HELDOUT_SETS = ("minetest", "freedesktop", "teeworlds", "chromium-bsu", "chromium-bsu-music", "mu-cade-music",
                "asterisk-fr")
"""benchmarks/learned_probe.py: events, music and speech from packages the training never read."""


def packages(names: Sequence[str]) -> str:
    """The Debian packages that hold these sound sets, for one ``apt-get install``."""
    return " ".join(dict.fromkeys(SOUND_SETS[n].package for n in names))


def require(names: Sequence[str]) -> None:
    """A :class:`ConfigError` naming one ``apt-get install`` for every missing package, before any decoding."""
    absent = [n for n in names if not Path(SOUND_SETS[n].root).is_dir()]
    if absent:
        raise ConfigError(f"{SOUND_SETS[absent[0]].root}: not found; the {', '.join(absent)} sounds need: "
                          f"apt-get install {packages(absent)}")


def split_of(path: Path, val_share: int = 2) -> str:
    """``val`` or ``test``/``train`` by a hash of the file name: one file in ``val_share`` is ``val``."""
    return "val" if zlib.crc32(path.stem.encode()) % val_share == 0 else "rest"


def load(path: Path, seconds: float | None = None) -> np.ndarray:
    """A recording as 16 kHz mono float64 (its first ``seconds``)."""
    from .media.audio import stream_audio
    from .media.container import info

    vi = info(path)
    x = np.concatenate(list(stream_audio(vi, sample_rate=SR))) if vi.duration_s > 0 else np.zeros(0)
    x = x.astype(np.float64)
    return x if seconds is None else x[: int(seconds * SR)]


def active(x: np.ndarray) -> np.ndarray:
    """The recording without leading/trailing near-silence (40 dB under its peak)."""
    env = np.abs(x)
    on = np.flatnonzero(env > env.max() * 0.01) if len(x) and env.max() > 0 else np.array([0, len(x) - 1])
    return x[on[0]: on[-1] + 1]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0


@dataclass(frozen=True)
class Pool:
    """Decoded recordings by role: events (trimmed, >= 0.5 s), music (first 240 s), speech (trimmed)."""

    events: list[np.ndarray]
    music: list[np.ndarray]
    speech: list[np.ndarray]
    files: dict[str, list[str]]


def load_pool(names: Sequence[str], keep: Callable[[Path], bool] | None = None) -> Pool:
    """Decode the sound sets ``names`` (``keep`` filters event files, e.g. by :func:`split_of`)."""
    require(names)
    out: dict[str, list[np.ndarray]] = {"event": [], "music": [], "speech": []}
    files: dict[str, list[str]] = {"event": [], "music": [], "speech": []}
    for name in names:
        s = SOUND_SETS[name]
        for p in s.files():
            if s.role == "event":
                if keep is not None and not keep(p):
                    continue
                x = active(load(p, 6.0))
                if len(x) < 0.5 * SR:
                    continue
            elif s.role == "music":
                x = load(p, 240.0)
            else:
                x = active(load(p))
            out[s.role].append(x)
            files[s.role].append(str(p))
    return Pool(out["event"], out["music"], out["speech"], files)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS pink noise (1/f power), the room tone under every bed."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec))
    spec[1:] /= np.sqrt(f[1:])
    x = np.fft.irfft(spec, n)
    return x / (rms(x) + 1e-12)


def make_bed(kind: str, rng: np.random.Generator, music: Sequence[np.ndarray], speech: Sequence[np.ndarray],
             clip_s: float = CLIP_S) -> np.ndarray:
    """Room tone (pink noise at RMS 0.01), plus music (a random excerpt at RMS 0.1) or speech (recordings back to
    back with 0.1–0.6 s pauses, each at RMS 0.1) unless ``kind`` is ``room``."""
    if kind not in BEDS:
        raise ConfigError(f"unknown bed {kind!r}: use {', '.join(BEDS)}")
    n = int(clip_s * SR)
    bed = 0.01 * pink(n, rng)
    if kind == "music":
        m = music[int(rng.integers(len(music)))]
        start = int(rng.integers(0, max(1, len(m) - n)))
        seg = m[start: start + n]
        bed[: len(seg)] += 0.1 * seg / (rms(seg) + 1e-12)
    elif kind == "speech":
        pos = int(rng.integers(0, SR))
        while pos < n:
            s = speech[int(rng.integers(len(speech)))]
            take = min(len(s), n - pos)
            bed[pos: pos + take] += 0.1 * s[:take] / (rms(s) + 1e-12)
            pos += take + int(rng.uniform(0.1, 0.6) * SR)
    return bed


@dataclass(frozen=True)
class Mixture:
    """A clip: 16 kHz mono float32 audio, the events' ``[start, end)`` seconds, the bed, and each event's SNR."""

    audio: np.ndarray
    truth: list[tuple[float, float]]
    bed: str
    snr_db: list[float]


def make_clip(rng: np.random.Generator, bed: str, events: Sequence[np.ndarray], music: Sequence[np.ndarray],
              speech: Sequence[np.ndarray], n_events: int = EVENTS_PER_CLIP, snr_db: tuple[float, float] = (-6.0, 9.0),
              clip_s: float = CLIP_S, gain_db: tuple[float, float] | None = None) -> Mixture:
    """``n_events`` recordings, one per 4 s slot (slots drawn without replacement), 1–3 s of each with 20 ms fades,
    at an SNR drawn from ``snr_db`` against the bed's RMS; then a clip gain drawn from ``gain_db`` (None: none), and
    the peak held under 0.99."""
    if n_events and not events:
        raise ConfigError("no event recordings to mix (every file was shorter than 0.5 s or filtered out)")
    x = make_bed(bed, rng, music, speech, clip_s)
    bed_rms = rms(x)
    truth: list[tuple[float, float]] = []
    snrs: list[float] = []
    slots = np.sort(rng.choice(np.arange(1, int(clip_s / 4) - 1), size=n_events, replace=False)) * 4.0
    for t0 in slots:
        rec = events[int(rng.integers(len(events)))]
        dur = float(rng.uniform(1.0, 3.0))
        seg = rec[: int(dur * SR)].copy()
        dur = len(seg) / SR
        start = float(t0 + rng.uniform(0, 4.0 - dur))
        fade = min(len(seg) // 4, int(0.02 * SR))
        if fade:
            seg[:fade] *= np.linspace(0, 1, fade)
            seg[-fade:] *= np.linspace(1, 0, fade)
        snr = float(rng.uniform(*snr_db))
        seg *= bed_rms * 10 ** (snr / 20) / (rms(seg) + 1e-12)
        i = int(start * SR)
        x[i: i + len(seg)] += seg
        truth.append((start, start + dur))
        snrs.append(snr)
    if gain_db is not None:
        x *= 10 ** (float(rng.uniform(*gain_db)) / 20)
    peak = np.abs(x).max()
    if peak > 0.99:
        x *= 0.99 / peak
    return Mixture(x.astype(np.float32), truth, bed, snrs)


def window_targets(truth: Sequence[tuple[float, float]], starts: np.ndarray, window_s: float,
                   min_overlap_s: float = 0.25) -> np.ndarray:
    """Per window: 1 when an event covers at least ``min_overlap_s`` of it, 0 when none touches it, -1 (ignore)
    for a window that only grazes an event."""
    ov = np.zeros(len(starts))
    for s, e in truth:
        ov = np.maximum(ov, np.clip(np.minimum(starts + window_s, e) - np.maximum(starts, s), 0.0, None))
    return np.where(ov >= min_overlap_s, 1.0, np.where(ov > 0, -1.0, 0.0)).astype(np.float32)


def event_recall(anchors: Sequence, truth: Sequence[tuple[float, float]], k: int) -> float:
    """Recall@K of distinct events: events that an anchor's region ``[start_s, end_s)`` overlaps, over
    ``min(k, events)`` (the measure of benchmarks/anchor_rules.py and benchmarks/learned_probe.py)."""
    hit = {j for a in anchors for j, (s, e) in enumerate(truth) if a.start_s < e and s < a.end_s}
    return len(hit) / min(k, len(truth))
