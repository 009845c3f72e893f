"""Which clips a SynthAVE folder holds: label structures drawn from the shipped AVE statistics, and each clip's
truth (:class:`ClipSpec`: what is seen and heard when), a pure function of (config, split, clip index)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np

from ..datasets import SPLITS, AveRow
from .picture import BACKGROUNDS
from .sound import N_SOUNDS
from .spec import ClipSpec, SynthConfig


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


def plan_clips(cfg: SynthConfig) -> list[tuple[ClipSpec, int]]:
    names = classes()
    out = []
    for split, count in split_sizes(cfg.n).items():
        for i, row in enumerate(sample_rows(split, count, cfg.seed)):
            out.append((clip_spec(cfg, split, i, row, names), i))
    return out
