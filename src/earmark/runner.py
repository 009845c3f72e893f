"""The one parallel runner: jobs on a local process pool (or Ray tasks), bounded in flight, workers that die with
their parent.

Every parallel job in earmark goes through :func:`run` (or :func:`run_map`), so there is one start method, one
worker default, one serial path and one answer to "what happens when a worker dies":

- **Start method** ``fork`` (:data:`START_METHOD`): workers inherit the parent's imports and registered probes
  (a ``@register_probe`` in a user's script works in the workers) and start in milliseconds; what a job needs
  still travels pickled, so a job never depends on the parent's state after the pool started.
- **Workers** default to the CPUs this process may use (:func:`default_workers`: affinity and cgroup quota);
  ``workers=1`` runs the jobs in this process, in order, with no pool at all.
- **Bounded**: at most ``max_in_flight`` jobs (default two per worker) are submitted at a time, so a corpus of a
  million videos never sits in the executor's queue, and results stream back as they finish.
- **Workers die with their parent**: each worker asks Linux to kill it when its parent dies
  (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), and checks once that its parent is still the one that started it; where
  prctl does not exist a thread polls ``os.getppid()`` every second. A ``kill -9`` of the parent leaves no worker
  decoding on its own. Ctrl-C is the parent's: workers ignore SIGINT and the parent ends them.
- **A worker that dies** (killed, out of memory, a crash in native decoding code) breaks the pool. The jobs in
  flight then run again one at a time in a fresh pool, so the one that kills its worker is found; with
  ``on_crash="record"`` it comes back as a :class:`Done` with ``error`` set and the rest go on, otherwise
  :class:`WorkerDiedError` is raised.
- **Memory note**: every job reports the peak resident memory of its process while it ran (Linux: the process's
  high-water mark is reset before the job, ``/proc/self/clear_refs``), in :attr:`Done.peak_rss_mb` (on the serial
  path: this process's peak so far).
- **Ray** (``backend="ray"``): the same function as Ray tasks, one CPU each, on the cluster at ``ray_address``,
  or on a local Ray instance started for the run (and stopped after it). Ray retries a task whose worker died
  once before it counts as a crash.

An exception raised by the job function itself is re-raised in the parent (the pool is shut down first).

The module imports nothing of earmark but its errors (Ray only inside the Ray backend), so every layer may use it:
index segments, dataset writing, train-transfer and ``earmark batch`` do.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError, EarmarkError

START_METHOD = "fork"
"""The start method of every process pool earmark makes."""

BACKENDS = ("local", "ray")

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PARENT_POLL_S = 1.0


class WorkerDiedError(EarmarkError):
    """A worker process died while running a job (killed by a signal, out of memory, or a crash in native code)."""


@dataclass(frozen=True)
class Done:
    """One finished job: its position among the jobs, what the function returned, and how much memory it took."""

    index: int
    value: Any = None
    error: str | None = None
    """Set only when the job's worker process died (``on_crash="record"``); ``value`` is then None."""
    peak_rss_mb: float | None = None
    """Peak resident memory of the process while the job ran (None where the system does not say)."""


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota (containers)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) // int(period))))
    return max(1, n)


def default_workers() -> int:
    """The worker count every pool uses unless told: one per usable CPU."""
    return usable_cpus()


def check_workers(workers: int | None, flag: str = "workers") -> int:
    """``workers`` as a count (None: :func:`default_workers`); ConfigError below 1."""
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"{flag} must be an integer >= 1, got {workers!r}")
    return workers


# --- in the worker ---------------------------------------------------------------------------------------------

def _die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` (the process that started it) ends."""
    armed = False
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    if os.getppid() != parent_pid:  # the parent died before prctl took effect: it will never signal us
        os._exit(1)
    if not armed:  # no prctl (not Linux): poll
        def watch() -> None:
            while True:
                threading.Event().wait(_PARENT_POLL_S)
                if os.getppid() != parent_pid:
                    os._exit(1)

        threading.Thread(target=watch, name="earmark-parent-watch", daemon=True).start()


def _worker_init(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it cancels the work and ends us
    _die_with_parent(parent_pid)


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM (the peak RSS) to the current RSS


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MiB (since start, or since the last reset), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _call(fn: Callable[[Any], Any], job: Any) -> tuple[Any, float | None]:
    """What a worker runs for one job: the job, and its peak memory."""
    _reset_peak_rss()
    value = fn(job)
    return value, peak_rss_mb()


# --- in the parent ---------------------------------------------------------------------------------------------

def run(fn: Callable[[Any], Any], jobs: Iterable[Any], *, workers: int | None = None,
        max_in_flight: int | None = None, ordered: bool = True, backend: str = "local",
        ray_address: str | None = None, on_crash: Literal["raise", "record"] = "raise",
        fresh: bool = False) -> Iterator[Done]:
    """Run ``fn(job)`` for every job and yield a :class:`Done` per job: in job order (``ordered``) or as they finish.

    >>> from earmark.runner import run                               # doctest: +SKIP
    >>> [d.value for d in run(abs, [-1, -2, 3], workers=2)]            # doctest: +SKIP
    [1, 2, 3]

    ``fn`` must be a module-level function and each job picklable. ``jobs`` is read lazily: at most
    ``max_in_flight`` (default ``2 * workers``) are submitted at a time. ``workers=1`` runs everything in this
    process. ``backend="ray"`` runs the jobs as Ray tasks (see the module's documentation). ``fresh`` starts the
    local workers as new interpreters (``spawn``) instead of forks: for jobs that run torch after this process
    has started its thread pools (a forked OpenMP pool can crash the child); slower to start.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if on_crash not in ("raise", "record"):
        raise ConfigError(f"on_crash must be 'raise' or 'record', got {on_crash!r}")
    n = check_workers(workers)
    bound = max(1, max_in_flight if max_in_flight is not None else 2 * n)
    if backend == "ray":
        return _run_ray(fn, jobs, n if workers is not None or not ray_address else None, bound, ordered, ray_address,
                        on_crash)
    if n == 1:
        return _run_serial(fn, jobs)
    return _run_local(fn, jobs, n, bound, ordered, on_crash, fresh)


def run_map(fn: Callable[[Any], Any], jobs: Iterable[Any], workers: int | None = None,
            progress: Callable[[str, float, float], None] | None = None, fresh: bool = False,
            stage: str = "jobs") -> list[Any]:
    """``[fn(job) for job in jobs]`` on :func:`run`'s pool, in job order; ``progress(stage, done, total)`` after each
    job (:data:`earmark.types.Progress`)."""
    jobs = list(jobs)
    out = []
    for d in run(fn, jobs, workers=workers, fresh=fresh):
        out.append(d.value)
        if progress is not None:
            progress(stage, len(out), len(jobs))
    return out


def _run_serial(fn: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[Done]:
    # This process's peak is not reset (a caller may be measuring its own): the memory note is the peak so far.
    for i, job in enumerate(jobs):
        yield Done(i, fn(job), None, peak_rss_mb())


def _new_pool(workers: int, fresh: bool = False):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn" if fresh else START_METHOD),
                               initializer=_worker_init, initargs=(os.getpid(),))


def _end_pool(pool, wait: bool) -> None:
    """Shut a pool down; without ``wait``, end its workers now (they may be in the middle of a long job)."""
    if not wait:
        for p in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                p.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def _died_message(fn: Callable[[Any], Any]) -> str:
    return (f"the worker process died while running {getattr(fn, '__name__', 'the job')} (killed by a signal, out of "
            f"memory, or a crash in native code)")


def _isolated(fn: Callable[[Any], Any], job: Any, fresh: bool = False) -> tuple[Any, float | None] | None:
    """Run one job alone in a fresh one-worker pool: its result, or None when it kills its worker."""
    from concurrent.futures.process import BrokenProcessPool

    pool = _new_pool(1, fresh)
    try:
        return pool.submit(_call, fn, job).result()
    except BrokenProcessPool:
        return None
    finally:
        _end_pool(pool, wait=True)


class _Reorder:
    """Hands finished jobs out in job order (``ordered``) or as they come."""

    def __init__(self, ordered: bool) -> None:
        self.ordered = ordered
        self.held: dict[int, Done] = {}
        self.next = 0

    def put(self, d: Done) -> Iterator[Done]:
        if not self.ordered:
            yield d
            return
        self.held[d.index] = d
        while self.next in self.held:
            yield self.held.pop(self.next)
            self.next += 1

    def __len__(self) -> int:
        """Results finished but held back for order: they count against the in-flight bound (memory, and the jobs
        read ahead of the one everybody waits for)."""
        return len(self.held)


def _run_local(fn: Callable[[Any], Any], jobs: Iterable[Any], workers: int, bound: int, ordered: bool,
               on_crash: str, fresh: bool = False) -> Iterator[Done]:
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    todo = enumerate(jobs)
    pending: dict[Any, tuple[int, Any]] = {}
    out = _Reorder(ordered)
    pool = _new_pool(workers, fresh)
    clean = False
    try:
        while True:
            while len(pending) + len(out) < bound:
                nxt = next(todo, None)
                if nxt is None:
                    break
                pending[pool.submit(_call, fn, nxt[1])] = nxt
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = []
            for fut in sorted(finished, key=lambda f: pending[f][0]):
                i, job = pending.pop(fut)
                try:
                    value, rss = fut.result()
                except BrokenProcessPool:
                    broken.append((i, job))
                    continue
                yield from out.put(Done(i, value, None, rss))
            if broken:  # the pool is gone: find the job that kills its worker by running each one alone
                broken += sorted(pending.values(), key=lambda x: x[0])
                pending.clear()
                _end_pool(pool, wait=False)
                for i, job in broken:
                    got = _isolated(fn, job, fresh)
                    if got is None:
                        if on_crash == "raise":
                            raise WorkerDiedError(_died_message(fn))
                        yield from out.put(Done(i, None, _died_message(fn), None))
                    else:
                        yield from out.put(Done(i, got[0], None, got[1]))
                pool = _new_pool(workers, fresh)
        clean = True
    finally:
        _end_pool(pool, wait=clean)


def _run_ray(fn: Callable[[Any], Any], jobs: Iterable[Any], workers: int | None, bound: int, ordered: bool,
             address: str | None, on_crash: str) -> Iterator[Done]:
    import ray

    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": "warning" if address else "error"}
        if address:
            kw["address"] = address
        else:  # a small local instance for this run
            kw.update(num_cpus=workers or default_workers(), object_store_memory=256 * 2**20)
        try:
            ray.init(**kw)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(f"--ray-address {address}: cannot join the Ray cluster ({e})" if address else
                              f"cannot start a local Ray instance ({e})") from None
        started = True
    remote = ray.remote(num_cpus=1, max_retries=1)(_call)
    todo = enumerate(jobs)
    pending: dict[Any, tuple[int, Any]] = {}
    out = _Reorder(ordered)
    try:
        while True:
            while len(pending) + len(out) < bound:
                nxt = next(todo, None)
                if nxt is None:
                    break
                pending[remote.remote(fn, nxt[1])] = nxt
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i, _job = pending.pop(ref)
                try:
                    value, rss = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # the job's own exception, as the local pool raises it
                    cause = getattr(e, "cause", None)
                    raise (cause if isinstance(cause, BaseException) else e) from None
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError):
                    if on_crash == "raise":
                        raise WorkerDiedError(_died_message(fn)) from None
                    yield from out.put(Done(i, None, _died_message(fn), None))
                    continue
                yield from out.put(Done(i, value, None, rss))
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
