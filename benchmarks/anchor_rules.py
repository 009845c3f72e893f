"""Which anchor rule finds real sounds: Recall@K of *distinct* events on real recordings over real beds.

The set (built once, cached in benchmarks/_media/realsound/): 60 s mono clips, each with 5 real object recordings
from Debian's `tuxpaint-stamps-default` (animals, household, vehicles, instruments …; 1–3 s each, faded, at an SNR
drawn from [-6, +9] dB against the bed) over a bed of real music (`asterisk-moh-opsound-wav`), real speech
(`asterisk-core-sounds-en-wav` prompts, back to back) or room tone only, always with a pink-noise room tone.
Recordings are split by name into val and test (a hash of the file name), so a setting chosen on val is reported
on test. Flat clips (bed only, no events) measure how often a rule falls back where nothing happens.

Rules, all on the same energy / flux scores (the index is computed once per clip):
  topk-plain   top-K windows, gap one hop, never falls back (what the scores alone give)
  topk-old     the old default: top-K, gap 1 s, uniform fallback when no window reaches z = 3
  events L/M   distinct events: runs at z >= L are one event each (anchor at its peak), gap two hops,
               fallback when no window reaches z = M

Recall@K = events hit by an anchor window (Δ = 0: the window overlaps the event) / min(K, events in the clip).

    python benchmarks/anchor_rules.py [--clips 80] [--k 2 5] [--probes energy flux]

Needs: apt-get install tuxpaint-stamps-default asterisk-moh-opsound-wav asterisk-core-sounds-en-wav
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

import earmark
from earmark.anchors import AnchorConfig, choose_anchors
from earmark.media.audio import stream_audio
from earmark.media.probe import info as probe_info
from earmark.media.write import write_media

SR = 16_000
CLIP_S = 60.0
EVENTS_PER_CLIP = 5
STAMPS = Path("/usr/share/tuxpaint/stamps")
MUSIC = Path("/usr/share/asterisk/moh")
SPEECH = Path("/usr/share/asterisk/sounds/en")
CACHE = Path(__file__).parent / "_media" / "realsound"
PACKAGES = "tuxpaint-stamps-default asterisk-moh-opsound-wav asterisk-core-sounds-en-wav"


def _load(path: Path, seconds: float | None = None) -> np.ndarray:
    vi = probe_info(path)
    x = np.concatenate([c for c in stream_audio(vi, sample_rate=SR)]) if vi.duration_s > 0 else np.zeros(0)
    x = x.astype(np.float64)
    return x if seconds is None else x[: int(seconds * SR)]


def object_sounds() -> list[Path]:
    """Non-speech recordings of the stamps (spoken names end in _desc or a language code)."""
    out = []
    for p in sorted(STAMPS.rglob("*.ogg")):
        stem = p.stem
        if "_desc" in stem or (len(stem) > 3 and stem[-3] == "_" and stem[-2:].isalpha() and stem[-2:].islower()):
            continue
        if len(stem) > 6 and stem[-6] == "_" and stem[-5:-3].isalpha() and stem[-3] == "_":  # name_pt_BR
            continue
        out.append(p)
    return out


def split_of(path: Path) -> str:
    return "val" if zlib.crc32(path.stem.encode()) % 2 == 0 else "test"


def _active(x: np.ndarray) -> np.ndarray:
    """The recording without leading/trailing near-silence (40 dB under its peak)."""
    env = np.abs(x)
    on = np.flatnonzero(env > env.max() * 0.01) if len(x) and env.max() > 0 else np.array([0, len(x) - 1])
    return x[on[0]: on[-1] + 1]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec))
    spec[1:] /= np.sqrt(f[1:])
    x = np.fft.irfft(spec, n)
    return x / (_rms(x) + 1e-12)


def make_bed(kind: str, rng: np.random.Generator, music: list[np.ndarray], speech: list[np.ndarray]) -> np.ndarray:
    n = int(CLIP_S * SR)
    bed = 0.01 * pink(n, rng)
    if kind == "music":
        m = music[int(rng.integers(len(music)))]
        start = int(rng.integers(0, max(1, len(m) - n)))
        seg = m[start: start + n]
        bed[: len(seg)] += 0.1 * seg / (_rms(seg) + 1e-12)
    elif kind == "speech":
        pos = int(rng.integers(0, SR))
        while pos < n:
            s = speech[int(rng.integers(len(speech)))]
            take = min(len(s), n - pos)
            bed[pos: pos + take] += 0.1 * s[:take] / (_rms(s) + 1e-12)
            pos += take + int(rng.uniform(0.1, 0.6) * SR)
    return bed


def make_clip(seed: int, split: str, sounds: dict[str, list[np.ndarray]], music, speech,
              events: int = EVENTS_PER_CLIP) -> tuple[np.ndarray, list[tuple[float, float]], str]:
    rng = np.random.default_rng([seed, 0 if split == "val" else 1])
    kind = ("music", "speech", "room")[seed % 3]
    x = make_bed(kind, rng, music, speech)
    bed_rms = _rms(x)
    truth: list[tuple[float, float]] = []
    slots = np.sort(rng.choice(np.arange(1, int(CLIP_S / 4) - 1), size=events, replace=False)) * 4.0
    for t0 in slots:
        rec = sounds[split][int(rng.integers(len(sounds[split])))]
        dur = float(rng.uniform(1.0, 3.0))
        seg = rec[: int(dur * SR)].copy()
        dur = len(seg) / SR
        start = float(t0 + rng.uniform(0, 4.0 - dur))
        fade = min(len(seg) // 4, int(0.02 * SR))
        if fade:
            seg[:fade] *= np.linspace(0, 1, fade)
            seg[-fade:] *= np.linspace(1, 0, fade)
        snr_db = float(rng.uniform(-6.0, 9.0))
        seg *= bed_rms * 10 ** (snr_db / 20) / (_rms(seg) + 1e-12)
        i = int(start * SR)
        x[i: i + len(seg)] += seg
        truth.append((start, start + dur))
    peak = np.abs(x).max()
    if peak > 0.99:
        x *= 0.99 / peak
    return x.astype(np.float32), truth, kind


def build(clips: int) -> list[dict]:
    manifest = CACHE / f"manifest_{clips}.json"
    if manifest.exists():
        return json.loads(manifest.read_text())
    missing = [p for p in (STAMPS, MUSIC, SPEECH) if not p.is_dir()]
    if missing:
        sys.exit(f"{missing[0]}: not installed; apt-get install {PACKAGES}")
    CACHE.mkdir(parents=True, exist_ok=True)
    sounds: dict[str, list[np.ndarray]] = {"val": [], "test": []}
    for p in object_sounds():
        a = _active(_load(p, 6.0))
        if len(a) >= 0.5 * SR:
            sounds[split_of(p)].append(a)
    music = [_load(p, 240.0) for p in sorted(MUSIC.glob("*.wav"))]
    speech = [_active(_load(p)) for p in sorted(SPEECH.glob("*.wav"))[:200]]
    rows = []
    for split in ("val", "test"):
        for i in range(clips):
            flat = i % 8 == 7  # one clip in eight: the bed alone, nothing happens
            x, truth, kind = make_clip(i, split, sounds, music, speech, events=0 if flat else EVENTS_PER_CLIP)
            path = CACHE / f"{split}_{i:03d}.wav"
            write_media(path, CLIP_S, x, SR, video=None)
            rows.append({"path": str(path), "split": split, "bed": kind, "truth": truth})
    manifest.write_text(json.dumps({"rows": rows, "recordings": {k: len(v) for k, v in sounds.items()}}))
    return json.loads(manifest.read_text())


def recall(picks: list, truth: list[tuple[float, float]], k: int) -> float:
    hit = {j for a in picks for j, (s, e) in enumerate(truth) if a.start_s < e and s < a.end_s}
    return len(hit) / min(k, len(truth))


RULES = {"topk-plain": dict(mode="topk", min_gap_s=None, min_score=-np.inf, gap_hops=1),
         "topk-old": dict(mode="topk", min_gap_s=1.0, min_score=3.0)}
for level in (1.0, 1.5, 2.0, 3.0):
    for m in (-np.inf, 1.5, 2.0, 2.5, 3.0):
        RULES[f"events L={level:g} M={m:g}"] = dict(mode="events", event_level=level, min_score=m)


def run_rule(tl, rule: dict, k: int):
    rule = dict(rule)
    hops = rule.pop("gap_hops", None)
    if hops is not None:
        rule["min_gap_s"] = hops * tl.hop_s
    cfg = AnchorConfig(k=k, **rule)
    return choose_anchors(tl.scores, tl.confidence, tl.coverage, tl.starts, tl.window_s, tl.hop_s, tl.duration_s,
                          cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=80, help="Clips per split (one in eight is bed only).")
    ap.add_argument("--k", type=int, nargs="+", default=[2, 5])
    ap.add_argument("--probes", nargs="+", default=["energy", "flux"])
    args = ap.parse_args()
    doc = build(args.clips)
    rows = doc["rows"]
    print(f"{len(rows)} clips of {CLIP_S:g} s; recordings val/test: {doc['recordings']}")
    for probe in args.probes:
        tls = [earmark.index(r["path"], probe=probe) for r in rows]
        print(f"\nprobe {probe}: Recall@K of distinct events (mean over clips with events), and the share of "
              f"bed-only clips that fall back\n")
        head = f"{'rule':24s}" + "".join(f" {'val@' + str(k):>8s} {'test@' + str(k):>8s}" for k in args.k)
        print(head + f" {'flat fb':>8s} {'event fb':>8s}")
        for name, rule in RULES.items():
            cells = []
            for k in args.k:
                for split in ("val", "test"):
                    vals = [recall(run_rule(tl, rule, k), r["truth"], k)
                            for tl, r in zip(tls, rows) if r["split"] == split and r["truth"]]
                    cells.append(np.mean(vals))
            flat = [run_rule(tl, rule, args.k[0])[0].source == "fallback" for tl, r in zip(tls, rows) if not r["truth"]]
            ev = [run_rule(tl, rule, args.k[0])[0].source == "fallback" for tl, r in zip(tls, rows) if r["truth"]]
            print(f"{name:24s}" + "".join(f" {c:8.3f}" for c in cells) + f" {np.mean(flat):8.2f} {np.mean(ev):8.2f}")


if __name__ == "__main__":
    main()
