"""The shipped `learned` probe on sounds it never heard: Recall@2 of distinct events per SNR, beside energy, flux and
onset.

Held-out set (nothing from the training packages but the pink room tone): 60 s mono clips, each with 5 real
recordings (1–3 s each, faded) from four packages the probe never read — `minetest-data` (digging, doors, glass,
fire, water, explosions), `sound-theme-freedesktop` (bells, alarm, camera shutter, phone; its spoken channel
names left out), `teeworlds-data` (game foley, weapons, cries) and `chromium-bsu-data` (explosions, power-ups) —
over a bed of music (`mu-cade-data`'s four tracks and `chromium-bsu-data`'s two; training used Asterisk's music on
hold), speech (`asterisk-core-sounds-fr-wav`: Canadian French prompts by another speaker; training used the
English ones and Tux Paint's spoken names) or room tone only, always with a pink-noise room tone. Every event of a
clip is at the same SNR against the bed; clip i has the same bed, recordings and times at every SNR (paired).

Recall@2 = events hit by one of the 2 default anchors (distinct events: `events` mode, level 1, fallback below
z = 1.5; Δ = 0: the anchor window overlaps the event) / min(2, events), exactly as benchmarks/anchor_rules.py.
Intervals: 95 % bootstrap over clips (2000 resamples, seeded; the `all` row resamples clips with their mean over
the SNRs); `learned − energy` is a paired bootstrap.

Goal stated before the first run: pooled over all SNRs, learned Recall@2 >= energy Recall@2 + 0.10.

    python benchmarks/learned_probe.py [--clips 48] [--snr -6 -3 0 3 6 12] [--seed 0]

Needs: apt-get install minetest-data sound-theme-freedesktop teeworlds-data chromium-bsu-data mu-cade-data
asterisk-core-sounds-fr-wav (and the probe's extra: pip install -e ".[probes]").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import earmark
from earmark import realsound as rs
from earmark.anchors import AnchorConfig, choose_anchors
from earmark.errors import ConfigError
from earmark.media.write import write_media

PROBES = ("energy", "flux", "onset", "learned")
REFERENCE = "energy"


def recall_at_2(tl, truth) -> float:
    picks = choose_anchors(tl.scores, tl.confidence, tl.coverage, tl.starts, tl.window_s, tl.hop_s, tl.duration_s,
                           AnchorConfig(k=2))
    return rs.event_recall(picks, truth, 2)


def bootstrap(values: np.ndarray, rng: np.random.Generator, n: int = 2000) -> tuple[float, float]:
    idx = rng.integers(0, len(values), size=(n, len(values)))
    means = values[idx].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def cell(values: np.ndarray, rng: np.random.Generator) -> str:
    lo, hi = bootstrap(values, rng)
    return f"{values.mean():.3f} [{lo:.2f}, {hi:.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=48, help="Clips per SNR (beds in turn: music, speech, room).")
    ap.add_argument("--snr", type=float, nargs="+", default=[-6.0, -3.0, 0.0, 3.0, 6.0, 12.0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        pool = rs.load_pool(rs.HELDOUT_SETS)
    except ConfigError as e:
        raise SystemExit(f"learned_probe.py: {e}") from None
    print(f"held-out recordings: {len(pool.events)} events, {len(pool.music)} music tracks, {len(pool.speech)} "
          f"speech prompts; {args.clips} clips of {rs.CLIP_S:g} s per SNR, probes {', '.join(PROBES)}\n")
    recall = {p: np.zeros((len(args.snr), args.clips)) for p in PROBES}
    seconds = dict.fromkeys(PROBES, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for j, snr in enumerate(args.snr):
            for i in range(args.clips):
                rng = np.random.default_rng([args.seed, i])  # the same clip at every SNR but the events' level
                m = rs.make_clip(rng, rs.BEDS[i % len(rs.BEDS)], pool.events, pool.music, pool.speech,
                                 snr_db=(snr, snr))
                path = write_media(Path(tmp) / "clip.wav", rs.CLIP_S, m.audio, rs.SR, video=None)
                for p in PROBES:
                    t0 = time.perf_counter()
                    tl = earmark.index(path, probe=p, jobs=1)
                    seconds[p] += time.perf_counter() - t0
                    recall[p][j, i] = recall_at_2(tl, m.truth)
    rng = np.random.default_rng(args.seed)
    head = f"{'SNR dB':>7s}" + "".join(f" {p:>20s}" for p in PROBES) + f" {'learned - energy':>22s}"
    print("Recall@2 of distinct events (mean [95 % bootstrap interval over clips])\n")
    print(head)
    # "all": each clip's mean over the SNRs, so the bootstrap resamples clips (one clip is one draw at every SNR).
    rows = [(f"{s:+g}", {p: recall[p][j] for p in PROBES}) for j, s in enumerate(args.snr)]
    rows.append(("all", {p: recall[p].mean(0) for p in PROBES}))
    for label, vals in rows:
        line = f"{label:>7s}" + "".join(f" {cell(vals[p], rng):>20s}" for p in PROBES)
        diff = vals["learned"] - vals[REFERENCE]
        lo, hi = bootstrap(diff, rng)
        print(line + f" {f'{diff.mean():+.3f} [{lo:+.2f}, {hi:+.2f}]':>22s}")
    gap = float((recall["learned"] - recall[REFERENCE]).mean())
    print(f"\ngoal (pooled): learned >= energy + 0.10 -> measured {gap:+.3f}: {'met' if gap >= 0.10 else 'NOT met'}")
    ref = seconds[REFERENCE]
    print("index time per probe, relative to energy (same run, decode included): "
          + ", ".join(f"{p} {seconds[p] / ref:.2f}x" for p in PROBES)
          + f"; energy {ref / recall[REFERENCE].size * 1000:.0f} ms per 60 s clip")


if __name__ == "__main__":
    main()
