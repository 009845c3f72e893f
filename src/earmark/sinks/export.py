"""Saved documents: index and plan JSON, and index tables (CSV / Parquet of windows) for many videos.

All writes are atomic (temporary file + rename): an interrupted run leaves no half-written file. Reads trust
nothing: a hand-edited or hostile document is refused with one line that names the file and the field, before
anything is decoded.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from types import UnionType
from typing import Any

import numpy as np

from .._io import dumps_json, write_atomic, write_json_atomic
from ..anchors import AnchorConfig, check_anchor_config
from ..budget.planner import FITS, STRATEGIES
from ..errors import ConfigError, SchemaError
from ..probes.base import window_grid
from ..types import (
    SCHEMA_VERSION,
    Check,
    IndexResult,
    Plan,
    bad_value,
    bool_field,
    int_field,
    join,
    number_field,
    object_field,
    shown,
    text_field,
)

TABLE_COLUMNS = ("video", "window", "t", "end", "score", "raw", "confidence", "coverage", "is_anchor", "probe")
FORMATS = (".json", ".csv", ".parquet")


def window_rows(result: IndexResult) -> dict[str, list]:
    """Column-wise rows (one per window) for CSV/Parquet."""
    tl = result.timeline
    anchor_set = {a.index for a in result.anchors}
    n = len(tl)
    return {
        "video": [tl.video] * n,
        "window": list(range(n)),
        "t": [float(x) for x in tl.starts],
        "end": [float(x) for x in tl.ends],
        "score": [float(x) for x in tl.scores],
        "raw": [float(x) for x in tl.raw],
        "confidence": [float(x) for x in tl.confidence],
        "coverage": [float(x) for x in tl.coverage],
        "is_anchor": [i in anchor_set for i in range(n)],
        "probe": [tl.probe] * n,
    }


def write_json(result: IndexResult, path: str | Path) -> Path:
    return write_json_atomic(path, result.to_dict())


def index_json_text(result: IndexResult) -> str:
    return dumps_json(result.to_dict())


MAX_DOCUMENT_BYTES = 256 * 2**20
"""Largest index or plan JSON earmark reads (256 MiB; an index of a 24-hour video at 1 s windows is about 6 MB)."""

MAX_DEPTH = 32
"""Deepest nesting of lists and objects a document may have (earmark's own documents nest a few levels)."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of the document; a key given twice is refused (plain JSON reading keeps the last silently)."""
    d: dict[str, Any] = {}
    for key, value in pairs:
        if key in d:
            raise SchemaError(f"field {shown(key)} appears twice in one object")
        d[key] = value
    return d


def _check_tree(doc: Any) -> None:
    """Every object and list at most MAX_DEPTH deep, every number finite and every text valid Unicode, in free-form
    fields too (``config``, ``probe_config``): NaN, Infinity and lone surrogates such as ``\\ud800`` read, but
    earmark never writes them, so a plan holding one could not be written into a frames manifest."""
    stack: list[tuple[Any, str, int]] = [(doc, "", 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SchemaError(f"{where} is nested more than {MAX_DEPTH} levels deep")
        for key, value in (node.items() if isinstance(node, dict) else enumerate(node)):
            field = join(where, key)
            for text in (key, value):
                if isinstance(text, str) and not text.isascii():
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        raise SchemaError(f"{field}: text is not valid Unicode (a lone surrogate)") from None
            if isinstance(value, (dict, list)):
                stack.append((value, field, depth + 1))
            elif isinstance(value, float) and not math.isfinite(value):
                raise bad_value(field, "a finite number", value)


def _load_json(p: Path) -> Any:
    """The JSON document at ``p``, or SchemaError saying what is wrong in one line (the caller names the file)."""
    try:
        with p.open("rb") as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise SchemaError("file not found") from None
    except IsADirectoryError:
        raise SchemaError("is a folder, not a JSON file") from None
    except OSError as e:
        raise SchemaError(f"cannot read ({e.strerror or e})") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SchemaError(f"larger than {MAX_DOCUMENT_BYTES // 2**20} MiB, the most earmark reads as a document")
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except RecursionError:
        raise SchemaError(f"not valid JSON (nested too deeply to read; a document nests at most {MAX_DEPTH} "
                          f"levels)") from None
    except UnicodeDecodeError as e:
        raise SchemaError(f"not valid JSON (not UTF-8 text: {e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise SchemaError(f"not valid JSON ({e})") from None
    except ValueError:  # Python converts integers of at most sys.get_int_max_str_digits() digits
        raise SchemaError(f"not valid JSON (a number of more than {sys.get_int_max_str_digits()} digits)") from None
    return doc


def _read_document(path: str | Path, read):
    """``read(parsed JSON)``, then the whole tree checked (the fields ``read`` knows say what they need first),
    every SchemaError prefixed with the file's path."""
    p = Path(path)
    try:
        doc = _load_json(p)
        result = read(doc)
        _check_tree(doc)
    except SchemaError as e:
        raise SchemaError(f"{p}: {e}") from None
    return result


def _hint_check(hint: Any) -> Check:
    """The Check for a field annotated ``hint``: int (a count, >= 0), float, str, bool, a Literal of strings, or
    int / float / str | None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return text_field(args)
    null = isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union
    if null and len(args) == 2 and type(None) in args:
        hint = next(a for a in args if a is not type(None))
    makers = {int: lambda: int_field(0, null=null), float: lambda: number_field(null=null),
              str: lambda: text_field(null=null)}
    if hint is bool and not null:
        return bool_field
    if hint not in makers:
        raise TypeError(f"no document check for a field annotated {hint!r}")
    return makers[hint]()


ANCHOR_SETTINGS: dict[str, Check] = {name: _hint_check(hint) for name, hint in
                                     typing.get_type_hints(AnchorConfig).items()}
"""How a saved AnchorConfig's fields are read (from its annotations: ``k`` an integer or null, ``mode`` one of
the modes, ...); the ranges are :func:`earmark.anchors.check_anchor_config`'s."""


def anchor_settings(settings: Any, field: str) -> AnchorConfig:
    """A saved AnchorConfig (``anchor_config`` of an index, ``config.anchor_settings`` of a plan) read with every
    field's type checked; fields this earmark does not know are left out (older and newer documents read)."""
    d = object_field(settings, field)
    return AnchorConfig(**{k: ANCHOR_SETTINGS[k](v, f"{field}.{k}") for k, v in d.items() if k in ANCHOR_SETTINGS})


def _index_from_dict(doc: Any) -> IndexResult:
    result = IndexResult.from_dict(doc)
    tl = result.timeline
    try:
        grid = window_grid(tl.duration_s, tl.hop_s, tl.window_s)
    except ConfigError as e:
        raise SchemaError(f"timeline.hop_s, timeline.window_s: {e}") from None
    if grid.n != len(tl):
        raise SchemaError(f"timeline.scores has {len(tl)} windows, but timeline.duration_s {tl.duration_s!r} s "
                          f"at hop_s {tl.hop_s!r} s and window_s {tl.window_s!r} s makes {grid.n}")
    cfg = anchor_settings(result.anchor_config, "anchor_config")
    try:
        check_anchor_config(cfg, len(tl), tl.duration_s)
    except ConfigError as e:
        raise SchemaError(f"anchor_config: {e}") from None
    if cfg.k is not None and cfg.k > len(tl):  # earmark records the K it used, at most one per window
        raise SchemaError(f"anchor_config: k={cfg.k} is larger than the number of windows ({len(tl)})")
    return result


def _plan_from_dict(doc: Any) -> Plan:
    plan = Plan.from_dict(doc)
    for name, value, valid in (("strategy", plan.strategy, STRATEGIES), ("fit", plan.fit, FITS)):
        text_field(valid)(value, name)
    if "anchor_settings" in plan.config:
        anchor_settings(plan.config["anchor_settings"], "config.anchor_settings")
    return plan


def load_result(source: str | Path | IndexResult, probe: str | None = None, **index_kw: Any) -> IndexResult:
    """What a command that takes ``VIDEO|INDEX.json`` works on: an IndexResult as given, a saved index document
    (:func:`read_index`), or a video indexed with ``probe`` (default: the index's) and its default anchors."""
    if isinstance(source, IndexResult):
        return source
    if str(source).lower().endswith(".json"):
        return read_index(source)
    from ..anchors import with_anchors
    from ..index import IndexConfig, index
    from ..media.container import info

    vi = info(source)
    return with_anchors(vi, index(source, probe=probe or IndexConfig.probe, video_info=vi, **index_kw))


def read_index(path: str | Path) -> IndexResult:
    """Load an index JSON written by ``earmark index --out x.json``.

    Every field is checked (types, ranges, one window per ``hop_s`` over ``duration_s``, anchor settings that
    would choose anchors); a problem raises SchemaError naming the file and the field:
    ``i.json: timeline.duration_s must be a finite number > 0, got nan``. Documents over MAX_DOCUMENT_BYTES or
    nested deeper than MAX_DEPTH are refused.
    """
    return _read_document(path, _index_from_dict)


def read_plan(path: str | Path) -> Plan:
    """Load a plan JSON written by ``earmark plan --out plan.json``, every field checked as :func:`read_index`
    does (frames at distinct times in time order on the video, sizes in 1..MAX_SIDE_PX, a known strategy and
    fit)."""
    return _read_document(path, _plan_from_dict)


def write_plan(plan: Plan, path: str | Path) -> Path:
    return write_json_atomic(path, plan.to_dict())


def write_csv(results: Sequence[IndexResult], path: str | Path) -> Path:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(TABLE_COLUMNS)
            for r in results:
                cols = window_rows(r)
                for i in range(len(r.timeline)):
                    w.writerow([_csv_value(cols[c][i]) for c in TABLE_COLUMNS])

    return write_atomic(path, write)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""Text cells starting with these run as formulas when a spreadsheet opens the CSV: they get a leading ``'``."""


def _csv_value(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        return repr(float(np.float32(v))) if v == v else ""
    if isinstance(v, str) and v.startswith(FORMULA_START):
        return "'" + v  # shown as text, never evaluated (OWASP's advice for CSV injection)
    return v


def write_parquet(results: Sequence[IndexResult], path: str | Path) -> Path:
    """One row per window, all videos in one file; the full index documents ride along as file metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols: dict[str, list] = {c: [] for c in TABLE_COLUMNS}
    for r in results:
        for c, vals in window_rows(r).items():
            cols[c].extend(vals)
    f32 = pa.float32()
    schema = pa.schema([("video", pa.string()), ("window", pa.int32()), ("t", pa.float64()), ("end", pa.float64()),
                        ("score", f32), ("raw", f32), ("confidence", f32), ("coverage", f32),
                        ("is_anchor", pa.bool_()), ("probe", pa.string())])
    meta = {b"earmark.schema_version": str(SCHEMA_VERSION).encode(),
            b"earmark.anchors": json.dumps({r.timeline.video: [a.to_dict() for a in r.anchors] for r in results},
                                           sort_keys=True).encode()}
    table = pa.table(cols, schema=schema.with_metadata(meta))
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def output_kind(path: str | Path) -> str:
    """``json``, ``csv``, ``parquet`` or ``dir`` for an ``--out`` path."""
    p = Path(path)
    if str(path).endswith(("/", "\\")) or p.is_dir():
        return "dir"
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"--out {path}: unknown output format {suffix or '(none)'!r}; use one of "
                          f"{', '.join(FORMATS)} or a directory (one JSON per video)")
    return suffix[1:]


def json_name(video: str) -> str:
    return Path(video).stem + ".earmark.json"


def write_results(results: Sequence[IndexResult], out: str | Path) -> list[Path]:
    """Write results to ``out`` in the format its suffix names (a directory gets one JSON per video)."""
    kind = output_kind(out)
    if kind == "json":
        if len(results) != 1:
            raise ConfigError(f"--out {out}: a .json file holds one video's index, got {len(results)}; "
                              "give a directory (one JSON per video), a .csv or a .parquet")
        return [write_json(results[0], out)]
    if kind == "csv":
        return [write_csv(results, out)]
    if kind == "parquet":
        return [write_parquet(results, out)]
    names = [json_name(r.timeline.video) for r in results]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"--out {out}: several videos would write {dupes[0]}; index them separately")
    return [write_json(r, Path(out) / n) for r, n in zip(results, names)]


def read_truth(path: str | Path) -> list[tuple[float, float]]:
    """Ground-truth event intervals ``[start, end)`` from JSON: ``{"events": [{"start_s", "end_s"}, ...]}``
    (what ``earmark demo`` writes) or a plain list of ``[start, end]`` pairs."""
    return [(s, e) for s, e, _ in read_truth_events(path)]


def read_truth_events(path: str | Path) -> list[tuple[float, float, str]]:
    """:func:`read_truth` with each event's ``label`` (a string; "" when the event has none)."""
    import math

    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaError(f"{p}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SchemaError(f"{p}: not valid JSON ({e})") from None
    rows = doc.get("events") if isinstance(doc, dict) else doc
    expected = (f"{p}: expected {{\"events\": [{{\"start_s\": .., \"end_s\": ..}}]}} or a list of [start, end] "
                f"pairs")
    if not isinstance(rows, list):
        raise SchemaError(expected)
    out = []
    for i, r in enumerate(rows):
        pair = (r.get("start_s"), r.get("end_s")) if isinstance(r, dict) else r
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in pair):
            raise SchemaError(f"{expected}; event {i} is {json.dumps(r)[:80]}")
        start, end = float(pair[0]), float(pair[1])
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0:
            raise SchemaError(f"{p}: event {i}: times must be finite seconds >= 0, got [{start}, {end})")
        if not start < end:
            raise SchemaError(f"{p}: empty interval [{start}, {end})")
        label = r.get("label", "") if isinstance(r, dict) else ""
        out.append((start, end, label if isinstance(label, str) else str(label)))
    return out
