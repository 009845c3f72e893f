"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A crash or an error half-way never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``target``.

    On any exception the temporary file is removed and the target is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
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
