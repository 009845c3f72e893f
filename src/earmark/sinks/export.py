"""Saved documents: index and plan JSON, and index tables (CSV / Parquet of windows) for many videos.

All writes are atomic (temporary file + rename): an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._io import dumps_json, write_atomic, write_json_atomic
from ..errors import ConfigError, SchemaError
from ..types import SCHEMA_VERSION, IndexResult, Plan

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


def _read_document(path: str | Path, cls):
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise SchemaError(f"{p}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SchemaError(f"{p}: not valid JSON ({e})") from None
    try:
        return cls.from_dict(doc)
    except SchemaError as e:
        raise SchemaError(f"{p}: {e}") from None


def read_index(path: str | Path) -> IndexResult:
    """Load an index JSON written by ``earmark index --out x.json``."""
    return _read_document(path, IndexResult)


def read_plan(path: str | Path) -> Plan:
    """Load a plan JSON written by ``earmark plan --out plan.json``."""
    return _read_document(path, Plan)


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
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaError(f"{p}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SchemaError(f"{p}: not valid JSON ({e})") from None
    rows = doc.get("events") if isinstance(doc, dict) else doc
    try:
        out = [(float(r["start_s"]), float(r["end_s"])) if isinstance(r, dict) else (float(r[0]), float(r[1]))
               for r in rows]
    except (TypeError, KeyError, IndexError, ValueError):
        raise SchemaError(f"{p}: expected {{\"events\": [{{\"start_s\": .., \"end_s\": ..}}]}} or a list of "
                          f"[start, end] pairs") from None
    bad = [r for r in out if not r[0] < r[1]]
    if bad:
        raise SchemaError(f"{p}: empty interval [{bad[0][0]}, {bad[0][1]})")
    return out
