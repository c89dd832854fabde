"""Where sweep cells run: a local process pool, or Ray tasks on a cluster.

Both yield ``(job, summary, error)`` as cells finish, in any order; the sweep appends rows in
the parent, so the results file has the same atomic, resumable semantics whichever ran them.
"""

from __future__ import annotations

import ctypes
import importlib.util
import multiprocessing as mp
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from streamsim.core.errors import ConfigError, StreamsimError

if TYPE_CHECKING:
    from streamsim.running.jobs import Job

Outcome = tuple["Job", dict[str, Any] | None, str | None]
# What a worker runs: (job, threads) -> summary. The sweep passes jobs.run_job; the executors
# only move jobs to workers, so they import nothing that runs a simulation.
Task = Callable[["Job", int], dict[str, Any]]
JOBS_PER_CORE = 4  # cells in flight per core: beyond it, more processes only add memory and start-up


def _safe_run(task: Task, job: Job, threads: int) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return task(job, threads), None
    except StreamsimError as e:
        return None, str(e)
    except Exception as e:  # one broken cell must not end the sweep
        return None, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"


def _die_with_parent(parent: int) -> None:
    """Worker initializer: on Linux, ask the kernel to kill this worker when the sweep dies.

    Without it a sweep killed with SIGKILL leaves its workers computing cells whose rows can
    never be written (harmless for the results, wasteful for the machine). A sweep killed while
    this worker was still starting up is already gone: then the worker ends at once.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    if os.getppid() != parent:  # orphaned before the line above could take effect
        os._exit(1)


class LocalExecutor:
    """A pool of ``jobs`` spawned processes (spawn, not fork: torch's thread pools do not survive fork).

    Entering it starts the workers and has them run ``warm_up`` at once (import torch and the
    simulator), so that each worker pays its start-up once per sweep.
    """

    def __init__(self, jobs: int, task: Task, warm_up: Callable[[], None] | None = None) -> None:
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.task = task
        self.warm_up = warm_up
        self.threads = max(1, (os.cpu_count() or 1) // jobs)
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalExecutor:
        self.pool = ProcessPoolExecutor(self.jobs, mp_context=mp.get_context("spawn"), initializer=_die_with_parent,
                                        initargs=(os.getpid(),))
        for _ in range(self.jobs if self.warm_up else 0):
            self.pool.submit(self.warm_up)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.pool is not None
        self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)

    def map_unordered(self, jobs: list[Job]) -> Iterator[Outcome]:
        assert self.pool is not None
        pending = {}
        queue = list(jobs)
        # Keep only a few cells in flight so an interrupt loses little and resumes quickly.
        while queue or pending:
            while queue and len(pending) < 2 * self.jobs:
                job = queue.pop(0)
                pending[self.pool.submit(_safe_run, self.task, job, self.threads)] = job
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                summary, error = future.result()
                yield job, summary, error


class RayExecutor:
    """Each cell a Ray task; joins ``address`` or starts a local instance sized to this machine."""

    def __init__(self, jobs: int, address: str | None, task: Task) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'streamsim[ray]'") from None
        self.ray = ray
        self.jobs = jobs
        self.address = address
        self.task = task

    def __enter__(self) -> RayExecutor:
        if not self.ray.is_initialized():
            if self.address:
                self.ray.init(address=self.address, log_to_driver=False)
            else:
                self.ray.init(num_cpus=self.jobs, log_to_driver=False, include_dashboard=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.address is None:
            self.ray.shutdown()

    def map_unordered(self, jobs: list[Job]) -> Iterator[Outcome]:
        task = self.ray.remote(num_cpus=1)(_safe_run)
        refs = {task.remote(self.task, job, 1): job for job in jobs}
        while refs:
            ready, _ = self.ray.wait(list(refs), num_returns=1)
            for ref in ready:
                job = refs.pop(ref)
                summary, error = self.ray.get(ref)
                yield job, summary, error


def max_jobs() -> int:
    """The most cells run at once on this machine: :data:`JOBS_PER_CORE` per core."""
    return JOBS_PER_CORE * (os.cpu_count() or 1)


def check_executor(kind: str, jobs: int, address: str | None) -> None:
    """Refuse an unknown executor, or a ``jobs`` that is not 1..:func:`max_jobs` (unless Ray joins a
    cluster, which sizes itself); starts nothing."""
    if kind not in ("local", "ray"):
        raise ConfigError(f"--executor must be 'local' or 'ray', got {kind!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if jobs > max_jobs() and not (kind == "ray" and address):
        raise ConfigError(f"--jobs {jobs:,}: more than {max_jobs()} ({JOBS_PER_CORE} per core of this machine's "
                          f"{os.cpu_count() or 1}); each job is a process")
    if kind == "ray" and importlib.util.find_spec("ray") is None:  # found, not imported: that takes a while
        raise ConfigError("--executor ray needs Ray: pip install 'streamsim[ray]'")


def make_executor(kind: str, jobs: int, address: str | None, task: Task,
                  warm_up: Callable[[], None] | None = None) -> LocalExecutor | RayExecutor:
    check_executor(kind, jobs, address)
    if kind == "local":
        return LocalExecutor(jobs, task, warm_up)
    return RayExecutor(jobs, address, task)
