"""The one parallel runner: order, bounded submission, errors, crashed workers, memory notes, and workers that die
with their parent (a kill -9 of the parent in a subprocess)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from earmark.errors import ConfigError, MediaError
from earmark.runner import Done, WorkerDiedError, check_workers, default_workers, run, run_map


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise MediaError(f"clip{x}.mp4", "corrupt")
    return x


def die_on_two(x: int) -> int:
    if x == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return x + 100


def allocate_mb(mb: int) -> int:
    a = np.ones(mb * 2**20, dtype=np.uint8)
    return int(a[::4096].sum())


def test_ordered_results_on_two_workers_and_serial():
    got = [(d.index, d.value) for d in run(square, range(20), workers=2)]
    assert got == [(i, i * i) for i in range(20)]
    assert run_map(square, range(20), workers=1) == [i * i for i in range(20)]
    seen = []  # one progress type everywhere (earmark.types.Progress): (stage, done, total)
    assert run_map(square, iter(range(3)), workers=2, progress=lambda *a: seen.append(a), stage="sq") == [0, 1, 4]
    assert seen == [("sq", 1, 3), ("sq", 2, 3), ("sq", 3, 3)]
    unordered = sorted((d.index, d.value) for d in run(square, range(20), workers=2, ordered=False))
    assert unordered == [(i, i * i) for i in range(20)]


def test_jobs_are_read_lazily_bounded_in_flight():
    taken = []

    def jobs():
        for i in range(50):
            taken.append(i)
            yield i

    it = run(square, jobs(), workers=2, max_in_flight=3)
    first = next(it)
    assert first == Done(0, 0, None, first.peak_rss_mb)
    assert len(taken) <= 4  # three in flight, plus the one that refilled the slot the first result freed
    assert [d.value for d in it] == [i * i for i in range(1, 50)]


def test_a_job_error_is_raised_in_the_parent_as_is():
    with pytest.raises(MediaError, match=r"clip3.mp4: corrupt"):
        list(run(fail_on_three, range(6), workers=2))
    with pytest.raises(MediaError, match=r"clip3.mp4: corrupt"):
        list(run(fail_on_three, range(6), workers=1))


def test_a_worker_that_dies_is_found_and_recorded_the_rest_go_on():
    done = list(run(die_on_two, range(8), workers=2, on_crash="record"))
    assert [d.index for d in done] == list(range(8))
    assert [d.value for d in done] == [100, 101, None, 103, 104, 105, 106, 107]
    assert done[2].error is not None and "worker process died while running die_on_two" in done[2].error
    assert all(d.error is None for i, d in enumerate(done) if i != 2)
    with pytest.raises(WorkerDiedError, match="died while running die_on_two"):
        list(run(die_on_two, range(8), workers=2))


def test_peak_memory_of_each_job():
    # Fresh workers: a forked one starts with the parent's resident pages (over 1 GB late in the test suite), which
    # can hide a 96 MB job under the inherited peak.
    small, big = list(run(allocate_mb, [1, 96], workers=2, fresh=True))
    assert big.peak_rss_mb is not None and big.peak_rss_mb >= 96
    assert small.peak_rss_mb is not None and small.peak_rss_mb < big.peak_rss_mb


def test_worker_counts():
    assert default_workers() >= 1
    assert check_workers(None) == default_workers()
    assert check_workers(3) == 3
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ConfigError, match="workers must be an integer >= 1"):
            check_workers(bad)
    with pytest.raises(ConfigError, match="unknown backend 'spark'; valid backends: local, ray"):
        run(square, [1], backend="spark")


PARENT = textwrap.dedent("""
    import os, sys, time
    from earmark.runner import run

    def sleeper(path):
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(120)
        return 0

    if __name__ == "__main__":
        for _ in run(sleeper, [sys.argv[1]] * 4, workers=2):
            pass
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's wait is missing


def _wait_for(cond, limit_s: float) -> bool:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_their_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    pids_file = tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, str(script), str(pids_file)])
    try:
        assert _wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2, 60)
        workers = [int(x) for x in pids_file.read_text().split()]
        assert all(_alive(p) for p in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_for(lambda: not any(_alive(p) for p in workers), 10), "workers outlived their parent"
    finally:
        parent.kill()


def test_a_worker_whose_parent_is_already_gone_exits():
    # The check after prctl: a worker started by a parent that died before the worker armed its signal.
    code = "from earmark.runner import _die_with_parent; _die_with_parent(1); print('alive')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""


def parent_module_loaded(_: int) -> bool:
    """True in a worker that inherited this process's modules (a fork), False in a fresh interpreter."""
    return "earmark.eval.stats" in sys.modules


def test_fresh_workers_are_new_interpreters():
    """fresh=True (train-probe's tagger features: torch in the workers) spawns instead of forking."""
    import earmark.eval.stats  # noqa: F401  (loaded here, so a fork has it)

    assert run_map(parent_module_loaded, [0, 1, 2], workers=2) == [True, True, True]
    assert run_map(parent_module_loaded, [0, 1, 2], workers=2, fresh=True) == [False, False, False]
    assert run_map(square, [1, 2, 3], workers=2, fresh=True) == [1, 4, 9]
