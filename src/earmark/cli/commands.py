"""Click commands. Defaults come from the library's config dataclasses, never repeated here."""

from __future__ import annotations

import dataclasses
import functools
import json
from contextlib import nullcontext
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from .._extras import require_extra
from .._io import dumps_json
from .._version import __version__
from ..anchors import ANCHOR_MODES, AnchorConfig, anchors, check_anchor_config, with_anchors
from ..budget.costs import cost_model_names
from ..budget.planner import (
    ASPECTS,
    DEFAULT_MAX_FRAMES,
    FITS,
    SHAPES,
    STRATEGIES,
    PlanConfig,
    check_request,
    plan,
)
from ..budget.strategies import PLANNING_STRATEGIES, STRATEGY_RULES
from ..errors import ConfigError, EarmarkError
from ..index import IndexConfig
from ..index import index as run_index
from ..media.container import info as probe_info
from ..media.frames import FRAME_FORMATS, SEEK_POLICIES, save_frames
from ..probes import get_probe, probe_classes, probe_names, window_grid
from ..probes.dsp import DSP_PROBES
from ..probes.question import DEFAULT_ALPHA, DEFAULT_NORM, DEFAULT_SEGMENT_S
from ..probes.question import NORMS as QUESTION_NORMS
from ..sinks.export import (
    output_kind,
    read_index,
    read_plan,
    read_truth,
    read_truth_events,
    write_plan,
    write_results,
)
from ..train.linear import DATASETS as TRAIN_DATASETS
from ..train.linear import TrainProbeConfig
from ..train.transfer import TransferTrainConfig
from ..types import IndexResult, Plan
from .render import index_header, index_table, info_table, plan_summary, plan_table, sparkline


def probe_options(f):
    """``--probe-weights``, ``--probe-option KEY=VALUE``, ``--fallback`` and ``--ignore-speech``, collected into one
    ``probe_kw`` dict of keyword arguments for :func:`earmark.index`."""

    opts = [
        click.option("--probe-weights", default=None, type=click.Path(path_type=str),
                     help="Weights of a learned probe (linear, transfer, vad, ast): a local file or folder."),
        click.option("--probe-option", "probe_option", multiple=True, metavar="KEY=VALUE",
                     help="A probe setting (see `earmark probes`), e.g. audio=flux for hybrid; repeatable."),
        click.option("--fallback", default=IndexConfig.fallback, show_default=True, metavar="NAME|none",
                     help="Visual probe that indexes videos without an audio stream (none: fail instead)."),
        click.option("--ignore-speech", is_flag=True,
                     help="Remove windows with speech (vad probe) from eventness; no audio or text is stored."),
    ]
    for o in reversed(opts):
        f = o(f)

    @functools.wraps(f)
    def wrapper(*args, probe_weights, probe_option, fallback, ignore_speech, **kwargs):
        kw: dict = {"fallback": None if fallback.lower() == "none" else fallback, "ignore_speech": ignore_speech}
        if probe_weights:
            kw["weights"] = probe_weights
        for item in probe_option:
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--probe-option {item!r}: expected KEY=VALUE")
            try:
                kw[key.strip()] = json.loads(val)
            except json.JSONDecodeError:
                kw[key.strip()] = val
        return f(*args, probe_kw=kw, **kwargs)

    return wrapper


# Anchor options: one per AnchorConfig field a user sets, defaults read from the dataclass (never repeated here).
ANCHOR_HELP = {
    "k": ("--k", int, "Number of anchors."),
    "mode": ("--mode", click.Choice(list(ANCHOR_MODES)), "events: one anchor per distinct event (runs of windows "
             "over --event-level), strongest first; topk: the K best windows; threshold: every window over "
             "--threshold (capped by --k); spread: K anchors spread over the regions over --threshold."),
    "threshold": ("--threshold", float, "Robust z-score for --mode threshold / spread."),
    "event_level": ("--event-level", float, "Robust z-score that bounds an event in --mode events."),
    "fill": ("--fill", click.Choice(["inside", "outside"]), "--mode events with fewer events than --k: put the "
             "remaining anchors inside the events first (spread by length), or on the best windows outside them."),
    "min_gap_s": ("--min-gap", float, "Minimum seconds between anchor starts (non-maximum suppression) "
                  "[default: two hops]."),
    "dilate_s": ("--dilate", float, "Grow anchor regions by this many seconds on each side."),
    "offset_s": ("--offset", float, "AV offset: picture time minus sound time of events, in seconds."),
    "min_score": ("--min-score", float, "If no window reaches this z-score, anchors fall back to uniform."),
}


def anchor_options(f):
    """The anchor options (``ANCHOR_HELP``), collected into ``anchor_cfg`` (an AnchorConfig) and ``anchor_given``
    (the names set on the command line: with an index file as source, only those change its saved settings)."""
    fields = {fd.name: fd for fd in dataclasses.fields(AnchorConfig)}
    for name, (flag, typ, text) in reversed(ANCHOR_HELP.items()):
        default = fields[name].default
        f = click.option(flag, name, type=typ, default=default, show_default=default is not None, help=text)(f)

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        values = {name: kwargs.pop(name) for name in ANCHOR_HELP}
        given = {n for n in values if _given(n)}
        return f(*args, anchor_cfg=AnchorConfig(**values), anchor_given=given, **kwargs)

    return wrapper


def _probe_settings(kw: dict) -> dict:
    """The probe's own settings among the index keyword arguments."""
    return {k: v for k, v in kw.items() if k not in ("fallback", "ignore_speech")}


PROGRESS_MIN_DURATION_S = 180.0
"""Files longer than this show a progress bar while their audio is decoded."""


def _console(quiet: bool = False) -> Console:
    return Console(quiet=quiet, highlight=False, soft_wrap=True)


class LazyGroup(click.Group):
    """A group whose commands in other modules are imported only when named (``earmark index`` and ``earmark
    --help`` do not pay for importing batch, highlights, search and eval: 90 ms). ``lazy`` maps a command name to
    (the module whose import registers it on this group, or its ``module:attribute``; the one-line summary
    ``--help`` lists, which tests/test_cli.py checks against the command's own)."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.lazy:
            import importlib

            module, _, attr = self.lazy[name][0].partition(":")
            loaded = importlib.import_module(module)
            if attr:
                self.add_command(getattr(loaded, attr), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands' table of ``--help``, with the lazy ones' summaries as stored (nothing is imported)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            if name in self.commands:
                cmd = self.commands[name]
                if not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit)))
            else:
                rows.append((name, click.Command(name, help=self.lazy[name][1]).get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


LAZY_COMMANDS = {
    "batch": ("earmark.cli.batch_cmd",
              "Index every video of INPUT (a folder, a text file of paths or a glob) into Parquet parts and a manifest "
              "under --out; optionally plan and extract."),
    "query": ("earmark.cli.batch_cmd", "Run SQL (DuckDB) over a batch folder: views manifest, windows, anchors, "
                                       "frames."),
    "highlights": ("earmark.cli.highlights_cmd",
                   "The best segments of SOURCE (a video, an index JSON from `earmark index`, or an `earmark batch` "
                   "folder), ranked: region growing over the window scores, short gaps merged, each window in one "
                   "segment at most, --top N or --total-duration S (per video, or across a corpus with --scope "
                   "corpus)."),
    "search": ("earmark.cli.search_cmd",
               "Find the moments of SOURCE that answer --query: a video (indexed now), an index or moments JSON (read, "
               "no decoding), or an `earmark batch` folder (DuckDB over its windows: labels, eventness, and the "
               "motion, appearance change and picture embeddings a batch made with --visual-features / "
               "--text-image-model stores, across videos)."),
    "eval": ("earmark.cli.eval_cmd:eval_group", "Prove it: the AVE equal-token protocol on SynthAVE, RealStamp or "
                                                "AVE itself."),
}
"""Commands defined outside this module, imported when named, with their ``--help`` summaries."""


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="earmark")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """earmark: listen first, look where it matters.

    Index a video's audio for eventness, pick anchors, plan a visual token budget around them, extract the
    planned frames and hand them to a video model.
    """


@cli.command("info")
@click.argument("videos", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file (machine-readable).")
def info_cmd(videos: tuple[str, ...], as_json: bool) -> None:
    """Container and stream facts as earmark sees them (duration, audio streams, fps, VFR, rotation, keyframes)."""
    con = _console()
    for v in videos:
        vi = probe_info(v)
        if as_json:
            click.echo(json.dumps(vi.to_dict(), sort_keys=True))
        else:
            con.print(info_table(vi))


@cli.command("probes")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def probes_cmd(as_json: bool) -> None:
    """List the probes earmark can index with: what each reads, needs, and whether it can run here ("needs
    weights": its extra is installed, and it runs once you give --probe-weights)."""
    rows = []
    for name, cls in sorted(probe_classes().items()):
        why = cls.unavailable()
        settings = {f.name: f.default for f in dataclasses.fields(cls.Config)}
        rows.append({"name": name, "kind": cls.kind, "summary": cls.summary, "raw_unit": cls.raw_unit,
                     "needs": cls.needs or "-", "available": why is None, "why_not": why,
                     "needs_weights": cls.needs_weights, "settings": settings})
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.table import Table

    t = Table(box=None, pad_edge=False)
    for col in ("probe", "reads", "what it scores", "needs", "available"):
        t.add_column(col)
    for r in rows:
        ok = (f"[red]no[/] ({r['why_not']})" if not r["available"] else
              "[yellow]needs weights[/] (--probe-weights)" if r["needs_weights"] else "[green]yes[/]")
        t.add_row(f"[bold]{r['name']}[/]", r["kind"], r["summary"], r["needs"], ok)
    _console().print(t)


@cli.command("index")
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--probe", default=IndexConfig.probe, show_default=True, metavar="NAME",
              help=f"Eventness probe: {', '.join(probe_names())}.")
@click.option("--hop", "hop_s", type=float, default=IndexConfig.hop_s, show_default=True,
              help="Seconds between window starts.")
@click.option("--window", "window_s", type=float, default=IndexConfig.window_s, show_default=True,
              help="Window length in seconds.")
@click.option("--audio-stream", type=int, default=None, metavar="N",
              help="Container stream index of the audio to read (see `earmark info`); default: the default stream.")
@click.option("--out", "out", type=click.Path(path_type=str), default=None,
              help="Write FILE.json (one video), FILE.csv / FILE.parquet (all videos) or DIR/ (one JSON each).")
@click.option("--jobs", type=int, default=None,
              help="Processes decoding segments of long files [default: one per usable CPU].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON index document per video to stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors (and --json output).")
@click.option("--keep-going", is_flag=True, help="Skip videos that fail (exit code 1 at the end) instead of stopping.")
@anchor_options
@probe_options
def index_cmd(videos: tuple[str, ...], probe: str, hop_s: float, window_s: float, audio_stream: int | None,
              jobs: int | None, out: str | None, as_json: bool, quiet: bool, keep_going: bool, probe_kw: dict,
              anchor_cfg: AnchorConfig, anchor_given: set[str]) -> None:
    """Score every window of each video's audio for eventness and pick anchors."""
    cfg = anchor_cfg
    # Fail on bad settings before decoding anything.
    get_probe(probe, **_probe_settings(probe_kw))
    window_grid(1.0, hop_s, window_s)
    if out is not None:
        output_kind(out)
    con = _console(quiet or as_json)
    results: list[IndexResult] = []
    failures = 0
    for v in videos:
        try:
            result = _index_one(v, probe, hop_s, window_s, audio_stream, jobs, cfg, con, quiet or as_json,
                                probe_kw)
        except EarmarkError as e:
            if not keep_going:
                raise
            failures += 1
            click.echo(f"earmark: error: {e}", err=True)
            continue
        results.append(result)
        if as_json:
            click.echo(json.dumps(result.to_dict(), sort_keys=True, allow_nan=False))
        else:
            _print_result(con, result)
    if out is not None and results:
        for p in write_results(results, out):
            con.print(f"wrote {p}")
    if failures:
        raise click.exceptions.Exit(1)


def _index_one(video: str, probe: str, hop_s: float, window_s: float, audio_stream: int | None, jobs: int | None,
               cfg: AnchorConfig, con: Console, quiet: bool, probe_kw: dict | None = None) -> IndexResult:
    vi = probe_info(video)
    grid = window_grid(vi.duration_s, hop_s, window_s)
    check_anchor_config(cfg, grid.n, vi.duration_s, video)
    show = not quiet and vi.duration_s > PROGRESS_MIN_DURATION_S
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TimeRemainingColumn(), console=Console(stderr=True), transient=True) if show else None
    with bar if bar is not None else nullcontext():
        task = bar.add_task(Path(video).name, total=grid.end_s) if bar is not None else None

        def progress(stage: str, done: float, total: float) -> None:
            if bar is not None:
                bar.update(task, completed=done)

        tl = run_index(video, probe=probe, hop_s=hop_s, window_s=window_s, audio_stream=audio_stream,
                       video_info=vi, jobs=jobs, progress=progress, **(probe_kw or {}))
    return with_anchors(vi, tl, cfg)


def _print_result(con: Console, result: IndexResult) -> None:
    con.print(index_header(result))
    con.print(sparkline(result.timeline.scores, {a.index for a in result.anchors}, width=min(con.width - 2, 120)))
    con.print(index_table(result))
    for note in result.timeline.notes:
        con.print(f"[yellow]note:[/] {note}")
    con.print()


_P = PlanConfig()


def plan_options(f):
    """``--frames --ratio --aspect --fit --shape --seed --upscale``, collected into ``plan_kw`` (only those given, so
    PlanConfig's defaults hold)."""
    opts = [
        click.option("--frames", type=int, default=None,
                     help=f"Frames to plan [default: one per window, at most {DEFAULT_MAX_FRAMES}, fewer when that "
                          f"spends the budget better: see the plan's note]."),
        click.option("--ratio", type=float, default=_P.ratio, show_default=True,
                     help="anchored: anchor side / context side; dense-at-anchors: frame-rate ratio inside anchors."),
        click.option("--aspect", type=click.Choice(ASPECTS), default=None,
                     help="Keep the picture's aspect or plan square frames [default: per model]."),
        click.option("--fit", type=click.Choice(FITS), default=None,
                     help="How extraction fits the picture to each size [default: stretch when keeping aspect, "
                          "else pad]."),
        click.option("--shape", type=click.Choice(SHAPES), default=None, help="Shape of random/oracle plans."),
        click.option("--seed", type=int, default=_P.seed, show_default=True, help="Seed of the random strategy."),
        click.option("--upscale", is_flag=True, help="Allow frames larger than the source picture."),
    ]
    for o in reversed(opts):
        f = o(f)

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        kw = {n: kwargs.pop(n) for n in ("frames", "ratio", "aspect", "fit", "shape", "seed", "upscale")}
        return f(*args, plan_kw={n: v for n, v in kw.items() if _given(n)}, **kwargs)

    return wrapper


def question_options(f):
    """``--text-image-model --alpha --question-norm``: plan for the question too (collected into ``question_kw``)."""
    opts = [
        click.option("--text-image-model", type=click.Path(path_type=str), default=None, metavar="DIR",
                     help="A local CLIP or SigLIP folder: score each second's picture against the question and "
                          "plan for the question as well as the sound."),
        click.option("--alpha", type=float, default=None,
                     help=f"Sound vs question: 0 sound only, 1 question only [default: {DEFAULT_ALPHA}]."),
        click.option("--question-norm", type=click.Choice(QUESTION_NORMS), default=None,
                     help=f"Normalise scores over the whole video or within {DEFAULT_SEGMENT_S:g} s segments "
                          f"[default: {DEFAULT_NORM}]."),
    ]
    for o in reversed(opts):
        f = o(f)

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return f(*args, question_kw={n: kwargs.pop(n) for n in ("text_image_model", "alpha", "question_norm")},
                 **kwargs)

    return wrapper


def _question_model(question: str | None, question_kw: dict):
    """The text-image model to plan for ``question`` with, loaded before any decoding; None when not asked for."""
    folder = question_kw["text_image_model"]
    if folder is None:
        extra = [n for n in ("alpha", "question_norm") if question_kw[n] is not None]
        if extra:
            raise ConfigError(f"--{extra[0].replace('_', '-')} weighs the question against the sound: it needs "
                              f"--text-image-model DIR (a local CLIP or SigLIP folder)")
        return None
    if not question:
        raise ConfigError("--text-image-model scores pictures against a question: give --question TEXT")
    alpha = question_kw["alpha"]
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"--alpha must be between 0 (sound only) and 1 (question only), got {alpha}")
    from ..probes.question import TextImageModel

    return TextImageModel.from_pretrained(folder)


def _for_question(result: IndexResult, question: str | None, model, question_kw: dict) -> IndexResult:
    if model is None:
        return result
    from ..index import condition_on_question

    return condition_on_question(result, question, model, alpha=question_kw["alpha"], norm=question_kw["question_norm"])


def _given(name: str) -> bool:
    """Whether option ``name`` of the running command was set on the command line (not left at its default)."""
    src = click.get_current_context().get_parameter_source(name)
    return src is not None and src is not click.core.ParameterSource.DEFAULT


def _load_source(source: str, probe: str, con: Console, quiet: bool, probe_kw: dict | None = None,
                 anchor_cfg: AnchorConfig | None = None, anchor_given: set[str] | frozenset = frozenset(),
                 probe_given: bool = False) -> IndexResult:
    """An index: read from INDEX.json (its saved anchors; anchor options given on the command line choose them
    again from its saved scores), or made now from a video with ``anchor_cfg``."""
    cfg = anchor_cfg or AnchorConfig()
    if source.lower().endswith(".json"):
        result = read_index(source)
        if probe_given and probe != result.timeline.probe:
            raise ConfigError(f"--probe {probe}: {source} was indexed with {result.timeline.probe}; --probe applies "
                              f"to a video (index it again with `earmark index VIDEO --probe {probe}`)")
        if (probe_kw and _probe_settings(probe_kw)) or (probe_kw or {}).get("ignore_speech"):
            raise ConfigError(f"{source}: probe options apply to a video, not to an index file")
        if anchor_given:
            stored = {k: v for k, v in result.anchor_config.items() if k in AnchorConfig.__dataclass_fields__}
            new = dataclasses.replace(AnchorConfig(**stored), **{n: getattr(cfg, n) for n in anchor_given})
            check_anchor_config(new, len(result.timeline), result.timeline.duration_s, source)
            result = dataclasses.replace(result, anchors=tuple(anchors(result.timeline, config=new)),
                                         anchor_config=new.to_dict())
        return result
    return _index_one(source, probe, 1.0, 1.0, None, None, cfg, con, quiet, probe_kw)


def _truth(spec: str | None) -> list[tuple[float, float]]:
    """``--truth`` as a JSON file, or inline ``START:END[,START:END...]`` seconds."""
    if not spec:
        return []
    if Path(spec).suffix.lower() == ".json":
        return read_truth(spec)
    try:
        pairs = [tuple(float(x) for x in part.split(":")) for part in spec.split(",")]
    except ValueError:
        pairs = []
    if not pairs or any(len(p) != 2 or not p[0] < p[1] for p in pairs):
        raise ConfigError(f"--truth {spec!r}: expected a JSON file or START:END[,START:END...] in seconds")
    return [(p[0], p[1]) for p in pairs]


MODEL_HELP = (f"Target model: {', '.join(cost_model_names())}. Any case; Hugging Face ids work too "
              "(Qwen/Qwen2.5-VL-7B-Instruct, OpenGVLab/InternVL3-8B).")


@cli.command("plan")
@click.argument("source", type=click.Path(path_type=str))
@click.option("--model", required=True, metavar="NAME", help=MODEL_HELP)
@click.option("--budget", type=int, required=True, help="Visual tokens to spend.")
@click.option("--strategy", default=_P.strategy, show_default=True, type=click.Choice(STRATEGIES))
@plan_options
@click.option("--truth", default=None, metavar="FILE|S:E,...", help="Ground-truth intervals for --strategy oracle.")
@click.option("--question", default=None, help="Plan for this question too (with --text-image-model).")
@question_options
@click.option("--probe", default=IndexConfig.probe, show_default=True, help="Probe used when SOURCE is a video.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=str), default=None, help="Write the plan JSON.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan JSON to stdout.")
@click.option("-q", "--quiet", is_flag=True)
@anchor_options
@probe_options
def plan_cmd(source: str, model: str, budget: int, strategy: str, plan_kw: dict, truth: str | None,
             question: str | None, question_kw: dict, probe: str, out: str | None, as_json: bool, quiet: bool,
             probe_kw: dict, anchor_cfg: AnchorConfig, anchor_given: set[str]) -> None:
    """Plan a visual token budget over SOURCE (a video, or an index JSON from `earmark index`)."""
    check_request(model, budget, strategy)  # unknown names, a bad budget, skim without pooled frames: before decoding
    if STRATEGY_RULES[strategy].needs_truth and not truth:
        raise ConfigError("--strategy oracle needs --truth FILE|S:E,... (the labelled events)")
    if question is not None and question_kw["text_image_model"] is None:
        raise ConfigError("--question plans for a question by scoring pictures against it: it needs "
                          "--text-image-model DIR (a local CLIP or SigLIP folder)")
    text_image = _question_model(question, question_kw)
    con = _console(quiet or as_json)
    result = _load_source(source, probe, con, True, probe_kw, anchor_cfg, anchor_given, _given("probe"))
    result = _for_question(result, question, text_image, question_kw)
    p = plan(result, model, budget, strategy, k=anchor_cfg.k, truth=_truth(truth), **plan_kw)
    if as_json:
        click.echo(dumps_json(p.to_dict()), nl=False)
    con.print(plan_table(p))
    con.print(plan_summary(p))
    for note in p.notes:
        con.print(f"[yellow]note:[/] {note}")
    if out:
        con.print(f"wrote {write_plan(p, out)}")


@cli.command("extract")
@click.argument("video", type=click.Path(path_type=str))
@click.option("--plan", "plan_path", required=True, type=click.Path(path_type=str), help="Plan JSON (`earmark plan`).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder for the frames (named by time) and manifest.json.")
@click.option("--format", "fmt", type=click.Choice(FRAME_FORMATS), default=FRAME_FORMATS[0], show_default=True)
@click.option("--seek", type=click.Choice(SEEK_POLICIES), default=SEEK_POLICIES[0], show_default=True,
              help="auto: seek only past keyframes; sequential: decode through; seek: before every frame.")
@click.option("-q", "--quiet", is_flag=True)
def extract_cmd(video: str, plan_path: str, out_dir: str, fmt: str, seek: str, quiet: bool) -> None:
    """Decode exactly the frames a plan names, at their planned sizes, into a folder."""
    con = _console(quiet)
    p = read_plan(plan_path)
    stats: dict = {}
    out = save_frames(video, p, out_dir, fmt=fmt, seek=seek, stats=stats)
    con.print(f"wrote {len(p.frames)} frames ({p.total_tokens} tokens for {p.model}) and manifest.json to {out}/ "
              f"[dim]({stats.get('decoded', 0)} frames decoded, {stats.get('seeks', 0)} seeks)[/]")


@cli.command("prompt")
@click.argument("source", type=click.Path(path_type=str))
@click.option("--model", default=None, metavar="NAME", help=MODEL_HELP)
@click.option("--budget", type=int, default=None, help="Visual tokens to spend.")
@click.option("--question", required=True, help="The question for the model.")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Use this plan (`earmark plan`) instead of planning again; --model/--budget then come from it.")
@click.option("--strategy", default=_P.strategy, show_default=True,
              type=click.Choice(PLANNING_STRATEGIES))
@plan_options
@question_options
@click.option("--probe", default=IndexConfig.probe, show_default=True, help="Probe to index the audio with.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=str), help="messages.json to write.")
@click.option("--inline", is_flag=True, help="Embed the frames as base64 JPEG instead of files next to the JSON.")
@click.option("--no-audio-prompt", is_flag=True, help="Leave out the audio-triggered sentences (for ablations).")
@click.option("-q", "--quiet", is_flag=True)
@anchor_options
@probe_options
def prompt_cmd(source: str, model: str | None, budget: int | None, question: str, plan_file: str | None,
               strategy: str, plan_kw: dict, question_kw: dict, probe: str, out: str, inline: bool,
               no_audio_prompt: bool, quiet: bool, probe_kw: dict, anchor_cfg: AnchorConfig,
               anchor_given: set[str]) -> None:
    """Index -> plan -> extract -> messages for a VLM (Qwen-VL, InternVL or OpenAI-style chat). SOURCE is a video or
    an index JSON (its video is read from the path it records)."""
    from ..sinks.vlm import write_messages

    con = _console(quiet)
    if plan_file:
        clash = [o for o in ("model", "budget", "strategy", "k", *plan_kw, *anchor_given, *question_kw) if _given(o)]
        if clash:
            raise ConfigError(f"--plan {plan_file} already fixes the frames: drop --{clash[0].replace('_', '-')}")
        p = read_plan(plan_file)
        video = p.video.path if source.lower().endswith(".json") else source
    else:
        if model is None or budget is None:
            raise click.UsageError("--model and --budget are required unless --plan is given")
        check_request(model, budget, strategy)  # before any decoding
        text_image = _question_model(question, question_kw)  # --text-image-model: plan for the question too
        result = _load_source(source, probe, con, True, probe_kw, anchor_cfg, anchor_given, _given("probe"))
        result = _for_question(result, question, text_image, question_kw)
        p = plan(result, model, budget, strategy, k=anchor_cfg.k, **plan_kw)
        video = result.info.path
    path, n_frames, folder = write_messages(video, p, question, out, inline=inline, audio_prompt=not no_audio_prompt)
    con.print(plan_summary(p))
    for note in p.notes:
        con.print(f"[yellow]note:[/] {note}")
    con.print(f"wrote {path}" + (f" and {n_frames} frames in {folder}/" if folder is not None else ""))


@cli.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("earmark-demo"),
              show_default=True, help="Folder for the sample video and its indexes.")
@click.option("-q", "--quiet", is_flag=True)
def demo_cmd(out_dir: Path, quiet: bool) -> None:
    """Offline demo: make a sample video with sound events at known times, index it, compare with the truth."""
    from ..demo import DEMO_EVENTS, DEMO_PROBES, run_demo
    from ..types import clock

    con = _console(quiet)
    result = run_demo(out_dir, say=lambda msg: con.print(f"[dim]{msg}…[/]"))
    from rich.table import Table

    table = Table(title="anchors next to the truth (k=4, min gap 2 s)", box=None, pad_edge=False)
    table.add_column("truth event")
    table.add_column("when")
    for p in DEMO_PROBES:
        table.add_column(p)
    hits = {p: result.hits(p) for p in DEMO_PROBES}
    for i, ev in enumerate(DEMO_EVENTS):
        cells = []
        for p in DEMO_PROBES:
            a = hits[p][i]
            cells.append(f"[green]✓ {clock(a.time_s)}[/]" if a else "[red]✗ missed[/]")
        table.add_row(ev.label, f"[{clock(ev.start_s)}, {clock(ev.end_s)})", *cells)
    table.add_row("", "", *[f"{sum(h is not None for h in hits[p])}/{len(DEMO_EVENTS)}" for p in DEMO_PROBES])
    con.print(table)
    for p in DEMO_PROBES:
        r = result.results[p]
        con.print(f"{p:7s}", sparkline(r.timeline.scores, {a.index for a in r.anchors}, width=60))
    for model, p in result.plans.items():
        con.print(plan_summary(p) + f" -> {out_dir}/frames.{model}/")
    con.print(f"\nwrote {len(result.outputs)} outputs to {out_dir}/ (video, truth.json, an index per probe, a plan, "
              f"a frames folder and an HTML timeline per model)")
    con.print(f"report: {Path(out_dir) / 'report.html'}")


@cli.command("train-probe")
@click.option("--dataset", type=click.Choice(list(TRAIN_DATASETS)), default=TrainProbeConfig.dataset,
              show_default=True,
              help="synth / ave: labelled clips under --root; sounds: mixtures of real recordings from Debian "
                   "packages (tuxpaint-stamps-default, asterisk-moh-opsound-wav, asterisk-core-sounds-en-wav), "
                   "how the shipped `learned` probe is made.")
@click.option("--root", default=None, type=click.Path(path_type=str),
              help="The AVE folder, or a SynthAVE folder (`earmark eval synth --make DIR`); not with sounds.")
@click.option("--embed", default=TrainProbeConfig.embed, show_default=True,
              help="Frozen audio embedding the probe reads: logmel-stats (per window), or a tagger's embedding "
                   "TAGGER:PATH with TAGGER ast, clap (folders), panns (.pth) or yamnet (.onnx).")
@click.option("--context", "context_s", type=float, default=TrainProbeConfig.context_s, show_default=True,
              help="Also read each window's difference from the median of the windows within this many seconds "
                   "(0: the window alone).")
@click.option("--hidden", type=int, default=TrainProbeConfig.hidden, show_default=True,
              help="Hidden units (0: logistic regression).")
@click.option("--epochs", type=int, default=TrainProbeConfig.epochs, show_default=True)
@click.option("--clips", type=int, default=TrainProbeConfig.clips, show_default=True,
              help="sounds: training mixtures of 60 s (and a fifth as many for validation).")
@click.option("--seed", type=int, default=TrainProbeConfig.seed, show_default=True)
@click.option("--limit", default=None, metavar="TRAIN,VAL,TEST", help="Use the first N clips of each split.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=str), help="probe.pt to write.")
def train_probe_cmd(dataset: str, root: str | None, embed: str, context_s: float, hidden: int, epochs: int,
                    clips: int, seed: int, limit: str | None, out: str) -> None:
    """Train the `linear` probe on labelled seconds; use it with --probe linear --probe-weights probe.pt."""
    require_extra("earmark train-probe", "eval", ("torch",))
    from ..train.linear import train_probe
    from .eval_cmd import parse_limit

    if dataset == "sounds":
        if root is not None:
            raise ConfigError("--root does nothing with --dataset sounds (it reads installed Debian packages)")
        if limit is not None:
            raise ConfigError("--limit does nothing with --dataset sounds (use --clips)")
    elif root is None:
        raise ConfigError(f"--dataset {dataset} needs --root DIR (an AVE or SynthAVE folder)")
    elif not Path(root).is_dir():
        raise ConfigError(f"{root}: dataset root does not exist")
    cfg = TrainProbeConfig(dataset=dataset, root=root or "", embed=embed, context_s=context_s, hidden=hidden,
                           epochs=epochs, clips=clips, seed=seed, limit=parse_limit(limit))
    con = _console()

    def mixtures_made(split: str, done: int, total: int) -> None:
        con.print(f"{split} mixtures: {done}/{total}")

    metrics = train_probe(cfg, out, progress=mixtures_made if dataset == "sounds" else None)
    for split, m in metrics.items():
        con.print(f"{split:5s} {m['clips']:5d} clips  AUC {m['auc']:.3f}  Recall@2 {m['recall@2']:.3f}  "
                  f"precision@2 {m['precision@2']:.3f}")
    con.print(f"wrote {out}")


@cli.command("train-transfer")
@click.argument("corpus", type=click.Path(path_type=str))
@click.option("--epochs", type=int, default=TransferTrainConfig.epochs, show_default=True)
@click.option("--contrastive", type=float, default=TransferTrainConfig.contrastive, show_default=True,
              help="Weight of the audio-visual agreement (InfoNCE) loss; 0 turns it off.")
@click.option("--seed", type=int, default=TransferTrainConfig.seed, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=str), help="scorer.pt to write.")
def train_transfer_cmd(corpus: str, epochs: int, contrastive: float, seed: int, out: str) -> None:
    """Train a visual-only scorer on CORPUS (videos with sound) to predict audio eventness; use it with
    --probe transfer --probe-weights scorer.pt on videos with or without sound."""
    require_extra("earmark train-transfer", "eval", ("torch",))
    from ..train.transfer import train_transfer

    s = train_transfer(corpus, out, TransferTrainConfig(epochs=epochs, contrastive=contrastive, seed=seed))
    con = _console()
    con.print(f"trained on {s['windows']} windows of {s['videos']} videos ({s['skipped']} skipped); "
              f"correlation with audio eventness on the corpus {s['train_corr']:.2f}")
    for line in s["skipped_examples"]:
        con.print(f"[yellow]skipped:[/] {line}")
    con.print(f"wrote {out}")


def _with_plan_anchors(result: IndexResult, plan: Plan, plan_file: str) -> IndexResult:
    """``result`` as the report shows it beside ``plan``: the plan's own anchors on the plan's probe; other probes'
    anchors chosen with the plan's anchor settings (K, mode, gap ...) so every curve answers the same question."""
    settings = plan.config.get("anchor_settings")
    if result.timeline.probe == plan.config.get("probe", result.timeline.probe):
        return dataclasses.replace(result, anchors=plan.anchors,
                                   anchor_config={**result.anchor_config, **(settings or {}), "k": len(plan.anchors)})
    if not isinstance(settings, dict):  # a plan from before anchor_settings were saved: the curve keeps its own
        return result
    try:
        cfg = AnchorConfig(**settings)
    except TypeError as e:
        raise ConfigError(f"{plan_file}: bad anchor_settings in config ({e})") from None
    try:
        chosen = tuple(anchors(result.timeline, config=cfg))
    except ConfigError as e:
        raise ConfigError(f"{plan_file}: bad anchor_settings in config ({e})") from None
    return dataclasses.replace(result, anchors=chosen, anchor_config=cfg.to_dict())


@cli.command("report")
@click.argument("source", type=click.Path(path_type=str))
@click.option("--probe", "probes", default=",".join(DSP_PROBES), show_default=True,
              help="Probes drawn when SOURCE is a video (comma-separated).")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="A plan for this video: its frames are extracted and drawn as thumbnails, and its anchors (the "
                   "ones it spent tokens on) are the anchors shown.")
@click.option("--truth", default=None, metavar="FILE|S:E,...", help="Ground-truth event intervals to draw.")
@click.option("--out", type=click.Path(path_type=str), default=None,
              help="The HTML file (default: report.html; RESULTS_DIR/index.html for an eval folder).")
@click.option("--assets-dir", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Write the frames as files here instead of embedding them.")
@anchor_options
@probe_options
def report_cmd(source: str, probes: str, plan_file: str | None, truth: str | None, out: str | None,
               assets_dir: str | None, probe_kw: dict, anchor_cfg: AnchorConfig, anchor_given: set[str]) -> None:
    """An HTML report: a video's timeline (VIDEO or INDEX.json), or an eval results folder (RESULTS_DIR)."""
    from ..report.html import render_eval, timeline_report

    con = _console()
    if Path(source).is_dir():
        path = render_eval(source, out)
        con.print(f"wrote {path} (and a timeline per test video in {Path(source) / 'videos'}/)")
        return
    intervals = _truth(truth)  # a bad truth file is one line, before any decoding
    labels = ([e[2] for e in read_truth_events(truth)] if truth and Path(truth).suffix.lower() == ".json" else [])
    p = read_plan(plan_file) if plan_file else None
    if p is not None and anchor_given:
        raise ConfigError(f"--plan {plan_file}: the report shows the plan's own anchors; drop "
                          f"--{ANCHOR_HELP[sorted(anchor_given)[0]][0].lstrip('-')}")
    names = [x.strip() for x in probes.split(",") if x.strip()]
    if source.lower().endswith(".json"):
        results = [_load_source(source, names[0] if len(names) == 1 else "", con, True, probe_kw, anchor_cfg,
                                anchor_given, _given("probes"))]
    else:
        results = [_load_source(source, n, con, True, probe_kw, anchor_cfg) for n in names]
    if p is not None:  # the plan's anchors and settings, not a second choice that could disagree with them
        results = [_with_plan_anchors(r, p, plan_file) for r in results]
    path = timeline_report(results, out or "report.html", plan=p, truth=intervals, labels=labels,
                           assets_dir=assets_dir)
    con.print(f"wrote {path}")
