"""Which anchor rule finds real sounds: Recall@K of *distinct* events on real recordings over real beds.

The set (built once with earmark.realsound, cached in benchmarks/_media/realsound/): 60 s mono clips, each with 5
real object recordings from Debian's `tuxpaint-stamps-default` (animals, household, vehicles, instruments …; 1–3 s
each, faded, at an SNR drawn from [-6, +9] dB against the bed; spoken names and symbols/ left out) over a bed of
real music (`asterisk-moh-opsound-wav`), real speech (`asterisk-core-sounds-en-wav` prompts, back to back) or room
tone only, always with a pink-noise room tone.
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
from pathlib import Path

import numpy as np

import earmark
from earmark import realsound as rs
from earmark.anchors import AnchorConfig, choose_anchors
from earmark.errors import ConfigError
from earmark.media.write import write_media

SETS = ("tuxpaint-objects", "asterisk-moh", "asterisk-en")
CACHE = Path(__file__).parent / "_media" / "realsound"


def build(clips: int) -> list[dict]:
    manifest = CACHE / f"manifest_v2_{clips}.json"  # v2: the library's object rule (no spoken symbols)
    if manifest.exists():
        return json.loads(manifest.read_text())
    try:
        pool = rs.load_pool(SETS)
    except ConfigError as e:
        raise SystemExit(f"anchor_rules.py: {e}") from None
    CACHE.mkdir(parents=True, exist_ok=True)
    sounds: dict[str, list[np.ndarray]] = {"val": [], "test": []}
    for path, x in zip(pool.files["event"], pool.events):
        sounds["val" if rs.split_of(Path(path)) == "val" else "test"].append(x)
    rows = []
    for split in ("val", "test"):
        for i in range(clips):
            flat = i % 8 == 7  # one clip in eight: the bed alone, nothing happens
            rng = np.random.default_rng([i, 0 if split == "val" else 1])
            m = rs.make_clip(rng, rs.BEDS[i % 3], sounds[split], pool.music, pool.speech,
                             n_events=0 if flat else rs.EVENTS_PER_CLIP, snr_db=(-6.0, 9.0))
            path = CACHE / f"{split}_{i:03d}.wav"
            write_media(path, rs.CLIP_S, m.audio, rs.SR, video=None)
            rows.append({"path": str(path), "split": split, "bed": m.bed, "truth": m.truth})
    manifest.write_text(json.dumps({"rows": rows, "recordings": {k: len(v) for k, v in sounds.items()}}))
    return json.loads(manifest.read_text())


RULES = {"topk-plain": dict(mode="topk", min_gap_s=None, min_score=-np.inf, gap_hops=1),
         "topk-old": dict(mode="topk", min_gap_s=1.0, min_score=3.0)}
for level in (1.0, 1.5, 2.0, 3.0):
    for m in (-np.inf, 1.5, 2.0, 2.5, 3.0):
        RULES[f"events L={level:g} M={m:g}"] = dict(mode="events", event_level=level, min_score=m)
RULES["events L=1 M=1.5 inside"] = dict(mode="events", event_level=1.0, min_score=1.5, fill="inside")


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
    print(f"{len(rows)} clips of {rs.CLIP_S:g} s; recordings val/test: {doc['recordings']}")
    for probe in args.probes:
        tls = [earmark.index(r["path"], probe=probe) for r in rows]
        print(f"\nprobe {probe}: Recall@K of distinct events (mean over clips with events), and the share of "
              f"bed-only clips that fall back\n")
        head = f"{'rule':24s}" + "".join(f" {'val@' + str(k):>8s} {'test@' + str(k):>8s}" for k in args.k)
        print(head + f" {'flat fb':>8s} {'event fb':>8s} {'val in@' + str(args.k[-1]):>9s}")
        for name, rule in RULES.items():
            cells = []
            for k in args.k:
                for split in ("val", "test"):
                    vals = [rs.event_recall(run_rule(tl, rule, k), r["truth"], k)
                            for tl, r in zip(tls, rows) if r["split"] == split and r["truth"]]
                    cells.append(np.mean(vals))
            flat = [run_rule(tl, rule, args.k[0])[0].source == "fallback" for tl, r in zip(tls, rows) if not r["truth"]]
            ev = [run_rule(tl, rule, args.k[0])[0].source == "fallback" for tl, r in zip(tls, rows) if r["truth"]]
            # The share of the K anchors that land on an event (what a plan's big frames buy), on val.
            inside = [np.mean([any(a.start_s < e and s < a.end_s for s, e in r["truth"])
                               for a in run_rule(tl, rule, args.k[-1])])
                      for tl, r in zip(tls, rows) if r["split"] == "val" and r["truth"]]
            print(f"{name:24s}" + "".join(f" {c:8.3f}" for c in cells) + f" {np.mean(flat):8.2f} {np.mean(ev):8.2f}"
                  f" {np.mean(inside):9.3f}")


if __name__ == "__main__":
    main()
