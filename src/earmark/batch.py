"""A corpus at once (``earmark batch``): every video indexed, anchored and optionally planned and extracted, into
Parquet part files and a manifest that resumes.

Layout of an output folder ``DIR``::

    DIR/batch.json                  marks the folder as earmark's (kind, version)
    DIR/manifest.jsonl              one JSON line per video: the source of truth (see below)
    DIR/configs/<config hash>.json  every configuration a video in the folder was processed with
    DIR/windows/<key>-<config>.parquet  one row per window of the video's Timeline (with ``visual_features``: its
                                    motion and appearance change; with ``text_image_model``: its thumbnail's
                                    embedding: the features ``earmark search CORPUS_DIR`` reads)
    DIR/anchors/<key>-<config>.parquet  one row per anchor
    DIR/frames/<key>-<config>.parquet   one row per planned frame (with --plan-model/--budget)
    DIR/images/<key>-<config>/          the extracted frames (with --extract), named by time, and their manifest.json

``<key>`` is a hash of the video's absolute path (:func:`video_key`), ``<config>`` the hash of the configuration.

The manifest records, per video: its path, size, mtime, content fingerprint (a hash prefix of its head and tail,
:func:`earmark.media.container.fingerprint`), status (``ok`` or ``failed``), the one-line error, timings, peak memory,
the earmark version and the hash of the configuration. A video's part files are written first (under temporary
names, renamed when complete), then its manifest line is appended, then the video's outputs of other
configurations are removed; a query reads only the parts a manifest line vouches for (same fingerprint and
configuration), so a run killed at any moment leaves no half-written or duplicated row, only videos to do again
(and files no line vouches for, which the next run removes). At the end of a run the manifest is rewritten with
one line per video, sorted by path.

A rerun skips every video whose manifest line says ``ok`` with the same configuration, size and mtime (and whose
parts exist); a changed file is done again; a failure is recorded and skipped on reruns unless
``retry_failed``. The same input and configuration give byte-identical part files: rows in video order, no
timestamps, one writer (this process) whatever the backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import inspect
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._io import dumps_json, one_blas_thread, write_atomic, write_text_atomic
from .anchors import AnchorConfig, check_anchor_config, with_anchors
from .budget.planner import PlanConfig
from .errors import ConfigError, EarmarkError, MediaError, SchemaError
from .types import FINGERPRINT, int_field, list_field, number_field, object_field, read_fields, shown, text_field

MEDIA_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg", ".m2v", ".ts", ".mts",
    ".m2ts", ".3gp", ".ogv", ".vob", ".mxf", ".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus",
    ".wma",
})
"""What a folder or glob INPUT picks up (by file name, in any case)."""

TABLES = ("windows", "anchors", "frames")
MANIFEST = "manifest.jsonl"
MARKER = "batch.json"
KIND = "earmark.batch"
IMAGES = "images"
_KEY = re.compile(r"[0-9a-f]{16}")
_LOCK = ".lock"


# --- configuration ---------------------------------------------------------------------------------------------

def _index_default(name: str) -> Any:
    from .index import index

    return inspect.signature(index).parameters[name].default


@dataclass(frozen=True)
class BatchConfig:
    """What to do with every video of a corpus. The same config gives the same :meth:`config_hash` and the same
    part files; ``probe_options`` are :func:`earmark.index` keywords (``fallback``, ``ignore_speech``,
    ``weights`` and the probe's own settings), ``plan_options`` :class:`~earmark.PlanConfig` fields."""

    probe: str = "energy"
    probe_options: dict[str, Any] = field(default_factory=dict)
    hop_s: float = 1.0
    window_s: float = 1.0
    audio_stream: int | None = None
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    plan_model: str | None = None
    budget: int | None = None
    strategy: str = PlanConfig.strategy
    plan_options: dict[str, Any] = field(default_factory=dict)
    extract: bool = False
    image_format: str = "png"
    """``png`` or ``jpg`` (:data:`earmark.media.frames.FRAME_FORMATS`), as ``earmark extract`` writes them."""
    visual_features: bool = False
    """Store each window's motion and appearance change (robust z of 64 px thumbnails at 2 per second, as
    :func:`earmark.preview.visual_change` measures them): a search can then match motion across the corpus. It
    decodes the whole picture stream at low resolution, which costs more than indexing the sound."""
    text_image_model: str | None = None
    """A local CLIP/SigLIP folder: store one unit embedding per window's thumbnail (as
    :func:`earmark.preview.picture_embeddings` makes them) for text-image search across the corpus."""

    def index_options(self) -> dict[str, Any]:
        """``probe_options`` with index()'s defaults filled in (so leaving one out and giving its default agree)."""
        kw = {"fallback": _index_default("fallback"), "ignore_speech": _index_default("ignore_speech"),
              **self.probe_options}
        if isinstance(kw.get("weights"), str):  # workers (maybe on other machines) read it by this path
            kw["weights"] = os.path.abspath(kw["weights"])
        return kw

    def to_dict(self) -> dict[str, Any]:
        from .budget.costs import cost_model

        plan = None
        if self.plan_model is not None:
            plan = {"model": cost_model(self.plan_model).name, "budget": self.budget, "strategy": self.strategy,
                    "options": dict(sorted(self.plan_options.items()))}
        doc = {"kind": f"{KIND}.config", "version": 1, "probe": self.probe,
               "probe_options": dict(sorted(self.index_options().items())), "hop_s": float(self.hop_s),
               "window_s": float(self.window_s), "audio_stream": self.audio_stream,
               "anchors": self.anchors.to_dict(), "plan": plan,
               "extract": {"format": self.image_format} if self.extract else None}
        if self.visual_features or self.text_image_model is not None:  # (absent otherwise: older hashes hold)
            model = None
            if self.text_image_model is not None:
                path = os.path.abspath(self.text_image_model)
                model = {"path": path, "digest": _model_digest(path)}
            doc["search_features"] = {"visual": bool(self.visual_features), "text_image_model": model}
        return doc

    def config_hash(self) -> str:
        return hashlib.sha256(dumps_json(self.to_dict()).encode()).hexdigest()[:16]

    def check(self) -> None:
        """Every setting checked before any video is read (ConfigError / UnknownNameError, one line)."""
        from .budget.costs import cost_model
        from .budget.strategies import PLANNING_STRATEGIES
        from .media.frames import FRAME_FORMATS
        from .probes import get_probe, window_grid

        settings = {k: v for k, v in self.index_options().items() if k not in ("fallback", "ignore_speech")}
        get_probe(self.probe, **settings)
        window_grid(1.0, self.hop_s, self.window_s)
        if self.audio_stream is not None and self.audio_stream < 0:
            raise ConfigError(f"audio stream must be >= 0, got {self.audio_stream}")
        check_anchor_config(self.anchors, 1, float("inf"))
        if (self.plan_model is None) != (self.budget is None):
            raise ConfigError("--plan-model and --budget go together (plan each video for a model at a budget)")
        if self.plan_model is not None:
            cost_model(self.plan_model)
            if self.budget is None or self.budget < 1:
                raise ConfigError(f"budget must be >= 1 tokens, got {self.budget}")
            usable = list(PLANNING_STRATEGIES)
            if self.strategy not in usable:
                raise ConfigError(f"strategy {self.strategy!r} cannot run on a corpus; valid strategies: "
                                  f"{', '.join(usable)}")
            unknown = sorted(set(self.plan_options) - {f.name for f in dataclasses.fields(PlanConfig)})
            if unknown:
                raise ConfigError(f"unknown plan option {unknown[0]!r}")
        if self.extract and self.plan_model is None:
            raise ConfigError("--extract needs a plan: give --plan-model and --budget")
        if self.image_format not in FRAME_FORMATS:
            raise ConfigError(f"image format must be one of {', '.join(FRAME_FORMATS)}, got {self.image_format!r}")
        if not isinstance(self.visual_features, bool):
            raise ConfigError(f"visual_features must be true or false, got {self.visual_features!r}")
        if self.text_image_model is not None:
            from ._extras import require_extra

            require_extra("earmark batch --text-image-model", "vlm")
            text_image_model(self.text_image_model)  # a folder that does not load is refused before any video


_TEXT_IMAGE: dict[str, Any] = {}
_DIGESTS: dict[str, str] = {}


def text_image_model(path: str) -> Any:
    """The text-image model of folder ``path``, loaded once per process (a worker embeds every video with it)."""
    key = os.path.abspath(path)
    if key not in _TEXT_IMAGE:
        from .preview import load_text_image_model

        _TEXT_IMAGE[key] = load_text_image_model(key)
    return _TEXT_IMAGE[key]


def _model_digest(path: str) -> str:
    """The digest of a model folder's weights (as :class:`~earmark.probes.question.TextImageModel` records it),
    once per process: the configuration hash names the weights, not only the folder."""
    if path not in _DIGESTS:
        from .probes.question import weights_digest

        _DIGESTS[path] = weights_digest(Path(path))
    return _DIGESTS[path]


# --- input -----------------------------------------------------------------------------------------------------

def _is_media(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in MEDIA_EXTENSIONS


def _walk(folder: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder, onerror=None):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if _is_media(f)]
    return found


def discover(source: str | os.PathLike) -> list[str]:
    """The videos ``source`` names, as absolute paths, sorted, each once.

    ``source``: a folder (every file with a media extension below it, :data:`MEDIA_EXTENSIONS`; links to folders
    are not followed), a media file, a text file of paths (one per line, UTF-8; blank lines and lines starting
    with ``#`` skipped; relative paths are relative to the list's folder), or a glob (``videos/**/*.mp4``).
    A path listed in a text file that does not exist is kept: it becomes a failure in the manifest.
    """
    src = os.fspath(source)
    if os.path.isdir(src):
        paths = _walk(src)
        if not paths:
            raise ConfigError(f"{src}: no media files in this folder (looked for "
                              f"{', '.join(sorted(MEDIA_EXTENSIONS))})")
    elif os.path.isfile(src) and _is_media(src):
        paths = [src]
    elif os.path.isfile(src):
        paths = _read_list(src)
    elif glob.has_magic(src):
        paths = sorted(p for p in glob.glob(src, recursive=True) if _is_media(p) and os.path.isfile(p))
        if not paths:
            raise ConfigError(f"{src}: no media files match this pattern")
    else:
        raise ConfigError(f"{src}: no such file or folder (INPUT is a folder, a text file of paths or a glob)")
    return sorted({os.path.abspath(p) for p in paths})


def _read_list(path: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            data = f.read(64 * 2**20 + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the list of paths ({e.strerror})") from None
    if len(data) > 64 * 2**20:
        raise ConfigError(f"{path}: a list of paths over 64 MiB; split it")
    if b"\0" in data:
        raise ConfigError(f"{path}: not a text file of paths (it holds NUL bytes; a media file? known extensions: "
                          f"{', '.join(sorted(MEDIA_EXTENSIONS))})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line} of the list of paths is not UTF-8") from None
    base = os.path.dirname(os.path.abspath(path))
    paths = [os.path.join(base, line) for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not paths:
        raise ConfigError(f"{path}: the list of paths is empty")
    return paths


def shown_path(path: str) -> str:
    """``path`` as text that can be stored (file names that are not UTF-8 get ``\\xNN`` escapes)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def video_key(path: str) -> str:
    """The name of a video's part files: a hash of its (absolute) path, 16 hex digits."""
    return hashlib.sha256(shown_path(path).encode("utf-8")).hexdigest()[:16]


# --- one video (what a worker runs) ----------------------------------------------------------------------------

@dataclass(frozen=True)
class VideoJob:
    path: str
    key: str
    config: BatchConfig
    config_hash: str = ""
    images_dir: str | None = None
    """Where the extracted frames go (``DIR/images``; it must be visible to the worker)."""

    @property
    def output_name(self) -> str:
        return output_name(self.key, self.config_hash)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _row_base(job: VideoJob) -> dict[str, Any]:
    return {"path": shown_path(job.path), "video_key": job.key, "status": "failed", "error": None,
            "size_bytes": None, "mtime_ns": None, "fingerprint": None, "duration_s": None, "windows": None,
            "anchors": None, "frames": None, "timings": {}, "notes": []}


def process_video(job: VideoJob) -> dict[str, Any]:
    """Index, anchor and (if configured) plan and extract one video; never raises for a bad video.

    Returns the manifest row (``status`` ``ok`` or ``failed`` with its one-line ``error``) and, when ok, the
    columns of its part files under ``"tables"``. This is the function the local pool and Ray run.
    """
    t0 = time.perf_counter()
    row = _row_base(job)
    timings: dict[str, float] = {}
    try:
        try:
            st = os.stat(job.path)
        except FileNotFoundError:
            raise MediaError(job.path, "file not found") from None
        except OSError as e:
            raise MediaError(job.path, f"cannot read ({e.strerror})") from None
        row.update(size_bytes=st.st_size, mtime_ns=st.st_mtime_ns)
        if shown_path(job.path) != job.path:
            raise MediaError(row["path"], "the file name is not valid UTF-8 (rename it: the tables store paths as "
                                          "text)")
        with warnings.catch_warnings(record=True) as caught, one_blas_thread():
            warnings.simplefilter("always")
            tables, facts = _stages(job, timings)
        notes = list(facts.pop("notes", []))
        row.update(facts)
        for w in caught:  # warnings name the file; the manifest line already does
            text = _one_line(str(w.message)).removeprefix(f"{job.path}: ")
            if text not in notes:
                notes.append(text)
        row.update(status="ok", notes=notes, tables=tables)
    except EarmarkError as e:
        row["error"] = _one_line(str(e))
    except Exception as e:  # a bug or an unexpected library error: recorded, the corpus goes on
        row["error"] = _one_line(f"internal error: {type(e).__name__}: {e}")
    timings["total_s"] = time.perf_counter() - t0
    row["timings"] = {k: round(v, 4) for k, v in timings.items()}
    return row


def _stages(job: VideoJob, timings: dict[str, float]) -> tuple[dict[str, dict], dict[str, Any]]:
    from .budget.planner import plan as make_plan
    from .index import index
    from .media.container import info
    from .probes import window_grid

    cfg = job.config
    t = time.perf_counter()
    vi = info(job.path)
    grid = window_grid(vi.duration_s, cfg.hop_s, cfg.window_s)
    check_anchor_config(cfg.anchors, grid.n, vi.duration_s, job.path)
    timings["info_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tl = index(job.path, probe=cfg.probe, hop_s=cfg.hop_s, window_s=cfg.window_s, audio_stream=cfg.audio_stream,
               video_info=vi, jobs=1, **cfg.index_options())
    result = with_anchors(vi, tl, cfg.anchors)
    chosen = result.anchors
    timings["index_s"] = time.perf_counter() - t
    facts: dict[str, Any] = {"fingerprint": vi.fingerprint, "duration_s": vi.duration_s, "windows": len(tl),
                             "anchors": len(chosen), "notes": list(tl.notes)}
    common = {"video_key": job.key, "path": job.path}
    tables = {"windows": _window_columns(tl, chosen), "anchors": _anchor_columns(tl, chosen)}
    if cfg.visual_features or cfg.text_image_model is not None:
        t = time.perf_counter()
        tables["windows"].update(_search_columns(result, cfg, facts["notes"]))
        timings["features_s"] = time.perf_counter() - t
    if cfg.plan_model is not None:
        t = time.perf_counter()
        k = len(chosen) if cfg.anchors.k is None else min(cfg.anchors.k, len(tl))
        p = make_plan(result, cfg.plan_model, int(cfg.budget or 0), cfg.strategy, k=k, **cfg.plan_options)
        timings["plan_s"] = time.perf_counter() - t
        facts["notes"] += list(p.notes)
        facts["frames"] = len(p.frames)
        images = None
        if cfg.extract:
            t = time.perf_counter()
            images = _extract(job, p, vi)
            timings["extract_s"] = time.perf_counter() - t
        tables["frames"] = _frame_columns(p, images)
    for cols in tables.values():
        n = len(next(iter(cols.values())))
        cols.update({k: [v] * n for k, v in common.items()})
    return tables, facts


def _extract(job: VideoJob, p, vi) -> list[tuple[str, float]]:
    """Save the plan's frames to ``images/<key>/``; (file relative to DIR, pts) per planned frame."""
    from .media.frames import save_frames

    assert job.images_dir is not None
    folder = Path(job.images_dir) / job.output_name
    save_frames(job.path, p, folder, fmt=job.config.image_format, workers=1, video_info=vi)
    doc = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    by_index = {r["index"]: r for r in doc["frames"]}
    return [(f"{IMAGES}/{job.output_name}/{by_index[i]['file']}", float(by_index[i]["pts_s"]))
            for i in range(len(p.frames))]


def _search_columns(result, cfg: BatchConfig, notes: list[str]) -> dict[str, list]:
    """Motion, appearance change and thumbnail embeddings per window (None where not measured: a file without
    pictures, or a setting not asked for)."""
    from .preview import picture_embeddings, visual_change

    n = len(result.timeline)
    cols: dict[str, list] = {}
    if result.info.video is None:
        notes.append("no video stream: no motion, appearance change or picture embeddings stored")
        return cols
    if cfg.visual_features:
        motion, appearance = visual_change(result)
        cols.update(motion=motion.tolist(), appearance=appearance.tolist())
    if cfg.text_image_model is not None:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the same bits whatever the machine's cores and the worker count
        try:
            emb = picture_embeddings(result, text_image_model(cfg.text_image_model))
        finally:
            torch.set_num_threads(threads)
        cols["embedding"] = emb.astype("float32").tolist() if n else []  # float16 values, stored as float32
    return cols


def _label(tl, i: int) -> str | None:
    if tl.labels is None or not tl.labels[i]:
        return None
    return tl.labels[i][0]


def _window_columns(tl, chosen) -> dict[str, list]:
    n = len(tl)
    marked = {a.index for a in chosen}
    return {"window_index": list(range(n)), "start_s": tl.starts.tolist(), "end_s": tl.ends.tolist(),
            "raw": tl.raw, "score": tl.scores, "confidence": tl.confidence, "coverage": tl.coverage,
            "is_anchor": [i in marked for i in range(n)], "label": [_label(tl, i) for i in range(n)],
            "probe": [tl.probe] * n, "motion": [None] * n, "appearance": [None] * n, "embedding": [None] * n}


def _anchor_columns(tl, chosen) -> dict[str, list]:
    return {"anchor": list(range(len(chosen))), "window_index": [a.index for a in chosen],
            "time_s": [a.time_s for a in chosen], "start_s": [a.start_s for a in chosen],
            "end_s": [a.end_s for a in chosen], "score": [a.score for a in chosen],
            "confidence": [a.confidence for a in chosen], "source": [a.source for a in chosen],
            "label": [_label(tl, a.index) for a in chosen], "probe": [tl.probe] * len(chosen)}


def _frame_columns(p, images: list[tuple[str, float]] | None) -> dict[str, list]:
    fr = p.frames
    n = len(fr)
    return {"frame": list(range(n)), "time_s": [f.time_s for f in fr], "width": [f.width for f in fr],
            "height": [f.height for f in fr], "tokens": [f.tokens for f in fr], "role": [f.role for f in fr],
            "anchor": [f.anchor for f in fr], "tiles": [f.tiles for f in fr], "frame_group": [f.group for f in fr],
            "model": [p.model] * n, "strategy": [p.strategy] * n, "budget": [p.budget] * n,
            "target_tokens": [p.target_tokens] * n,
            "image": [x[0] for x in images] if images is not None else [None] * n,
            "pts_s": [x[1] for x in images] if images is not None else [None] * n}


# --- part files ------------------------------------------------------------------------------------------------

def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    s, f32, f64, i32 = pa.string(), pa.float32(), pa.float64(), pa.int32()
    head = [("video_key", s), ("path", s)]
    tail = [("fingerprint", s), ("config_hash", s)]
    return {
        "windows": pa.schema([*head, ("window_index", i32), ("start_s", f64), ("end_s", f64), ("raw", f32),
                              ("score", f32), ("confidence", f32), ("coverage", f32), ("is_anchor", pa.bool_()),
                              ("label", s), ("probe", s), ("motion", f32), ("appearance", f32),
                              ("embedding", pa.list_(f32)), *tail]),
        "anchors": pa.schema([*head, ("anchor", i32), ("window_index", i32), ("time_s", f64), ("start_s", f64),
                              ("end_s", f64), ("score", f32), ("confidence", f32), ("source", s), ("label", s),
                              ("probe", s), *tail]),
        "frames": pa.schema([*head, ("frame", i32), ("time_s", f64), ("width", i32), ("height", i32),
                             ("tokens", i32), ("role", s), ("anchor", i32), ("tiles", i32), ("frame_group", i32),
                             ("model", s), ("strategy", s), ("budget", i32), ("target_tokens", i32), ("image", s),
                             ("pts_s", f64), *tail]),
    }


def output_name(key: str, config_hash: str) -> str:
    """What a video's outputs under one configuration are called: ``<key>-<config hash>``."""
    return f"{key}-{config_hash}"


def part_path(out: Path, table: str, key: str, config_hash: str) -> Path:
    return out / table / f"{output_name(key, config_hash)}.parquet"


def _write_parts(out: Path, row: dict[str, Any], config_hash: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = _schemas()
    for name, cols in row["tables"].items():
        n = len(cols["video_key"])
        cols = {**cols, "fingerprint": [row["fingerprint"]] * n, "config_hash": [config_hash] * n}
        table = pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in schemas[name]}, schema=schemas[name])
        write_atomic(part_path(out, name, row["video_key"], config_hash),
                     lambda tmp, t=table: pq.write_table(t, tmp, compression="zstd", write_statistics=True))


def _remove_outputs(out: Path, key: str, keep: str | None = None) -> None:
    """Remove the part files and frame folders of video ``key``, except those named ``keep``."""
    from ._io import is_frames_folder

    for name in TABLES:
        for p in (out / name).glob(f"{key}-*.parquet"):
            if p.stem != keep:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
    for folder in (out / IMAGES).glob(f"{key}-*"):
        if folder.name != keep and is_frames_folder(folder, "earmark.frames"):
            shutil.rmtree(folder)


def _remove_unvouched(out: Path, rows: dict[str, dict[str, Any]]) -> None:
    """Outputs no ok manifest line names (a run killed between its parts and its manifest line, or before it
    removed a video's outputs of an older configuration)."""
    from ._io import is_frames_folder

    vouched = {output_name(k, r["config_hash"]) for k, r in rows.items() if r["status"] == "ok"}
    for name in TABLES:
        for p in (out / name).glob("*.parquet"):
            if p.stem not in vouched:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
    if (out / IMAGES).is_dir():
        for folder in (out / IMAGES).iterdir():
            if folder.name not in vouched and not folder.name.startswith(".") and is_frames_folder(
                    folder, "earmark.frames"):
                shutil.rmtree(folder)


# --- manifest --------------------------------------------------------------------------------------------------

_MANIFEST_FIELDS = {
    "path": text_field(path=True), "video_key": text_field(pattern=_KEY.pattern),
    "status": text_field(("ok", "failed")), "error": text_field(null=True),
    "size_bytes": int_field(null=True), "mtime_ns": int_field(lo=-2**63, hi=2**63 - 1, null=True),
    "fingerprint": text_field(pattern=FINGERPRINT, null=True), "config_hash": text_field(pattern=_KEY.pattern),
    "earmark_version": text_field(), "duration_s": number_field(lo=0, null=True),
    "windows": int_field(null=True), "anchors": int_field(null=True), "frames": int_field(null=True),
    "timings": object_field, "peak_rss_mb": number_field(lo=0, null=True), "notes": list_field(text_field()),
    "finished_at": text_field(),
}
_TIMINGS = ("info_s", "index_s", "features_s", "plan_s", "extract_s", "total_s")


def _check_row(doc: Any, where: str) -> dict[str, Any]:
    """A manifest line as earmark writes it, or SchemaError ``<where>: <field> must be ...``."""
    try:
        row = read_fields(doc, "", _MANIFEST_FIELDS, tuple(_MANIFEST_FIELDS), what="the line")
        for k, v in row["timings"].items():
            if k not in _TIMINGS:
                raise SchemaError(f"timings: unknown field {shown(k)} (known: {', '.join(_TIMINGS)})")
            number_field(lo=0)(v, f"timings.{k}")
    except SchemaError as e:
        raise SchemaError(f"{where}: {e}") from None
    if row["status"] == "ok" and (row["fingerprint"] is None or row["error"] is not None):
        raise SchemaError(f"{where}: an ok video has a fingerprint and no error")
    if row["status"] == "failed" and not row["error"]:
        raise SchemaError(f"{where}: a failed video has its error")
    row["notes"] = list(row["notes"])
    return row


def read_manifest(out: str | Path) -> dict[str, dict[str, Any]]:
    """The manifest of ``out``: the last line per video key (SchemaError naming the file and line when a line is
    not what earmark writes). An unfinished last line (no newline at its end: a run killed while appending) is
    dropped."""
    rows, _ = _read_manifest(Path(out) / MANIFEST)
    return rows


def _read_manifest(path: Path) -> tuple[dict[str, dict[str, Any]], bool]:
    """The rows by key, and whether the file needs rewriting (duplicates or an unfinished last line)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, False
    except OSError as e:
        raise SchemaError(f"{path}: cannot read ({e.strerror})") from None
    lines = data.split(b"\n")
    torn = lines.pop() != b""  # the text after the last newline: empty when every line is complete
    rows: dict[str, dict[str, Any]] = {}
    count = 0
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{path}: line {n}"
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise SchemaError(f"{where}: not a JSON object ({_one_line(str(e))}); fix or delete the line (the "
                              f"video is then done again)") from None
        row = _check_row(doc, where)
        if video_key(row["path"]) != row["video_key"]:
            raise SchemaError(f"{where}: video_key {row['video_key']} is not the key of its path")
        rows[row["video_key"]] = row
        count += 1
    return rows, torn or count != len(rows)


def _manifest_text(rows: dict[str, dict[str, Any]]) -> str:
    return "".join(_line(r) for r in sorted(rows.values(), key=lambda r: r["path"]))


def _line(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def _append(path: Path, row: dict[str, Any]) -> None:
    data = _line(row).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, data)  # one write: a kill leaves the line whole or absent (or unfinished: dropped on read)
    finally:
        os.close(fd)


# --- the run ---------------------------------------------------------------------------------------------------

@dataclass
class BatchSummary:
    """What a run did."""

    inputs: int
    done: int = 0
    failed: int = 0
    skipped_done: int = 0
    skipped_failed: int = 0
    media_s: float = 0.0
    wall_s: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(path, error) of the videos that failed in this run."""
    out: str = ""

    @property
    def media_hours_per_hour(self) -> float:
        return self.media_s / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class BatchProgress:
    """Callbacks of a run: ``start(todo, skipped_done, skipped_failed)``, then ``video(row)`` per finished video."""

    start: Callable[[int, int, int], None] = lambda todo, done, failed: None
    video: Callable[[dict[str, Any]], None] = lambda row: None


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    import fcntl

    fd = os.open(out / _LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{out}: another earmark batch is writing to this folder") from None
        except OSError:
            pass  # a file system without locks (some network mounts): go on unlocked
        yield
    finally:
        os.close(fd)


def _prepare_folder(out: Path) -> None:
    marker = out / MARKER
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    if out.is_dir() and not marker.exists() and any(out.iterdir()):
        raise ConfigError(f"{out}: exists and is not an earmark batch folder (no {MARKER}); give a new or empty "
                          f"folder")
    if marker.exists():
        try:
            doc = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = None
        if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("version") != 1:
            raise SchemaError(f"{marker}: not an earmark batch marker (expected {{\"kind\": \"{KIND}\", "
                              f"\"version\": 1}})")
    out.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        write_text_atomic(marker, dumps_json({"kind": KIND, "version": 1}))


def _remove_temporaries(out: Path) -> None:
    """Temporary files a killed run left (the folder is locked: nothing else writes them now)."""
    from ._io import remove_stale_temporaries

    for name in TABLES:
        for p in (out / name).glob(".*.part"):
            with contextlib.suppress(OSError):
                p.unlink()
    for p in out.glob(f".{MANIFEST}.*.part"):
        with contextlib.suppress(OSError):
            p.unlink()
    if (out / IMAGES).is_dir():
        remove_stale_temporaries(out / IMAGES, ".", time.time() + 1)


def _parts_present(out: Path, row: dict[str, Any], config: dict[str, Any]) -> bool:
    names = ["windows", "anchors", *(["frames"] if config["plan"] else [])]
    if not all(part_path(out, n, row["video_key"], row["config_hash"]).is_file() for n in names):
        return False
    name = output_name(row["video_key"], row["config_hash"])
    return not config["extract"] or (out / IMAGES / name / "manifest.json").is_file()


def _is_done(row: dict[str, Any] | None, path: str, chash: str, retry_failed: bool, out: Path,
             config: dict[str, Any]) -> str | None:
    """``"ok"`` / ``"failed"`` when the manifest already answers for ``path`` as it is now, else None."""
    if row is None or row["config_hash"] != chash:
        return None
    try:
        st = os.stat(path)
        now = (st.st_size, st.st_mtime_ns)
    except OSError:
        now = (None, None)
    if (row["size_bytes"], row["mtime_ns"]) != now:
        return None
    if row["status"] == "ok":
        return "ok" if _parts_present(out, row, config) else None
    return None if retry_failed else "failed"


def run_batch(source: str | os.PathLike, out: str | os.PathLike, config: BatchConfig = BatchConfig(), *,
              workers: int | None = None, backend: str = "local", ray_address: str | None = None,
              retry_failed: bool = False, progress: BatchProgress | None = None) -> BatchSummary:
    """Process every video ``source`` names (:func:`discover`) into ``out`` (see the module's documentation).

    >>> s = run_batch("videos/", "corpus-out", BatchConfig(probe="flux"), workers=2)   # doctest: +SKIP
    >>> s.done, s.failed, s.skipped_done                                               # doctest: +SKIP
    (40, 3, 0)

    ``workers``: processes (or Ray CPUs); ``backend``: ``local`` or ``ray`` (``ray_address`` joins a cluster).
    Raises ConfigError / SchemaError (one line naming the file) for a bad input, folder or manifest; a bad video
    never raises: it is recorded.
    """
    from ._version import __version__
    from .runner import BACKENDS, check_workers, run

    t0 = time.perf_counter()
    progress = progress or BatchProgress()
    config.check()
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if ray_address and backend != "ray":
        raise ConfigError("--ray-address needs --backend ray")
    check_workers(workers)
    if backend == "ray":
        from ._extras import require_extra

        require_extra("earmark batch --backend ray", "ray")
    paths = discover(source)
    out = Path(out)
    _prepare_folder(out)
    cdict = config.to_dict()
    chash = config.config_hash()
    summary = BatchSummary(inputs=len(paths), out=str(out))
    with _locked(out):
        manifest = out / MANIFEST
        rows, stale = _read_manifest(manifest)
        _remove_temporaries(out)
        _remove_unvouched(out, rows)
        if stale:
            write_text_atomic(manifest, _manifest_text(rows))
        cfg_file = out / "configs" / f"{chash}.json"
        if not cfg_file.exists():
            write_text_atomic(cfg_file, dumps_json(cdict))
        for name in TABLES:
            (out / name).mkdir(exist_ok=True)
        todo: list[VideoJob] = []
        images = str((out / IMAGES).absolute()) if config.extract else None
        for p in paths:
            key = video_key(p)
            state = _is_done(rows.get(key), p, chash, retry_failed, out, cdict)
            if state == "ok":
                summary.skipped_done += 1
            elif state == "failed":
                summary.skipped_failed += 1
            else:
                todo.append(VideoJob(p, key, config, chash, images))
        progress.start(len(todo), summary.skipped_done, summary.skipped_failed)
        try:
            for d in run(process_video, todo, workers=workers, backend=backend, ray_address=ray_address,
                         ordered=False, on_crash="record"):
                job = todo[d.index]
                row = d.value if d.value is not None else {**_row_base(job),
                                                           "error": f"{shown_path(job.path)}: {d.error}"}
                row.update(config_hash=chash, earmark_version=__version__, peak_rss_mb=d.peak_rss_mb,
                           finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                tables = row.pop("tables", None)
                _check_row(row, "row")  # what is appended reads back
                if row["status"] == "ok":  # parts first, then the manifest line, then older outputs go
                    _write_parts(out, {**row, "tables": tables}, chash)
                    summary.done += 1
                    summary.media_s += row["duration_s"] or 0.0
                else:
                    summary.failed += 1
                    summary.failures.append((row["path"], row["error"]))
                _append(manifest, row)
                _remove_outputs(out, job.key, keep=job.output_name if row["status"] == "ok" else None)
                rows[job.key] = row
                progress.video(row)
        finally:
            write_text_atomic(manifest, _manifest_text(rows))
    summary.wall_s = time.perf_counter() - t0
    return summary


# --- reading a folder back -------------------------------------------------------------------------------------

def manifest_table(out: str | Path):
    """The manifest of ``out`` as a pyarrow Table (timings flattened to ``info_s`` ... ``total_s``), by path."""
    import pyarrow as pa

    rows = sorted(read_manifest(out).values(), key=lambda r: r["path"])
    s, i64, f64 = pa.string(), pa.int64(), pa.float64()
    schema = pa.schema([("path", s), ("video_key", s), ("status", s), ("error", s), ("size_bytes", i64),
                        ("mtime_ns", i64), ("fingerprint", s), ("config_hash", s), ("earmark_version", s),
                        ("duration_s", f64), ("windows", i64), ("anchors", i64), ("frames", i64),
                        *[(t, f64) for t in _TIMINGS], ("peak_rss_mb", f64), ("notes", pa.list_(s)),
                        ("finished_at", s)])
    cols = {f.name: [r.get(f.name, (r["timings"].get(f.name) if f.name in _TIMINGS else None)) for r in rows]
            for f in schema}
    return pa.table({k: pa.array(v, type=schema.field(k).type) for k, v in cols.items()}, schema=schema)


def check_folder(out: str | Path) -> Path:
    """``out`` as an earmark batch folder, or ConfigError naming it."""
    out = Path(out)
    if not (out / MARKER).is_file():
        raise ConfigError(f"{out}: not an earmark batch folder (no {MARKER}; make one with `earmark batch INPUT "
                          f"--out {out}`)")
    return out


def stored_configs(out: str | Path) -> dict[str, dict[str, Any]]:
    """The configurations a batch folder's videos were processed with, by hash (``configs/<hash>.json``), or
    SchemaError naming a file that is not one earmark wrote."""
    found = {}
    for p in sorted((Path(out) / "configs").glob("*.json")):
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise SchemaError(f"{p}: not a batch configuration ({_one_line(str(e))[:200]})") from None
        if not isinstance(doc, dict) or doc.get("kind") != f"{KIND}.config":
            raise SchemaError(f"{p}: not a batch configuration (kind is not \"{KIND}.config\")")
        found[p.stem] = doc
    return found


def connect(out: str | Path, con=None):
    """A DuckDB connection with views over a batch folder: ``manifest`` (one row per video), and ``windows``,
    ``anchors``, ``frames`` (the rows of the videos the manifest says are ok, from their part files).

    >>> con = connect("corpus-out")                                                   # doctest: +SKIP
    >>> con.sql("SELECT status, count(*) FROM manifest GROUP BY status").fetchall()   # doctest: +SKIP
    [('ok', 40), ('failed', 3)]
    """
    import duckdb
    import pyarrow.dataset as ds

    out = check_folder(out)
    con = con or duckdb.connect()
    man = manifest_table(out)
    con.register("_earmark_manifest", man)
    con.execute("CREATE OR REPLACE VIEW manifest AS SELECT * FROM _earmark_manifest")
    ok = [r for r in man.to_pylist() if r["status"] == "ok"]
    for name, schema in _schemas().items():
        files = [str(p) for r in ok if (p := part_path(out, name, r["video_key"], r["config_hash"])).is_file()]
        con.register(f"_earmark_{name}", ds.dataset(files, schema=schema, format="parquet"))
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT p.* FROM _earmark_{name} p JOIN _earmark_manifest m "
                    f"ON p.video_key = m.video_key AND p.fingerprint = m.fingerprint AND p.config_hash = "
                    f"m.config_hash WHERE m.status = 'ok'")
    return con


def query(out: str | Path, sql: str):
    """Run ``sql`` over :func:`connect`'s views; returns a pyarrow Table (ConfigError with DuckDB's message)."""
    import duckdb

    con = connect(out)
    try:
        rel = con.sql(sql)
        if rel is None:  # a statement without rows
            import pyarrow as pa

            return pa.table({})
        return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    except duckdb.Error as e:
        raise ConfigError(f"query: {_one_line(str(e))}") from None
    finally:
        con.close()


def summary_rows(s: BatchSummary) -> Sequence[tuple[str, str]]:
    """The end-of-run table as (what, value) rows."""
    hours = s.media_s / 3600
    return [("videos in INPUT", str(s.inputs)), ("done now", str(s.done)), ("failed now", str(s.failed)),
            ("already done (skipped)", str(s.skipped_done)),
            ("failed before (skipped; --retry-failed)", str(s.skipped_failed)),
            ("media processed", f"{hours:.3f} h"), ("wall time", f"{s.wall_s:.1f} s"),
            ("throughput", f"{s.media_hours_per_hour:.0f} media hours per wall hour" if s.done else "-")]
