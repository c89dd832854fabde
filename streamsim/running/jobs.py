"""A sweep's unit of work: one (cell, seed) as plain data, and how a worker runs it.

Its own module so that the sweep (which plans jobs and collects results) and the executors (which
run them in processes or on Ray) both depend on it, not on each other.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamsim.core.errors import ConfigError
from streamsim.running.grid import cell_id


@dataclass(frozen=True)
class Job:
    """One (cell, seed) to run; plain data so it can travel to another process or machine."""

    scenario: dict[str, Any]
    params: dict[str, Any]
    seed: int
    out: str
    overrides: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        return cell_id(self.params), self.seed


def warm_up() -> None:
    """Import what every cell needs (torch, the simulator): a worker pays its start-up once, at pool start."""
    import streamsim.running.experiment  # noqa: F401


def run_job(job: Job, threads: int = 1) -> dict[str, Any]:
    """Run one cell in the current process; returns its summary (the worker's whole job)."""
    import torch

    from streamsim.running.experiment import run

    torch.set_num_threads(threads)
    out = Path(job.out)
    remove_leftover(out)  # left by a run killed after writing but before its row was appended
    return run(job.scenario, set=job.overrides, seed=job.seed, out=out, values=job.params).summary


def remove_leftover(out: Path) -> None:
    """Remove a cell's run folder, never following a symlink: a link in its place is unlinked, and a
    ``runs/`` folder that is itself a link (to somewhere outside the sweep) is refused.
    (``shutil.rmtree`` already refuses to follow links inside the folder.)
    """
    if out.parent.is_symlink():
        raise ConfigError(f"{out.parent}: a symlink; a sweep deletes only inside its own runs/ folder")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        out.unlink()
    elif out.exists():
        shutil.rmtree(out)
