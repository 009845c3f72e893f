"""``earmark batch`` (a corpus into Parquet parts and a manifest) and ``earmark query`` (DuckDB over the result).

The work lives in :mod:`earmark.batch`, imported when a command runs (pyarrow, duckdb and ray load only then).
"""

from __future__ import annotations

import json
import time

import click
from rich.console import Console
from rich.markup import escape

from ..anchors import AnchorConfig
from ..budget.planner import PlanConfig
from ..budget.strategies import PLANNING_STRATEGIES
from ..index import IndexConfig
from ..media.frames import FRAME_FORMATS
from ..runner import BACKENDS
from .commands import MODEL_HELP, _console, anchor_options, cli, plan_options, probe_options

_P = PlanConfig()
FAILURES_SHOWN = 10


def _safe(text: str) -> str:
    """``text`` for the terminal: control characters of a hostile file name as escapes, rich markup escaped."""
    return escape("".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text))


class _Bar:
    """The rich progress bar of a run: videos, videos/s, media hours/s, failures, ETA."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = None if quiet else Progress(
            TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rates]}"),
            TextColumn("{task.fields[failures]}"), TimeRemainingColumn(), console=Console(stderr=True),
            transient=True)
        self.task = None
        self.t0 = time.perf_counter()
        self.media_s = 0.0
        self.done = 0
        self.failed = 0

    def start(self, todo: int, skipped_done: int, skipped_failed: int) -> None:
        self.t0 = time.perf_counter()
        if self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task("batch", total=todo, rates="", failures="")

    def video(self, row: dict) -> None:
        self.done += 1
        self.failed += row["status"] != "ok"
        self.media_s += row["duration_s"] or 0.0
        if self.bar is not None and self.task is not None:
            dt = max(time.perf_counter() - self.t0, 1e-9)
            rates = f"{self.done / dt:.2f} videos/s  {self.media_s / 3600 / dt:.3f} media h/s"
            fails = f"[red]{self.failed} failed[/]" if self.failed else "0 failed"
            self.bar.update(self.task, advance=1, rates=rates, failures=fails)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@cli.command("batch")
@click.argument("source", metavar="INPUT", type=click.Path(path_type=str))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Output folder: manifest.jsonl, Parquet parts (windows/, anchors/, frames/), images/.")
@click.option("--probe", default=IndexConfig.probe, show_default=True, metavar="NAME",
              help="Eventness probe.")
@click.option("--hop", "hop_s", type=float, default=IndexConfig.hop_s, show_default=True,
              help="Seconds between window starts.")
@click.option("--window", "window_s", type=float, default=IndexConfig.window_s, show_default=True,
              help="Window length in seconds.")
@click.option("--audio-stream", type=int, default=None, metavar="N", help="Container stream index of the audio.")
@click.option("--plan-model", default=None, metavar="NAME", help="Plan each video for this model. " + MODEL_HELP)
@click.option("--budget", type=int, default=None, help="Visual tokens per video (with --plan-model).")
@click.option("--strategy", default=_P.strategy, show_default=True,
              type=click.Choice(PLANNING_STRATEGIES))
@plan_options
@click.option("--extract", is_flag=True, help="Decode each plan's frames into OUT/images/<video key>/.")
@click.option("--format", "image_format", type=click.Choice(FRAME_FORMATS), default=FRAME_FORMATS[0],
              show_default=True, help="Image format of --extract.")
@click.option("--visual-features", is_flag=True,
              help="Store each window's motion and appearance change (thumbnails at 2/s: decodes the picture "
                   "stream) for `earmark search OUT --query \"...moving\"`.")
@click.option("--text-image-model", type=click.Path(path_type=str), default=None, metavar="DIR",
              help="A local CLIP or SigLIP folder: store one thumbnail embedding per window for text-image search "
                   "of the corpus.")
@click.option("--workers", type=int, default=None, help="Processes (or Ray CPUs) [default: one per usable CPU].")
@click.option("--backend", type=click.Choice(BACKENDS), default=BACKENDS[0], show_default=True,
              help="local: a process pool on this machine; ray: Ray tasks (pip install -e \".[ray]\").")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Join this Ray cluster (e.g. ray://head:10001 or auto) instead of starting a local instance.")
@click.option("--retry-failed", is_flag=True, help="Try the videos that failed before again.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary (errors only).")
@anchor_options
@probe_options
def batch_cmd(source: str, out: str, probe: str, hop_s: float, window_s: float, audio_stream: int | None,
              plan_model: str | None, budget: int | None, strategy: str, plan_kw: dict, extract: bool,
              image_format: str, visual_features: bool, text_image_model: str | None, workers: int | None,
              backend: str, ray_address: str | None, retry_failed: bool, quiet: bool, probe_kw: dict,
              anchor_cfg: AnchorConfig, anchor_given: set[str]) -> None:
    """Index every video of INPUT (a folder, a text file of paths or a glob) into Parquet parts and a manifest
    under --out; optionally plan and extract. Resumes: a rerun does only new, changed (and with --retry-failed,
    failed) videos. Query the result with `earmark query OUT "SQL"`."""
    from ..batch import BatchConfig, BatchProgress, run_batch, summary_rows

    cfg = BatchConfig(probe=probe, probe_options=probe_kw, hop_s=hop_s, window_s=window_s, audio_stream=audio_stream,
                      anchors=anchor_cfg, plan_model=plan_model, budget=budget, strategy=strategy,
                      plan_options=plan_kw, extract=extract, image_format=image_format,
                      visual_features=visual_features, text_image_model=text_image_model)
    bar = _Bar(quiet)
    try:
        s = run_batch(source, out, cfg, workers=workers, backend=backend, ray_address=ray_address,
                      retry_failed=retry_failed, progress=BatchProgress(start=bar.start, video=bar.video))
    finally:
        bar.stop()
    if quiet:
        return
    from rich.table import Table

    con = _console()
    t = Table(title=f"earmark batch → {_safe(out)}", box=None, pad_edge=False, show_header=False)
    t.add_column()
    t.add_column(justify="right")
    for what, value in summary_rows(s):
        t.add_row(what, value)
    con.print(t)
    for path, error in s.failures[:FAILURES_SHOWN]:
        con.print(f"[red]failed:[/] {_safe(error if error.startswith(path) else f'{path}: {error}')}")
    if len(s.failures) > FAILURES_SHOWN:
        con.print(f"… and {len(s.failures) - FAILURES_SHOWN} more: earmark query {_safe(out)} "
                  "\"SELECT path, error FROM manifest WHERE status = 'failed'\"")


@cli.command("query")
@click.argument("out", metavar="DIR", type=click.Path(file_okay=False, path_type=str))
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="table: aligned text; csv: with a header; json: one object per row per line.")
def query_cmd(out: str, sql: str, fmt: str) -> None:
    """Run SQL (DuckDB) over a batch folder: views manifest, windows, anchors, frames. Needs the [duckdb] extra."""
    from .._extras import require_extra

    require_extra("earmark query", "duckdb")
    from ..batch import query

    table = query(out, sql)
    rows = table.to_pylist()
    if fmt == "json":
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False, default=str))
    elif fmt == "csv":
        import csv
        import sys

        from ..sinks.export import FORMULA_START

        def cell(v):  # text that a spreadsheet would run as a formula is shown as text
            return "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(table.column_names)
        w.writerows([cell(r[c]) for c in table.column_names] for r in rows)
    else:
        from rich.table import Table

        t = Table(box=None, pad_edge=False)
        for c in table.column_names:
            t.add_column(_safe(c))
        for r in rows:
            t.add_row(*[_safe("NULL" if r[c] is None else str(r[c])) for c in table.column_names])
        _console().print(t)
