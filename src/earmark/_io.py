"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A crash or an error half-way never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import ConfigError


def _temporary_beside(target: Path, folder: bool) -> Path:
    """A new temporary file (or folder) in ``target``'s folder, which is made when missing; a place that cannot be
    written (a path under a file, no permission, a full disk) is one line naming ``target``."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if folder:
            return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(fd)
        return Path(name)
    except OSError as e:
        raise ConfigError(f"{target}: cannot write here ({e.strerror or e})") from None


def check_writable(*targets: str | Path | None) -> None:
    """Refuse, before anything is written, an output whose folder cannot be made or written (a path under a file,
    a folder without write permission): one line naming the output. ``None`` targets (outputs not asked for) are
    skipped. A command with several outputs checks them all first, so one bad path writes none of them."""
    for target in targets:
        if target is None:
            continue
        t = Path(target)
        here = t.parent
        while not here.exists() and here != here.parent:
            here = here.parent
        if not here.is_dir():
            raise ConfigError(f"{t}: cannot write here ({here} is a file, not a folder)")
        if not os.access(here, os.W_OK | os.X_OK):
            raise ConfigError(f"{t}: cannot write here (no permission to write in {here})")


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``target``.

    On any exception the temporary file is removed and the target is left untouched.
    """
    target = Path(target)
    tmp = _temporary_beside(target, folder=False)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``target`` atomically."""
    with atomic_path(target) as tmp:
        write(tmp)
    return Path(target)


@contextlib.contextmanager
def atomic_folder(out: str | Path) -> Iterator[Path]:
    """Write a folder that appears complete or not at all: yields an empty temporary folder beside ``out``
    (``.NAME.*.part``); when the block ends it replaces ``out`` (which the caller has checked is its own to
    replace), and on any error it is removed."""
    import shutil

    out = Path(out)
    tmp = _temporary_beside(out, folder=True)
    try:
        yield tmp
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
        raise


def dumps_json(doc: Any) -> str:
    """Canonical JSON text: sorted keys, two-space indent, trailing newline (byte-stable)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8), atomically."""
    return write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(target: str | Path, doc: Any) -> Path:
    """Write ``doc`` as canonical JSON, atomically."""
    return write_text_atomic(target, dumps_json(doc))


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Run numpy's BLAS on one thread inside the block. earmark's matrix products are small (a mel filterbank per
    audio chunk, a colour transform per picture) and its parallelism is processes; a multi-threaded OpenBLAS under
    them busy-waits: measured on two cores with a second process running, a (100, 257) @ (257, 32) product took
    0.43 ms wall / 0.35 ms CPU with two BLAS threads and 0.13 / 0.07 with one."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a core dependency; without it the products just run as configured
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


FRAME_FILE = re.compile(r"^\d{5,}\.\d{6}s\.(png|jpg)$")
"""Names of the frame images earmark writes (planned time, zero-padded: ``00012.500000s.png``)."""


def check_replaceable_output(out: Path) -> None:
    """Refuse to replace a folder that is the root, the home folder, the current folder or one above it: a
    typo there would delete a user's files. One line, naming the folder."""
    r = out.resolve()
    cwd = Path.cwd().resolve()
    if r == Path(r.anchor) or r == Path.home().resolve() or r == cwd or r in cwd.parents:

        raise ConfigError(f"{out}: refusing to write frames over this folder (the root, your home, the current "
                          f"folder or one above it); give a new folder, e.g. --out frames/")


def is_frames_folder(folder: Path, manifest_kind: str | None = None) -> bool:
    """True when ``folder`` holds only what earmark writes there: frame images named by their time and, when
    ``manifest_kind`` is given, a ``manifest.json`` of that kind. Only such a folder may be replaced."""
    if not folder.is_dir():
        return False
    for p in folder.iterdir():
        if p.name == "manifest.json" and manifest_kind is not None:
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return False
            if not isinstance(doc, dict) or doc.get("kind") != manifest_kind:
                return False
        elif not (p.is_file() and not p.is_symlink() and FRAME_FILE.match(p.name)):
            return False
    return manifest_kind is None or (folder / "manifest.json").is_file() or not any(folder.iterdir())


def remove_stale_temporaries(parent: Path, prefix: str, older_than: float) -> int:
    """Remove ``parent/<prefix>*.part`` folders a killed earlier run left, when they hold only earmark frame
    files (and maybe its manifest) and are older than ``older_than`` (a time stamp); returns how many."""
    import glob
    import shutil

    removed = 0
    for p in parent.glob(f"{glob.escape(prefix)}*.part"):
        try:
            stale = p.is_dir() and not p.is_symlink() and p.stat().st_mtime < older_than
            if stale and (is_frames_folder(p) or is_frames_folder(p, "earmark.frames")):
                shutil.rmtree(p)
                removed += 1
        except OSError:
            continue
    return removed
