"""``earmark highlights VIDEO|INDEX.json|CORPUS_DIR``: the best segments of a video as JSON, CSV, a CMX3600 EDL,
FCPXML, an HTML reel page and clips, or of a batch folder's videos as JSON and CSV (options -> HighlightConfig;
defaults read from it, never repeated here)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from rich.markup import escape

from .._io import check_writable, dumps_json
from ..errors import ConfigError
from ..highlights import EMBEDDINGS, SCORERS, HighlightConfig, check_highlight_config, highlights_of
from ..index import IndexConfig
from ..media.frames import display_size
from ..search import SCOPES
from ..sinks.clips import check_clips_folder, clip_files, cut_clips
from ..sinks.edl import EDL_ORDERS, highlight_format, render_highlights, write_rendered
from ..types import clock
from .commands import _console, _given, _load_source, _probe_settings, cli, probe_options

_H = {f.name: f.default for f in dataclasses.fields(HighlightConfig)}


def _opt(flag: str, name: str, typ, text: str):
    default = _H[name]
    return click.option(flag, name, type=typ, default=default, show_default=default is not None, help=text)


@cli.command("highlights")
@click.argument("source", metavar="VIDEO|INDEX.json|CORPUS_DIR", type=click.Path(path_type=str))
@click.option("--probe", default=IndexConfig.probe, show_default=True, metavar="NAME",
              help="Probe that indexes a VIDEO (an index JSON keeps its own).")
@_opt("--scorer", "scorer", click.Choice(SCORERS),
      "eventness: the probe's scores; activation: how far each window's embedding rises above the video's typical "
      "window (top-k contrast). eventness won on val (benchmarks/README.md).")
@_opt("--embedding", "embedding", click.Choice(EMBEDDINGS),
      "activation: logmel (sound), learned (the shipped probe's hidden layer, needs torch), visual (picture "
      "alone); auto: logmel, or visual without sound.")
@_opt("--top", "top", int, "Keep at most N segments.")
@_opt("--total-duration", "total_duration_s", float,
      "Keep segments, best first, while they fit in S seconds (a reel; the last one trimmed around its peak).")
@_opt("--min-len", "min_len_s", float, "Shortest segment, seconds.")
@_opt("--max-len", "max_len_s", float, "Longest segment, seconds.")
@_opt("--level", "level", float, "Robust z-score a window needs to join a growing segment.")
@_opt("--merge-gap", "merge_gap_s", float, "Join event segments at most this many seconds apart.")
@_opt("--top-k", "top_k", int, "activation: dimensions averaged per window.")
@click.option("--out", "outs", multiple=True, type=click.Path(dir_okay=False, path_type=str),
              help="Write FILE.json, FILE.csv, FILE.edl (CMX3600), FILE.fcpxml (FCPXML 1.10: Final Cut Pro, "
                   "Resolve) or FILE.html (reel page); repeatable.")
@click.option("--order", type=click.Choice(EDL_ORDERS), default=EDL_ORDERS[0], show_default=True,
              help="Order of the segments in the CSV, EDL and FCPXML (the JSON lists them by rank).")
@click.option("--cut", "cut_dir", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Write one clip per segment into this folder (stream copy: fast, starts on the keyframe before "
                   "each segment).")
@click.option("--reencode", is_flag=True, help="With --cut: decode and encode (H.264/AAC MP4), frame-accurate.")
@click.option("--scope", type=click.Choice(SCOPES), default=SCOPES[0], show_default=True,
              help="CORPUS_DIR: the best segments of each video, or the best across the corpus.")
@click.option("--json", "as_json", is_flag=True, help="Print the highlights JSON to stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors (and --json output).")
@probe_options
def highlights_cmd(source: str, probe: str, scorer: str, embedding: str, top: int | None,
                   total_duration_s: float | None, min_len_s: float, max_len_s: float, level: float,
                   merge_gap_s: float, top_k: int, outs: tuple[str, ...], order: str, cut_dir: str | None,
                   reencode: bool, scope: str, as_json: bool, quiet: bool, probe_kw: dict) -> None:
    """The best segments of SOURCE (a video, an index JSON from `earmark index`, or an `earmark batch` folder), ranked:
    region growing over the window scores, short gaps merged, each window in one segment at most, --top N or
    --total-duration S (per video, or across a corpus with --scope corpus)."""
    cfg = HighlightConfig(scorer=scorer, embedding=embedding, top=top, total_duration_s=total_duration_s,
                          min_len_s=min_len_s, max_len_s=max_len_s, level=level, merge_gap_s=merge_gap_s,
                          top_k=top_k)
    # Everything that can be refused is refused before any decoding.
    check_highlight_config(cfg)
    if Path(source).is_dir():
        _corpus(source, cfg, outs, cut_dir, reencode, scope, as_json, quiet, probe_kw)
        return
    if _given("scope"):
        raise ConfigError(f"--scope {scope}: applies to a batch folder (CORPUS_DIR), not to {source}")
    kinds = [highlight_format(o) for o in outs]
    if reencode and cut_dir is None:
        raise ConfigError("--reencode applies to --cut DIR (give the folder for the clips)")
    if cut_dir is not None:
        check_clips_folder(cut_dir)
    if embedding != _H["embedding"] and scorer != "activation":
        raise ConfigError(f"--embedding {embedding}: applies to --scorer activation")
    con = _console(quiet or as_json)
    result = _load_source(source, probe, con, True, probe_kw, probe_given=_given("probe"))
    h = highlights_of(result, cfg)
    mode = "reencode" if reencode else "copy"
    # Render every file first (a failure writes nothing), then cut, then write.
    v = result.info.video
    size = display_size(v.width, v.height, v.rotation) if v is not None else None
    rendered = {o: render_highlights(h, k, order=order, size=size) for o, k in zip(outs, kinds) if k != "html"}
    if "html" in kinds:
        from ..report.reel import reel_html

        files = clip_files(result.info, h, mode) if cut_dir is not None else {}
        rendered.update({o: reel_html(result, h, o, files, cut_dir) for o, k in zip(outs, kinds) if k == "html"})
    check_writable(*rendered, cut_dir and Path(cut_dir) / "clip")
    clips = cut_clips(result.info.path, h, cut_dir, mode, video_info=result.info) if cut_dir is not None else []
    if as_json:
        click.echo(dumps_json(h.to_dict()), nl=False)
    how = f"activation of the {h.embedding} embedding" if h.embedding else f"eventness of the {h.probe} probe"
    con.print(f"[bold]{escape(h.video)}[/]: {len(h.segments)} segments, {h.total_s:.2f} s ({how})")
    for g in h.segments:
        con.print(_segment_line(g))
    for note in h.notes:
        con.print(f"[yellow]note:[/] {note}")
    for path, text in rendered.items():
        con.print(f"wrote {write_rendered(path, text)}")
    if clips:
        if reencode:
            con.print(f"wrote {len(clips)} clips to {Path(cut_dir)}/ (re-encoded H.264/AAC: frame-accurate)")
        else:
            early = max((c.start_s - c.clip_start_s for c in clips), default=0.0)
            con.print(f"wrote {len(clips)} clips to {Path(cut_dir)}/ (stream copy: fast, each starts on the keyframe "
                      f"at or before its segment, up to {early:.2f} s early here; --reencode for frame-accurate cuts)")


def _segment_line(g, video: str | None = None) -> str:
    """One ranked segment as the terminal shows it (with its video's path for a corpus)."""
    where = f"{escape(video)}  " if video is not None else ""
    return (f"  #{g.rank}  {where}[{clock(g.start_s)}, {clock(g.end_s)})  {g.duration_s:5.2f} s  "
            f"peak z {g.score:5.2f} at {clock(g.peak_s)}")


CORPUS_FORMATS = (".json", ".csv")


def _corpus(folder: str, cfg: HighlightConfig, outs: tuple[str, ...], cut_dir: str | None, reencode: bool,
            scope: str, as_json: bool, quiet: bool, probe_kw: dict) -> None:
    """``earmark highlights CORPUS_DIR``: the eventness a batch folder holds, per video or across the corpus."""
    from .._extras import require_extra
    from ..search import corpus_highlights

    refused = [("--probe", _given("probe")), ("probe options", bool(_probe_settings(probe_kw))),
               ("--ignore-speech", probe_kw.get("ignore_speech")), ("--embedding", _given("embedding")),
               ("--cut", cut_dir is not None), ("--reencode", reencode), ("--order", _given("order"))]
    for flag, given in refused:
        if given:
            raise ConfigError(f"{folder}: {flag} applies to a video or its index, not to a batch folder")
    for o in outs:
        if Path(o).suffix.lower() not in CORPUS_FORMATS:
            raise ConfigError(f"--out {o}: a batch folder's highlights are written as "
                              f"{' or '.join(CORPUS_FORMATS)} (an EDL, an FCPXML or a reel page shows one video: run "
                              f"earmark highlights on it)")
    require_extra("earmark highlights CORPUS_DIR", "duckdb")
    h = corpus_highlights(folder, cfg, scope)
    rendered = {o: h.csv_text() if Path(o).suffix.lower() == ".csv" else dumps_json(h.to_dict()) for o in outs}
    check_writable(*rendered)
    con = _console(quiet or as_json)
    if as_json:
        click.echo(dumps_json(h.to_dict()), nl=False)
    across = "across the corpus" if scope == "corpus" else "per video"
    con.print(f"[bold]{escape(h.folder)}[/]: {len(h.segments)} segments of {h.videos} videos, {h.total_s:.2f} s "
              f"(eventness, best {across})")
    for s in h.segments:
        con.print(_segment_line(s.segment, s.video))
    for note in h.notes:
        con.print(f"[yellow]note:[/] {note}")
    for path, text in rendered.items():
        con.print(f"wrote {write_rendered(path, text)}")
