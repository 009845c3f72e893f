"""``earmark eval synth|realstamp|ave``: the equal-token protocol from the command line (options -> EvalConfig)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import fields
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._extras import require_extra
from ..anchors import ANCHOR_MODES, AnchorConfig
from ..errors import ConfigError
from ..eval.config import (
    DEFAULT_ENCODER,
    HEADS,
    MAIN_STRATEGIES,
    QUICK_DEFAULTS,
    QUICK_GENERATOR,
    RUN_DEFAULTS,
    EvalConfig,
)
from ..eval.realstamp import DEFAULT_N, RealStampConfig
from ..eval.synthave import SynthConfig

_E = EvalConfig()
_A = AnchorConfig()
_S = SynthConfig()
_R = RealStampConfig()


def _csv(value: str | None, cast=str) -> tuple | None:
    return None if value is None else tuple(cast(v.strip()) for v in value.split(",") if v.strip())


def _progress(con: Console, quiet: bool):
    if quiet:
        return None, None
    bar = Progress(TextColumn("{task.description:>9s}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=con, transient=True)
    tasks: dict[str, int] = {}

    def update(stage: str, i: int, n: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=n)
        bar.update(tasks[stage], completed=i)

    return bar, update


def _run_default(name: str) -> str:
    return f"[default: {RUN_DEFAULTS[name]}; with --quick: {QUICK_DEFAULTS[name]}]"


def _protocol_options(f):
    opts = [
        click.option("--encoder", default=None,
                     help="gabor (built in), efficientnet-lite0 (shipped ImageNet weights) or a local transformers "
                          "ViT/CLIP/SigLIP folder  [default: " + ", ".join(
                              f"{e} for {d}" for d, e in DEFAULT_ENCODER.items()) + "]"),
        click.option("--head", type=click.Choice(list(HEADS)), default=_E.head,
                     show_default=True),
        click.option("--model", default=_E.model, show_default=True, help="Cost model the plans are made for."),
        click.option("--budget", type=int, default=None,
                     help="Visual tokens per clip, every strategy  [default: Uniform-224 for every second: 1960 at "
                          "vit-p16 for 10 s clips]"),
        click.option("--k", type=int, default=None,
                     help="Anchors per clip  [default: one per 5 seconds: 2 for 10 s clips]"),
        click.option("--ratio", type=float, default=_E.ratio, show_default=True, help="Anchor/context side ratio."),
        click.option("--probes", default=",".join(_E.probes), show_default=True, help="Probes for anchored plans."),
        click.option("--probe-weights", "probe_weights", multiple=True, metavar="PROBE=PATH",
                     help="Weights of a model probe among --probes (e.g. panns=Cnn14_16k.pth); repeatable."),
        click.option("--strategies", default=",".join(_E.strategies), show_default=True,
                     help=f"Any of {', '.join(MAIN_STRATEGIES)} (uniform-448 runs too, for the resolution table, "
                          "unless --no-resolution)."),
        click.option("--seeds", type=int, default=None,
                     help=f"Training seeds (paired)  {_run_default('seeds')}"),
        click.option("--epochs", type=int, default=None, help=_run_default("epochs")),
        click.option("--lr", type=float, default=None, help=_run_default("lr")),
        click.option("--weight-decay", type=float, default=_E.weight_decay, show_default=True),
        click.option("--batch-size", type=int, default=None, help=_run_default("batch_size")),
        click.option("--hidden", type=int, default=_E.hidden, show_default=True, help="Width of the trained head."),
        click.option("--class-weight", type=click.Choice(["none", "balanced"]), default=_E.class_weight,
                     show_default=True, help="Loss weighting per label; balanced for sparse events (long clips)."),
        click.option("--patience", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Early stopping: epochs without a better val accuracy (0: train all --epochs)."),
        click.option("--resolution/--no-resolution", default=None,
                     help="Also train Uniform-448 (every second at 4× the tokens: the resolution table)  "
                          "[default: yes, except realstamp --quick]"),
        click.option("--curve-budgets", default=None,
                     help="Budgets of the accuracy–token curve  [default: Uniform-112's, 1000 per 10 s, --budget]"),
        click.option("--curve-seeds", type=int, default=None, help=_run_default("curve_seeds")),
        click.option("--offset", "anchor_offset_s", type=float, default=_A.offset_s, show_default=True,
                     help="Anchor AV-offset correction (picture minus sound, seconds)."),
        click.option("--dilate", "dilate_s", type=float, default=_A.dilate_s, show_default=True),
        click.option("--min-gap", "min_gap_s", type=float, default=_A.min_gap_s,
                     help="Two anchors at least this many seconds apart  [default: two hops]"),
        click.option("--min-score", type=float, default=_A.min_score, show_default=True,
                     help="Fall back to evenly spaced anchors when no window's z-score reaches this (0: never)."),
        click.option("--anchor-mode", type=click.Choice(list(ANCHOR_MODES)), default=_A.mode,
                     show_default=True, help="How anchors are chosen (as `earmark index --mode`)."),
        click.option("--anchor-fill", type=click.Choice(["inside", "outside"]), default=_A.fill,
                     show_default=True, help="As `earmark index --fill`."),
        click.option("--anchor-threshold", type=float, default=_A.threshold, show_default=True,
                     help="z-score for --anchor-mode threshold / spread."),
        click.option("--workers", type=int, default=None, help="Processes for the per-clip work (default: up to 2)."),
        click.option("--cache", type=click.Path(path_type=str), default=None,
                     help="Feature/SynthAVE cache folder (default: OUT/cache)."),
        click.option("--quick", is_flag=True,
                     help=f"A small run for smoke tests and CI ({QUICK_GENERATOR['synth']['n']} SynthAVE clips, or "
                          f"{QUICK_GENERATOR['realstamp']['n']} RealStamp clips of "
                          f"{QUICK_GENERATOR['realstamp']['n_classes']} classes; the smaller training defaults); "
                          "options you give are kept."),
        click.option("--limit", default=None, metavar="TRAIN,VAL,TEST", help="Use the first N clips of each split."),
        click.option("--strict", is_flag=True, help="Fail when videos listed in the split files are missing."),
        click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Results folder (required to run the protocol)."),
        click.option("-q", "--quiet", is_flag=True),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def parse_limit(spec: str | None) -> dict[str, int] | None:
    """``--limit TRAIN,VAL,TEST`` as a dict (None when not given)."""
    limit = _csv(spec, int)
    if limit is not None and len(limit) != 3:
        raise click.BadParameter("--limit takes three counts: TRAIN,VAL,TEST")
    return dict(zip(("train", "val", "test"), limit)) if limit else None


ANCHOR_OPTIONS = {"anchor_offset_s": "offset_s", "dilate_s": "dilate_s", "min_score": "min_score",
                  "min_gap_s": "min_gap_s", "anchor_mode": "mode", "anchor_fill": "fill",
                  "anchor_threshold": "threshold"}
"""``earmark eval``'s anchor options (their parameter names) -> :class:`~earmark.anchors.AnchorConfig` fields."""


def eval_config(dataset: str, root: str | None, generator: dict, kw: dict) -> EvalConfig:
    limit = parse_limit(kw.pop("limit"))
    names = {f.name for f in fields(EvalConfig)}
    cfg = {k: v for k, v in kw.items() if k in names}
    weights = {}
    for item in kw.pop("probe_weights", ()):
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--probe-weights takes PROBE=PATH, got {item!r}")
        weights[name] = str(Path(path).resolve())
    cfg.update(probe_weights=weights)
    # The anchor options are the index's (AnchorConfig), named as `earmark eval` has always named them.
    cfg.update(anchor=AnchorConfig(**{field: kw[option] for option, field in ANCHOR_OPTIONS.items() if option in kw}))
    cfg.update(probes=_csv(kw["probes"]), strategies=_csv(kw["strategies"]),
               curve_budgets=_csv(kw["curve_budgets"], int), limit=limit, patience=kw["patience"] or None)
    return EvalConfig(dataset=dataset, root=root, generator=generator, **cfg)


def _run(cfg: EvalConfig, out: Path, quiet: bool, data_seeds: int = 1) -> None:
    from ..eval.protocol import run_eval, run_eval_seeds
    from ..eval.results import display_name, strategy_rank

    con = Console(quiet=quiet, highlight=False, soft_wrap=True)
    bar, update = _progress(con, quiet)
    with bar if bar is not None else nullcontext():
        if data_seeds > 1:
            first = int(cfg.generator.get("seed") or 0)
            doc = run_eval_seeds(cfg, out, list(range(first, first + data_seeds)), update)
        else:
            doc = run_eval(cfg, out, update)
    k = doc["config"]["k"]
    for name, r in sorted(doc["strategies"].items(), key=lambda item: strategy_rank(item[0])):
        if r["group"] == "curve":
            continue
        p = (r.get("vs_uniform") or {}).get("p")
        con.print(f"{display_name(name, k):28s} {r['shape']:>14s} {r['tokens']:6.0f} tok  "
                  f"{r['accuracy_mean'] * 100:5.1f} ± {r['accuracy_std'] * 100:4.1f} %"
                  + (f"  p={p:.2g}" if p is not None else ""))
    if doc["dataset"].get("missing"):
        con.print(f"[yellow]{doc['dataset']['missing']}[/]")
    con.print(f"wrote {out}/results.json, table.md, curve.csv/png and videos/ "
              f"({sum(doc['timing_s'].get(s, 0) for s in ('dataset', 'prepare_wall', 'train_and_test')):.0f} s)")


@click.group("eval")
def eval_group() -> None:
    """Prove it: the AVE equal-token protocol on SynthAVE, RealStamp or AVE itself."""


@eval_group.command("synth")
@click.option("--make", "make_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Only write a SynthAVE folder (AVE layout) here, and stop.")
@click.option("--root", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Use (or make) this SynthAVE folder instead of OUT/cache/synthave.")
@click.option("--n", type=int, default=None, help="Clips in all (default: AVE's 3339/402/402).")
@click.option("--snr-db", type=float, default=_S.snr_db, show_default=True)
@click.option("--av-offset", "av_offset_s", type=float, default=_S.av_offset_s, show_default=True,
              help="Picture minus sound time of events, seconds.")
@click.option("--silent-event-fraction", type=float, default=_S.silent_event_fraction, show_default=True)
@click.option("--distractor-rate", type=float, default=_S.distractor_rate, show_default=True)
@click.option("--event-motion", type=float, default=_S.event_motion, show_default=True,
              help="Also show a large moving disc (this fraction of the frame) in event seconds: events cheap "
                   "visual probes can see (tests hybrid/transfer).")
@click.option("--duration", "duration_s", type=int, default=_S.duration_s, show_default=True,
              help="Clip length (60 or 300: sparse long-video variants).")
@click.option("--stripe-period", "stripe_period", type=float, nargs=2, metavar="MIN MAX",
              default=(_S.stripe_period_min, _S.stripe_period_max), show_default=True,
              help="Glyph stripe period range, px at 448 px: each clip draws one (log-uniform). 3 3: every glyph "
                   "at 3 px, as SynthAVE was before the range existed.")
@click.option("--class-sound-fraction", type=float, default=_S.class_sound_fraction, show_default=True,
              help="Fraction of clips whose event plays its class's own sound; the others play a random one of "
                   "the 28 (0: the sound never names the class; 1: as SynthAVE was before this option).")
@click.option("--synth-seed", type=int, default=_S.seed, show_default=True,
              help="The dataset (generator) seed (the first one with --data-seeds).")
@click.option("--data-seeds", "data_seeds", type=int, default=1, show_default=True,
              help="Generate this many datasets and combine their runs (as `eval realstamp --data-seeds`).")
@_protocol_options
def synth_cmd(make_dir: Path | None, root: str | None, n: int | None, snr_db: float,
              av_offset_s: float, silent_event_fraction: float, distractor_rate: float, event_motion: float,
              duration_s: int, synth_seed: int, data_seeds: int, **kw) -> None:
    """Generate SynthAVE (AVE-shaped clips whose glyphs need resolution) and run the protocol on it."""
    require_extra("earmark eval", "eval")
    synth = dict(n=n, snr_db=snr_db, av_offset_s=av_offset_s, silent_event_fraction=silent_event_fraction,
                 distractor_rate=distractor_rate, event_motion=event_motion, duration_s=duration_s, seed=synth_seed,
                 stripe_period_min=kw["stripe_period"][0], stripe_period_max=kw.pop("stripe_period")[1],
                 class_sound_fraction=kw.pop("class_sound_fraction"))
    _generated("synth", make_dir, root, synth, kw, data_seeds)


def _generated(dataset: str, make_dir: Path | None, root: str | None, settings: dict, kw: dict,
               data_seeds: int = 1) -> None:
    """``--make DIR``: only write the dataset; else run the protocol on it (made under OUT/cache if missing)."""
    from ..eval.loading import generator

    config_cls, make, manifest, name = generator(dataset)
    if make_dir is not None:
        con = Console(quiet=kw.get("quiet", False), highlight=False)
        bar, update = _progress(con, kw.get("quiet", False))
        with bar if bar is not None else nullcontext():
            make(make_dir, config_cls(**settings), workers=kw.get("workers"),
                 progress=update)
        con.print(f"wrote {name} to {make_dir}/ (AVE layout: Annotations.txt, split files, AVE/*.mp4, {manifest})")
        return
    if kw.get("out") is None:
        raise click.UsageError("--out is required unless --make is given")
    if data_seeds < 1:
        raise click.BadParameter(f"--data-seeds must be >= 1, got {data_seeds}")
    quiet, out = kw.pop("quiet"), kw.pop("out")
    _run(eval_config(dataset, root, settings, kw), out, quiet, data_seeds)


@eval_group.command("realstamp")
@click.option("--make", "make_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Only write a RealStamp folder (AVE layout) here, and stop.")
@click.option("--root", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Use (or make) this RealStamp folder instead of OUT/cache/realstamp.")
@click.option("--duration", "duration_s", type=int, default=_R.duration_s, show_default=True,
              help="Clip length: 10 (AVE-like) or 60 (sparse: the event covers at most a sixth).")
@click.option("--n", type=int, default=None,
              help=f"Clips in all  [default: {DEFAULT_N[10]} for 10 s, {DEFAULT_N[60]} for 60 s]")
@click.option("--classes", "n_classes", type=int, default=None,
              help="Use this many of the 72 classes (evenly spaced over the sorted list)  [default: all]")
@click.option("--data-seed", "data_seed", type=int, default=_R.seed, show_default=True,
              help="The dataset (generator) seed (the first one with --data-seeds).")
@click.option("--data-seeds", "data_seeds", type=int, default=1, show_default=True,
              help="Generate this many datasets (seeds --data-seed, +1, ...), run the protocol on each "
                   "(OUT/data-seed-S/) and combine them: intervals resample dataset seeds, then clips.")
@click.option("--snr-db", type=float, default=_R.snr_db, show_default=True,
              help="Event level over the bed (active RMS).")
@click.option("--offscreen-rate", type=float, default=_R.offscreen_rate, show_default=True,
              help="Per background second: chance of another class's sound with nothing on screen.")
@click.option("--speech-rate", type=float, default=_R.speech_rate, show_default=True,
              help="Per background second: chance of recorded speech.")
@click.option("--music-fraction", type=float, default=_R.music_fraction, show_default=True,
              help="Clips with a music bed (asterisk-moh-opsound-wav).")
@click.option("--music-db", type=float, default=_R.music_db, show_default=True, help="Music over the room tone.")
@click.option("--silent-event-fraction", type=float, default=_R.silent_event_fraction, show_default=True)
@click.option("--occlusion-fraction", type=float, default=_R.occlusion_fraction, show_default=True)
@click.option("--av-offset", "av_offset_s", type=float, default=_R.av_offset_s, show_default=True,
              help="Picture minus sound time of events, seconds.")
@_protocol_options
def realstamp_cmd(make_dir: Path | None, root: str | None, duration_s: int, n: int | None, n_classes: int | None,
                  data_seed: int, data_seeds: int,
                  snr_db: float, offscreen_rate: float, speech_rate: float, music_fraction: float, music_db: float,
                  silent_event_fraction: float, occlusion_fraction: float, av_offset_s: float, **kw) -> None:
    """Generate RealStamp (real photographs with their own real recordings, from Debian's Tux Paint stamps)
    and run the protocol on it; the encoder defaults to the pretrained efficientnet-lite0."""
    require_extra("earmark eval", "eval")
    settings = dict(duration_s=duration_s, n=n, n_classes=n_classes, seed=data_seed, snr_db=snr_db,
                    offscreen_rate=offscreen_rate, speech_rate=speech_rate, music_fraction=music_fraction,
                    music_db=music_db,
                    silent_event_fraction=silent_event_fraction, occlusion_fraction=occlusion_fraction,
                    av_offset_s=av_offset_s)
    _generated("realstamp", make_dir, root, settings, kw, data_seeds)


@eval_group.command("ave")
@click.option("--root", type=click.Path(path_type=str), required=True,
              help="The AVE folder: Annotations.txt, trainSet/valSet/testSet.txt and the VideoID.mp4 files.")
@_protocol_options
def ave_cmd(root: str, **kw) -> None:
    """Run the protocol on the AVE dataset in its official layout."""
    require_extra("earmark eval", "eval")
    quiet, out = kw.pop("quiet"), kw.pop("out")
    if out is None:
        raise click.UsageError("--out is required")
    _run(eval_config("ave", root, {}, kw), out, quiet)
