"""Writing a generated dataset (SynthAVE, RealStamp) as an AVE-layout folder: one place for the folder rules.

A generated folder holds ``Annotations.txt``, the three split files, ``AVE/<id>.mp4`` and a manifest
(``synthave.json`` / ``realstamp.json``) with the settings first and every clip's truth at the end. Writing
is resumable (finished clips are kept) and refuses a folder made with other settings or one that holds
anything else, so a dataset on disk always matches its manifest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._io import write_json_atomic, write_text_atomic
from ..types import Progress
from .datasets import ANNOTATIONS, SPLIT_FILES, SPLITS, Dataset, DatasetError, load_ave

VIDEO_DIR = "AVE"


def open_folder(root: Path, manifest: str, kind: str, config: dict[str, Any], defaults: dict[str, Any],
                missing: dict[str, Any] | None = None) -> Path:
    """Check or start ``root`` for a dataset of ``kind`` made with ``config``; returns the videos folder.

    A folder made before a setting existed was made with that setting's behaviour of the time, so the stored
    config is compared after filling in its missing keys: from ``missing`` (the values a setting had before it
    existed, where its default is not that behaviour), else from ``defaults``.
    """
    path = root / manifest
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise DatasetError(f"{path}: unreadable manifest ({e}); use another folder") from None
        if not isinstance(old, dict) or old.get("kind") != kind:
            raise DatasetError(f"{path}: not a {kind} manifest; use another folder")
        if {**defaults, **(missing or {}), **(old.get("config") or {})} != config:
            raise DatasetError(f"{root}: holds {kind.split('.')[-1]} data made with other settings "
                               f"({old.get('config')}); use another folder")
    elif root.exists() and any(root.iterdir()):
        raise DatasetError(f"{root}: exists and is not a {kind.split('.')[-1]} folder; use a new or empty folder")
    else:  # the settings go first, so an interrupted run can be resumed (and only with the same settings)
        root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"kind": kind, "version": 1, "config": config, "complete": False})
    videos = root / VIDEO_DIR
    videos.mkdir(parents=True, exist_ok=True)
    return videos


def run_jobs(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int | None,
             progress: Progress | None) -> None:
    """``fn`` over ``jobs`` on :mod:`earmark.runner` (``workers`` processes, default one per usable CPU),
    reporting progress as jobs finish."""
    from ..runner import run

    for done, _ in enumerate(run(fn, jobs, workers=workers, ordered=False), start=1):
        if progress:
            progress("generate", done, len(jobs))


def write_clip(job: tuple[Callable[..., Any], Callable[..., Any], Any, Any, int, str, int]) -> str:
    """Write one generated clip ``<folder>/<video id>.mp4`` unless it exists (what :func:`run_jobs` maps).

    ``job``: (audio_fn(cfg, spec, i), frames_fn(cfg, spec, i), cfg, spec, i, folder, sample rate); the two
    functions are module-level, so the job pickles to worker processes."""
    from .._io import one_blas_thread
    from ..media.write import VideoSpec, write_media

    audio_fn, frames_fn, cfg, spec, i, folder, sr = job
    path = Path(folder) / f"{spec.video_id}.mp4"
    if not path.exists():
        with one_blas_thread():
            write_media(path, float(cfg.duration_s), audio_fn(cfg, spec, i), sample_rate=sr,
                        video=VideoSpec(width=cfg.size, height=cfg.size, fps=cfg.fps, crf=cfg.crf),
                        frame_fn=frames_fn(cfg, spec, i))
    return spec.video_id


def finish_folder(root: Path, manifest: str, rows: Sequence[tuple[str, str]], doc: dict[str, Any]) -> None:
    """Write the AVE label files from ``rows`` ((split, ``Category&VideoID&good&Start&End``) in order) and the
    complete manifest ``doc``."""
    by_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    for split, line in rows:
        by_split[split].append(line)
    for split, fname in SPLIT_FILES.items():
        write_text_atomic(root / fname, "\n".join(by_split[split]) + "\n")
    write_text_atomic(root / ANNOTATIONS, "\n".join(r for s in SPLITS for r in by_split[s]) + "\n")
    write_json_atomic(root / manifest, {**doc, "complete": True})


def load_generated(root: str | Path, manifest: str, kind: str, *, strict: bool = False,
                   limit: dict[str, int] | None = None) -> tuple[Dataset, dict[str, Any]]:
    """A finished generated folder (SynthAVE ``synthave.json``, RealStamp ``realstamp.json``) as a
    :class:`~earmark.eval.datasets.Dataset`, with its manifest: the one reader of that manifest (eval and
    ``train-probe`` both use it). A missing, unfinished or hand-broken manifest is one line naming the file."""
    path = Path(root) / manifest
    name = kind.split(".")[-1]
    if not path.exists():
        raise DatasetError(f"{root}: no {manifest}; make the folder with `earmark eval "
                           f"{'synth' if name == 'synthave' else name} --make {root}`")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        raise DatasetError(f"{path}: not a {kind} manifest")
    if doc.get("complete") is not True:
        raise DatasetError(f"{path}: the folder was not finished; run the same command again to finish it")
    segments, classes = doc.get("segments"), doc.get("classes")
    if isinstance(segments, bool) or not isinstance(segments, int) or not 1 <= segments <= 3600:
        raise DatasetError(f"{path}: segments must be an integer in 1..3600, got {segments!r}")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise DatasetError(f"{path}: classes must be a non-empty list of names")
    ds = load_ave(root, strict=strict, segments=segments, name=name, limit=limit, classes=tuple(classes))
    return ds, doc
