"""Labelled datasets for the eval protocol: the official AVE layout, read unchanged.

AVE (Tian et al., ECCV 2018): ten-second clips, one event class per clip and an event interval in whole
seconds (``Category&VideoID&Quality&StartTime&EndTime``, end exclusive), 28 classes, official train/val/test
split files, videos as ``VideoID.mp4``. SynthAVE (:mod:`earmark.eval.synthave`) writes the same layout,
so one loader reads both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EarmarkError

ANNOTATIONS = "Annotations.txt"
SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}
SPLITS = tuple(SPLIT_FILES)
BACKGROUND = "background"
HEADER = ("category", "videoid", "quality", "starttime", "endtime")
VIDEO_DIRS = ("", "AVE", "videos")
"""Where videos are looked for under the root, in this order (the release puts them in ``AVE/``)."""


_SAFE_ID = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")


class DatasetError(EarmarkError):
    """A dataset root or label file that cannot be used (names the file and, for label lines, the line)."""


@dataclass(frozen=True)
class AveRow:
    """One labelled clip: the event ``category`` sounds and shows in seconds ``[start_s, end_s)``."""

    category: str
    video_id: str
    quality: str
    start_s: int
    end_s: int

    def line(self) -> str:
        return f"{self.category}&{self.video_id}&{self.quality}&{self.start_s}&{self.end_s}"


def parse_rows(text: str, source: str, segments: int = 10) -> list[AveRow]:
    """Rows of an AVE label file; a malformed line raises with its line number."""
    rows: list[AveRow] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split("&")
        if n == 1 and tuple(p.strip().lower().replace(" ", "") for p in parts) == HEADER:
            continue
        if len(parts) != 5:
            raise DatasetError(f"{source}:{n}: expected 5 fields 'Category&VideoID&Quality&Start&End', "
                               f"got {len(parts)}: {line[:80]!r}")
        cat, vid, quality, a, b = (p.strip() for p in parts)
        try:
            start, end = int(a), int(b)
        except ValueError:
            raise DatasetError(f"{source}:{n}: start and end must be whole seconds, got {a!r} and {b!r}") from None
        if not cat or not vid:
            raise DatasetError(f"{source}:{n}: empty category or video id")
        if not _SAFE_ID.match(vid) or vid in (".", ".."):
            # The id names files the eval writes (feature cache, per-video records): never a path elsewhere.
            raise DatasetError(f"{source}:{n}: video id {vid[:80]!r} must be a plain file name (letters, digits, "
                               f"'-', '_', '.'; no path separators or '..')")
        # ``start == end`` is an empty event (all background): the AVE release has one such row.
        if not 0 <= start <= end <= segments:
            raise DatasetError(f"{source}:{n}: event [{start}, {end}) is not inside the clip's {segments} "
                               f"seconds (need 0 <= start <= end <= {segments})")
        rows.append(AveRow(cat, vid, quality, start, end))
    return rows


def read_rows(path: str | Path, segments: int = 10) -> list[AveRow]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{p}: label file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{p}: cannot read the label file ({e})") from None
    return parse_rows(text, str(p), segments)


def second_labels(start_s: int, end_s: int, class_index: int, segments: int, background: int) -> np.ndarray:
    """Per-second targets: ``class_index`` in ``[start_s, end_s)``, ``background`` elsewhere (int64)."""
    out = np.full(segments, background, dtype=np.int64)
    out[start_s:end_s] = class_index
    return out


@dataclass(frozen=True)
class Clip:
    """A clip of a split with its file (None when missing) and per-second targets."""

    video_id: str
    split: str
    row: AveRow
    path: Path | None
    labels: np.ndarray = field(compare=False, repr=False)

    @property
    def truth(self) -> list[tuple[float, float]]:
        return [(float(self.row.start_s), float(self.row.end_s))]


@dataclass(frozen=True)
class Dataset:
    """An AVE-layout dataset: classes (sorted), clips per split, and what is missing."""

    name: str
    root: Path
    classes: tuple[str, ...]
    clips: dict[str, tuple[Clip, ...]]
    missing: dict[str, tuple[str, ...]]
    segments: int = 10

    @property
    def background(self) -> int:
        return len(self.classes)

    @property
    def label_names(self) -> tuple[str, ...]:
        return (*self.classes, BACKGROUND)

    def split(self, name: str) -> tuple[Clip, ...]:
        return self.clips[name]

    def available(self, name: str) -> tuple[Clip, ...]:
        return tuple(c for c in self.clips[name] if c.path is not None)

    def missing_summary(self) -> str | None:
        n = sum(len(v) for v in self.missing.values())
        if not n:
            return None
        first = [v for vs in self.missing.values() for v in vs][:5]
        return (f"{n} video(s) listed in the split files are missing under {self.root} "
                f"(first: {', '.join(first)}); they are left out")


def _find_video(root: Path, video_id: str, suffixes: Sequence[str]) -> Path | None:
    for sub in VIDEO_DIRS:
        for suffix in suffixes:
            p = (root / sub / f"{video_id}{suffix}") if sub else root / f"{video_id}{suffix}"
            if p.is_file():
                return p
    return None


def load_ave(root: str | Path, *, strict: bool = False, segments: int = 10, name: str = "ave",
             suffixes: Sequence[str] = (".mp4",), limit: dict[str, int] | None = None,
             classes: Sequence[str] | None = None) -> Dataset:
    """Read an AVE-layout root: ``Annotations.txt``, the three split files and ``VideoID.mp4`` videos.

    >>> ds = load_ave("/data/AVE_Dataset")               # doctest: +SKIP
    >>> len(ds.split("test")), ds.classes[:2]            # doctest: +SKIP
    (402, ('Accordion', 'Acoustic guitar'))

    Missing videos are reported in :attr:`Dataset.missing` (and :meth:`Dataset.missing_summary`) and left
    out; with ``strict`` they raise. ``limit`` keeps the first N clips of a split (quick runs).
    """
    r = Path(root)
    if not r.is_dir():
        raise DatasetError(f"{r}: dataset root not found (expected a folder with {ANNOTATIONS} and "
                           f"{', '.join(SPLIT_FILES.values())})")
    annotations = read_rows(r / ANNOTATIONS, segments)
    if not annotations:
        raise DatasetError(f"{r / ANNOTATIONS}: no labelled clips")
    found = sorted({row.category for row in annotations})
    if classes is not None and not set(found) <= set(classes):
        raise DatasetError(f"{r / ANNOTATIONS}: categories outside the class list: "
                           f"{sorted(set(found) - set(classes))[:3]}")
    classes = tuple(classes) if classes is not None else tuple(found)
    index = {c: i for i, c in enumerate(classes)}
    clips: dict[str, tuple[Clip, ...]] = {}
    missing: dict[str, tuple[str, ...]] = {}
    for split, fname in SPLIT_FILES.items():
        rows = read_rows(r / fname, segments)
        unknown = [row.category for row in rows if row.category not in index]
        if unknown:
            raise DatasetError(f"{r / fname}: class {unknown[0]!r} is not in {ANNOTATIONS}")
        if limit and split in limit:
            rows = rows[: limit[split]]
        out, gone = [], []
        for row in rows:
            path = _find_video(r, row.video_id, suffixes)
            if path is None:
                gone.append(row.video_id)
            labels = second_labels(row.start_s, row.end_s, index[row.category], segments, len(classes))
            out.append(Clip(row.video_id, split, row, path, labels))
        clips[split], missing[split] = tuple(out), tuple(gone)
    ds = Dataset(name, r, classes, clips, missing, segments)
    if strict and ds.missing_summary():
        raise DatasetError(ds.missing_summary() + " (--strict)")
    if not ds.available("train") or not ds.available("test"):
        raise DatasetError(f"{r}: no videos found for the train or test split (looked for VideoID.mp4 in "
                           f"{', '.join(repr(d or '.') for d in VIDEO_DIRS)})")
    return ds
