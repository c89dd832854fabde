"""Sweeps: a scenario over the Cartesian product of parameter values and seeds.

Each cell runs in its own process (a local process pool, or Ray — see :mod:`streamsim.executors`).
Only this parent process writes ``results.csv``: one complete line per finished cell and seed,
appended with a single ``write`` and flushed to disk. A killed sweep leaves at worst one torn
last line, which ``resume`` drops; finished cells are never run twice and rows are never lost or
duplicated.

Layout of a sweep directory::

    sweep.json       the grid, seeds, base scenario and overrides (to resume from)
    results.csv      one row per (cell, seed): param:<key> columns, seed, metrics
    failures.jsonl   cells that raised, with the error (retried on resume)
    runs/<cell>-seed<N>/   each cell's run directory

>>> [c for c in grid_cells({"a": [1, 2], "b": ["x"]})]
[{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from streamsim.atomic import write_text_atomic
from streamsim.catalogue import SWEEP
from streamsim.config import load_scenario, parse_value
from streamsim.errors import ConfigError
from streamsim.executors import LocalExecutor, make_executor
from streamsim.jobs import Job, cell_id

METRICS = SWEEP  # results.csv's metric columns, from the metric catalogue


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["key.path=v1,v2", ...]`` → ``{"key.path": [v1, v2]}`` with TOML-typed values."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(f"--grid {item!r}: expected key.path=v1,v2,...")
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice")
        grid[key] = [parse_value(v.strip()) for v in split_values(values) if v.strip()]
        if not grid[key]:
            raise ConfigError(f"--grid {item!r}: no values after '='")
    return grid


def split_values(text: str) -> list[str]:
    """Split a grid's values on the commas outside brackets, braces and quotes, so a value can be a
    TOML list or inline table (a whole attack: ``{name = "noise", params = {std = 0.5}}``).

    >>> split_values('1,[2, 3],{a = 1, b = "x,y"}')
    ['1', '[2, 3]', '{a = 1, b = "x,y"}']
    """
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def grid_cells(grid: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, combo, strict=True))


class ResultsFile:
    """``results.csv`` with a fixed header, appended a whole line at a time."""

    def __init__(self, path: Path, param_keys: list[str]) -> None:
        self.path = path
        self.columns = ["cell", "seed", *(f"param:{k}" for k in param_keys), *METRICS, "attackers"]
        if not path.exists():
            write_text_atomic(path, ",".join(self.columns) + "\n")
        self._repair()

    def _repair(self) -> None:
        """Drop a torn last line left by a kill mid-append; check the header matches."""
        text = self.path.read_text(encoding="utf-8")
        header, _, _ = text.partition("\n")
        if header.split(",") != self.columns:
            raise ConfigError(f"{self.path}: its columns do not match this sweep's grid; use another --out")
        if not text.endswith("\n"):
            write_text_atomic(self.path, text[: text.rfind("\n") + 1])

    def done(self) -> set[tuple[str, int]]:
        frame = pd.read_csv(self.path, usecols=["cell", "seed"], dtype={"cell": str, "seed": int})
        return set(zip(frame.cell, frame.seed, strict=True))

    def append(self, job: Job, summary: dict[str, Any]) -> None:
        row = [cell_id(job.params), job.seed, *(job.params[k] for k in job.params),
               *(summary.get(m) for m in METRICS), json.dumps(summary.get("attackers", {}), sort_keys=True)]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(["" if v is None else v for v in row])
        data = buf.getvalue().encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)  # one write: a kill leaves the whole line or a torn tail, never a mix
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class SweepProgress:
    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    started: float = 0.0

    @property
    def eta_s(self) -> float | None:
        if not self.done:
            return None
        rate = self.done / (time.perf_counter() - self.started)
        return (self.total - self.skipped - self.done - self.failed) / rate


def plan(scenario: str | Path, grid: dict[str, list[Any]], seeds: list[int], out: Path,
         overrides: tuple[str, ...], resume: bool) -> tuple[list[Job], ResultsFile, int]:
    """Validate every cell up front (a typo fails before hours of work), then list what is left."""
    out = Path(out)
    meta_path = out / "sweep.json"
    if resume and not meta_path.is_file() and grid and seeds and not _holds_anything(out):
        resume = False  # killed before it wrote anything: resuming it is starting it
    if resume:
        if not meta_path.is_file():
            raise ConfigError(f"--resume: {out} holds no sweep.json")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        grid = grid or meta["grid"]
        seeds = seeds or meta["seeds"]
        overrides = overrides or tuple(meta["overrides"])
        if meta["grid"] != grid or meta["seeds"] != seeds or meta["overrides"] != list(overrides):
            raise ConfigError(f"--resume: the grid, seeds or overrides differ from {meta_path}")
        base = meta["scenario"]
    else:
        if _holds_anything(out) or (out.exists() and not out.is_dir()):
            raise ConfigError(f"sweep directory {out} already exists; use --resume to continue it or another --out")
        base = load_scenario(scenario, overrides).model_dump(mode="json")
        overrides = ()  # folded into the base scenario
    if not grid:
        raise ConfigError("a sweep needs at least one --grid key=v1,v2,...")
    if not seeds:
        raise ConfigError("a sweep needs at least one seed")
    if any(not isinstance(s, int) or not 0 <= s < 2**63 for s in seeds):
        raise ConfigError(f"seeds must be integers in 0..2**63-1, got {seeds}")
    from streamsim import preflight

    for params in grid_cells(grid):  # each cell checked as `run` will check it: a typo fails before hours of work
        preflight.check(load_scenario(base, overrides, params), cache=False)
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_text_atomic(meta_path, json.dumps({"grid": grid, "seeds": seeds, "overrides": list(overrides),
                                                 "scenario": base}, indent=2))
    results = ResultsFile(out / "results.csv", list(grid))
    finished = results.done()
    jobs = [
        Job(scenario=base, params=params, seed=seed, out=str(out / "runs" / f"{cell_id(params)}-seed{seed}"),
            overrides=tuple(overrides))
        for params in grid_cells(grid) for seed in seeds
    ]
    return [j for j in jobs if j.key not in finished], results, len(jobs)


def _holds_anything(out: Path) -> bool:
    """Whether a directory holds more than the hidden leftovers of an interrupted atomic write."""
    return out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir())


def run_sweep(
    scenario: str | Path,
    grid: dict[str, list[Any]],
    seeds: list[int],
    out: Path,
    *,
    jobs: int = 1,
    resume: bool = False,
    overrides: tuple[str, ...] = (),
    executor: str = "local",
    address: str | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
) -> SweepProgress:
    """Run (or continue) a sweep; returns the final counts. Failures are logged, not fatal."""
    executor_ = make_executor(executor, jobs, address)  # a bad executor fails before anything is written
    with contextlib.ExitStack() as stack:
        # local workers start (spawn, import torch) while the cells are checked; Ray only once they pass
        pool = stack.enter_context(executor_) if isinstance(executor_, LocalExecutor) else None
        todo, results, total = plan(scenario, grid, seeds, Path(out), tuple(overrides), resume)
        progress = SweepProgress(total=total, skipped=total - len(todo), started=time.perf_counter())
        if on_progress:
            on_progress(progress)
        failures = Path(out) / "failures.jsonl"
        pool = pool or stack.enter_context(executor_)
        for job, summary, error in pool.map_unordered(todo):
            if error is None:
                results.append(job, summary)
                progress.done += 1
            else:
                progress.failed += 1
                with failures.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"cell": cell_id(job.params), "params": job.params, "seed": job.seed,
                                        "error": error}) + "\n")
            if on_progress:
                on_progress(progress)
    return progress
