"""``earmark search VIDEO|INDEX.json|CORPUS_DIR --query TEXT``: the time ranges that answer a query, with the reasons;
``--save`` keeps a video's features for fast searches later, ``--plan`` turns the hits into an equal-token plan.

The work lives in :mod:`earmark.search` (options -> SearchConfig; defaults read from it, never repeated here).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from rich.markup import escape

from .._io import check_writable, dumps_json, write_json_atomic, write_text_atomic
from ..errors import ConfigError
from ..index import IndexConfig
from ..search import PLAN_STRATEGIES, SearchConfig, check_search_config, query_terms
from ..types import clock
from .commands import MODEL_HELP, _console, _given, _load_source, _probe_settings, cli, plan_options, probe_options

_S = {f.name: f.default for f in dataclasses.fields(SearchConfig)}
OUT_FORMATS = (".json", ".csv")


def _opt(flag: str, name: str, typ, text: str):
    return click.option(flag, name, type=typ, default=_S[name], show_default=True, help=text)


def _hits_csv(result) -> str:
    import csv
    import io

    from ..sinks.export import FORMULA_START

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("rank", "video", "start_s", "end_s", "duration_s", "score", "peak_s", "reasons"))
    for h in result.hits:
        row = (h.rank, h.video, h.start_s, h.end_s, round(h.duration_s, 6), h.score, h.peak_s,
               "; ".join(str(r) for r in h.reasons))
        w.writerow(["'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v for v in row])
    return buf.getvalue()


@cli.command("search")
@click.argument("source", metavar="VIDEO|INDEX.json|CORPUS_DIR", type=click.Path(path_type=str))
@click.option("--query", default=None, help="What to find: words a tagger's labels name, a picture a text-image "
                                            "model recognises, or motion / appearance / loud.")
@_opt("--top", "top", int, "Return at most N hits, best first.")
@_opt("--level", "level", float, "Evidence (robust z, summed over labels, picture, motion ...) a window needs.")
@_opt("--merge-gap", "merge_gap_s", float, "Matching windows at most this many seconds apart are one hit.")
@click.option("--text-image-model", type=click.Path(path_type=str), default=None, metavar="DIR",
              help="A local CLIP or SigLIP folder: embed one thumbnail per window and match pictures to the query.")
@click.option("--probe", default=IndexConfig.probe, show_default=True, metavar="NAME",
              help="Probe that indexes a VIDEO (a tagger's labels are matched: panns, yamnet, ast, clap).")
@click.option("--save", type=click.Path(dir_okay=False, path_type=str), default=None, metavar="FILE.json",
              help="Write the video's features (index, motion, appearance change, picture embeddings): later searches "
                   "read FILE.json instead of the video.")
@click.option("--plan", "make_plan", is_flag=True, help="Plan the hits for a model (with --model and --budget).")
@click.option("--model", default=None, metavar="NAME", help="--plan: " + MODEL_HELP)
@click.option("--budget", type=int, default=None, help="--plan: visual tokens to spend.")
@click.option("--strategy", type=click.Choice(PLAN_STRATEGIES), default=PLAN_STRATEGIES[0], show_default=True,
              help="--plan: how tokens go to the hits.")
@plan_options
@click.option("--plan-out", type=click.Path(path_type=str), default=None,
              help="Write the plan JSON (a batch folder: a folder of one plan per video, and plans.json).")
@click.option("--out", "outs", multiple=True, type=click.Path(dir_okay=False, path_type=str),
              help="Write the hits as FILE.json or FILE.csv; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the hits JSON to stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors (and --json output).")
@probe_options
def search_cmd(source: str, query: str | None, top: int, level: float, merge_gap_s: float,
               text_image_model: str | None, probe: str, save: str | None, make_plan: bool, model: str | None,
               budget: int | None, strategy: str, plan_kw: dict, plan_out: str | None, outs: tuple[str, ...],
               as_json: bool, quiet: bool, probe_kw: dict) -> None:
    """Find the moments of SOURCE that answer --query: a video (indexed now), an index or moments JSON (read, no
    decoding), or an `earmark batch` folder (DuckDB over its windows: labels, eventness, and the motion, appearance
    change and picture embeddings a batch made with --visual-features / --text-image-model stores, across videos).
    Prints the top hits with their reasons, or says there is no match. --plan: an equal-token plan of the hits (a
    batch folder: one per video with hits)."""
    from ..search import load_text_image_model, read_moments, search, search_corpus, with_features, write_moments

    cfg = SearchConfig(top=top, level=level, merge_gap_s=merge_gap_s)
    # Everything that can be refused is refused before any decoding.
    check_search_config(cfg)
    if query is None and save is None:
        raise ConfigError("--query TEXT is required (or --save FILE.json alone, to store a video's features)")
    named = query_terms(query)[1] if query is not None else ()
    for o in outs:
        if Path(o).suffix.lower() not in OUT_FORMATS:
            raise ConfigError(f"--out {o}: unknown hits format {Path(o).suffix or '(none)'!r}; use one of "
                              f"{', '.join(OUT_FORMATS)}")
    plan_given = [n for n in ("model", "budget", "strategy", "plan_out", *plan_kw) if _given(n)]
    if make_plan:
        if query is None:
            raise ConfigError("--plan plans the hits of a query: give --query TEXT")
        if model is None or budget is None:
            raise ConfigError("--plan needs --model NAME and --budget TOKENS")
        from ..budget.planner import check_request

        check_request(model, budget, strategy)  # before any decoding
    elif plan_given:
        raise ConfigError(f"--{plan_given[0].replace('_', '-')} applies to --plan")
    con = _console(quiet or as_json)
    corpus = Path(source).is_dir()
    if corpus:  # a corpus: its batch Parquet through DuckDB
        from ..search import check_plans_folder, corpus_folder

        corpus_folder(source)
        for flag, given in (("--save", save is not None), ("--probe", _given("probe")),
                            ("probe options", bool(_probe_settings(probe_kw)) or probe_kw.get("ignore_speech"))):
            if given:
                raise ConfigError(f"{source}: {flag} applies to a video or its index, not to a batch folder")
        if query is None:
            raise ConfigError("--query TEXT is required for a batch folder")
        if make_plan and plan_out is not None:
            check_plans_folder(plan_out)
        from .._extras import require_extra

        require_extra("earmark search CORPUS_DIR", "duckdb")
        result = search_corpus(source, query, cfg, text_image_model=text_image_model)
        index = None
    else:
        if plan_out is not None and Path(plan_out).is_dir():
            raise ConfigError(f"--plan-out {plan_out}: is a folder; the plan of one video is a file (FILE.json)")
        tim = load_text_image_model(text_image_model) if text_image_model is not None else None
        visual = save is not None or bool({"motion", "appearance"} & set(named))
        if source.lower().endswith(".json"):
            if _given("probe"):
                raise ConfigError(f"--probe {probe}: applies to a video; {source} keeps the probe it was indexed with")
            if _probe_settings(probe_kw) or probe_kw.get("ignore_speech"):
                raise ConfigError(f"{source}: probe options apply to a video, not to an index file")
            m = read_moments(source)
        else:
            m = _load_source(source, probe, con, True, probe_kw, probe_given=_given("probe"))
        m = with_features(m, visual=visual, model=tim)
        index = m.index
        result = search(m, query, cfg, text_image_model=tim) if query is not None else None
    p = None
    plans = {}
    if make_plan and corpus:
        from ..search import plan_corpus_hits

        plans = plan_corpus_hits(source, result, model, budget, strategy, **plan_kw)
    elif make_plan:
        from ..search import plan_hits

        p = plan_hits(index, result, model, budget, strategy, **plan_kw)
    # Render every file first and check every output's folder (a failure writes nothing), then write.
    rendered = {}
    if result is not None:
        for o in outs:
            rendered[o] = _hits_csv(result) if Path(o).suffix.lower() == ".csv" else dumps_json(result.to_dict())
    check_writable(save, plan_out if (plans or p is not None) else None, *rendered)
    if as_json and result is not None:
        click.echo(dumps_json(result.to_dict()), nl=False)
    if result is not None:
        _print(con, result, corpus=corpus)
    if p is not None:
        from .render import plan_summary

        con.print(plan_summary(p))
        for note in p.notes:
            con.print(f"[yellow]note:[/] {note}")
    if save is not None:
        con.print(f"wrote {write_moments(m, save)}")
    for video, vp in plans.items():
        con.print(f"plan of {escape(video)}: {len(vp.frames)} frames, {vp.total_tokens} tokens of {vp.model} "
                  f"({vp.strategy}, {vp.config['search']['hits']} hits as anchors)")
        for note in vp.notes:
            con.print(f"  [yellow]note:[/] {escape(note)}")
    if plans and plan_out is not None:
        from ..search import write_corpus_plans

        con.print(f"wrote {write_corpus_plans(plans, result, plan_out)}/ ({len(plans)} plans and plans.json)")
    if p is not None and plan_out is not None:
        con.print(f"wrote {write_json_atomic(plan_out, p.to_dict())}")
    for path, text in rendered.items():
        con.print(f"wrote {write_text_atomic(path, text)}")


def _print(con, result, corpus: bool) -> None:
    q = escape(result.query)
    evidence = ", ".join(result.features) or "none"
    if not result.hits:
        con.print(f"[bold]{escape(result.source)}[/]: no match for \"{q}\" (evidence read: {evidence}; no window "
                  f"reaches --level {result.config['level']:g})")
    else:
        n = len(result.hits)
        con.print(f"[bold]{escape(result.source)}[/]: {n} hit{'s' * (n != 1)} for \"{q}\" (evidence read: {evidence})")
    for h in result.hits:
        where = f"{escape(h.video)}  " if corpus else ""
        why = ", ".join(escape(str(r)) for r in h.reasons)
        con.print(f"  #{h.rank}  {where}[{clock(h.start_s)}, {clock(h.end_s)})  score {h.score:5.2f}  {why}")
    for note in result.notes:
        con.print(f"[yellow]note:[/] {escape(note)}")
