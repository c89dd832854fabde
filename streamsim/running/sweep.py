"""Sweeps: a scenario over the Cartesian product of parameter values and seeds.

Each cell runs in its own process (a local process pool, or Ray — see :mod:`streamsim.running.executors`).
Only this parent process writes ``results.csv``: one complete line per finished cell and seed,
appended with a single ``write`` and flushed to disk. A killed sweep leaves at worst one torn
last line, which ``resume`` drops; finished cells are never run twice and rows are never lost or
duplicated.

Layout of a sweep directory::

    sweep.json       the grid, seeds, base scenario (and its sha256) and overrides (to resume from)
    results.csv      one row per (cell, seed): param:<key> columns, seed, metrics
    failures.jsonl   cells that raised, with the error (retried on resume)
    runs/<cell>-seed<N>/   each cell's run directory

>>> [c for c in grid_cells({"a": [1, 2], "b": ["x"]})]
[{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamsim.core.catalogue import SWEEP
from streamsim.core.errors import ConfigError
from streamsim.files.atomic import write_text_atomic
from streamsim.files.folders import check_output
from streamsim.files.reading import read_text
from streamsim.running.executors import check_executor, make_executor
from streamsim.running.grid import cell_id, grid_cells
from streamsim.running.jobs import Job, run_job, warm_up
from streamsim.scenario.config import load_scenario, parse_value

METRICS = SWEEP  # results.csv's metric columns, from the metric catalogue
MAX_CELLS = 100_000  # grid cells × seeds: more is a typo (or a bomb), not a sweep
MAX_META_BYTES = 64 << 20  # sweep.json: the grid and one resolved scenario
MAX_RESULTS_BYTES = 4 << 30  # results.csv: one short line per cell and seed


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["key.path=v1,v2", ...]`` → ``{"key.path": [v1, v2]}`` with TOML-typed values.

    An empty value (``duration=1,,2``) is refused, not skipped: it is a typo more often than not.
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(f"--grid {item!r}: expected key.path=v1,v2,...")
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice")
        texts = [v.strip() for v in split_values(values)]
        if not any(texts):
            raise ConfigError(f"--grid {item!r}: no values after '='")
        if not all(texts):
            raise ConfigError(f"--grid {item!r}: an empty value between commas (write each value once, "
                              "and quote an empty string as \"\")")
        grid[key] = [parse_value(v) for v in texts]
        if len(grid[key]) > MAX_CELLS:
            raise ConfigError(f"--grid {key}: {len(grid[key]):,} values, more than the limit of {MAX_CELLS:,} cells")
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


class ResultsFile:
    """``results.csv`` with a fixed header, appended a whole line at a time.

    :meth:`finished` reads and checks it without writing anything; :meth:`open` creates it, or
    drops the torn last line a kill mid-append leaves.
    """

    def __init__(self, path: Path, param_keys: list[str]) -> None:
        self.path = path
        self.columns = ["cell", "seed", *(f"param:{k}" for k in param_keys), *METRICS, "attackers"]

    def _whole_lines(self) -> str:
        try:
            text = read_text(self.path, MAX_RESULTS_BYTES)
        except (OSError, ValueError) as e:  # a FIFO, a folder, not UTF-8...
            raise ConfigError(f"{self.path}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
        return text[: text.rfind("\n") + 1]  # a torn last line is a kill mid-append: not a row

    def finished(self, cells: set[str], seeds: list[int]) -> set[tuple[str, int]]:
        """The (cell, seed) pairs with a row; :class:`ConfigError` naming the file and line if a row is
        damaged, repeated, or of a cell or seed this sweep does not have."""
        if not self.path.exists() and not self.path.is_symlink():
            return set()
        text = self._whole_lines()
        header, _, body = text.partition("\n")
        if header.split(",") != self.columns:
            raise ConfigError(f"{self.path}: its columns do not match this sweep's grid; use another --out")
        done: set[tuple[str, int]] = set()
        try:
            rows = list(csv.reader(io.StringIO(body)))
        except csv.Error as e:
            raise ConfigError(f"{self.path}: not CSV ({e})") from None
        for line, row in enumerate(rows, start=2):
            if len(row) != len(self.columns):
                raise ConfigError(f"{self.path}: line {line} has {len(row)} fields, not {len(self.columns)}")
            cell, seed = row[0], row[1]
            if cell not in cells or not seed.isdigit() or int(seed) not in seeds:
                raise ConfigError(f"{self.path}: line {line} is no cell and seed of this sweep ({cell[:20]!r}, "
                                  f"seed {seed[:20]!r})")
            if (cell, int(seed)) in done:
                raise ConfigError(f"{self.path}: line {line} repeats cell {cell} seed {seed}; remove the extra row")
            done.add((cell, int(seed)))
        return done

    def open(self) -> None:
        """Create the file with its header, or cut a torn last line off it."""
        if not self.path.exists():
            write_text_atomic(self.path, ",".join(self.columns) + "\n")
            return
        text = read_text(self.path, MAX_RESULTS_BYTES)
        if not text.endswith("\n"):
            write_text_atomic(self.path, text[: text.rfind("\n") + 1])

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


@dataclass(frozen=True)
class SweepSpec:
    """What ``sweep.json`` holds: enough to resume a sweep exactly as it was started."""

    grid: dict[str, list[Any]]
    seeds: list[int]
    overrides: tuple[str, ...]
    scenario: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps({"grid": self.grid, "seeds": self.seeds, "overrides": list(self.overrides),
                           "scenario": self.scenario, "scenario_sha256": scenario_sha256(self.scenario)}, indent=2)

    @classmethod
    def read(cls, path: Path) -> SweepSpec:
        """``sweep.json``, checked: :class:`ConfigError` naming it when it is damaged or its scenario was edited."""
        try:
            meta = json.loads(read_text(path, MAX_META_BYTES))
        except (OSError, ValueError, RecursionError) as e:
            raise ConfigError(f"{path}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
        if not isinstance(meta, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        grid, seeds, overrides, scenario = (meta.get(k) for k in ("grid", "seeds", "overrides", "scenario"))
        if not (isinstance(grid, dict) and grid and all(isinstance(v, list) and v for v in grid.values())):
            raise ConfigError(f"{path}: grid is not a table of non-empty value lists")
        if not (isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)):
            raise ConfigError(f"{path}: seeds is not a list of integers")
        if not (isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)):
            raise ConfigError(f"{path}: overrides is not a list of strings")
        if not isinstance(scenario, dict):
            raise ConfigError(f"{path}: scenario is not a table")
        if meta.get("scenario_sha256") != scenario_sha256(scenario):
            raise ConfigError(f"{path}: its scenario changed since the sweep started (or has no scenario_sha256); "
                              "resume continues only the scenario it was started with")
        return cls(grid, seeds, tuple(overrides), scenario)


def scenario_sha256(scenario: dict[str, Any]) -> str:
    """sha256 of a scenario's canonical JSON, stored in ``sweep.json`` to notice an edit."""
    return hashlib.sha256(json.dumps(scenario, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def plan(scenario: str | Path, grid: dict[str, list[Any]], seeds: list[int], out: Path,
         overrides: tuple[str, ...], resume: bool) -> tuple[list[Job], ResultsFile, int]:
    """Check everything about a sweep — the folder, the grid, the seeds, what a resumed sweep holds,
    every cell as ``run`` will check it — and only then create the folder; returns what is left to run.

    Nothing is written when a check fails: a typo fails before hours of work, and leaves no folder.
    """
    out = Path(out)
    meta_path = out / "sweep.json"
    check_output(out, fresh=False, what="sweep --out")
    if resume and not meta_path.is_file() and grid and seeds and not _holds_anything(out):
        resume = False  # killed before it wrote anything: resuming it is starting it
    if resume:
        if not meta_path.exists():
            raise ConfigError(f"--resume: {out} holds no sweep.json")
        spec = SweepSpec.read(meta_path)
        grid, seeds, overrides = grid or spec.grid, seeds or spec.seeds, overrides or spec.overrides
        if spec.grid != grid or spec.seeds != seeds or spec.overrides != tuple(overrides):
            raise ConfigError(f"--resume: the grid, seeds or overrides differ from {meta_path}")
        base = spec.scenario
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
    count = math.prod(len(v) for v in grid.values()) * len(seeds)
    if count > MAX_CELLS:
        raise ConfigError(f"the grid and seeds make {count:,} cells, more than the limit of {MAX_CELLS:,}")
    runs = out / "runs"
    if runs.is_symlink() or (runs.exists() and not runs.is_dir()):
        raise ConfigError(f"{runs}: not a folder (a symlink or a file); a sweep writes and deletes only inside "
                          "its own runs/ folder")
    results = ResultsFile(out / "results.csv", list(grid))
    finished = results.finished({cell_id(p) for p in grid_cells(grid)}, seeds) if resume else set()
    from streamsim.running import preflight  # torch: imported only once the cheap checks have passed

    for params in grid_cells(grid):  # each cell checked as `run` will check it: a typo fails before hours of work
        preflight.check(load_scenario(base, overrides, params), cache=False)
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_text_atomic(meta_path, SweepSpec(grid, seeds, tuple(overrides), base).to_json())
    results.open()
    jobs = [
        Job(scenario=base, params=params, seed=seed, out=str(runs / f"{cell_id(params)}-seed{seed}"),
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
    """Run (or continue) a sweep; returns the final counts. Failures are logged, not fatal.

    Every check (the executor, ``jobs``, the folder, every cell) passes before any worker or Ray
    starts, and at most one worker starts per cell left to run.
    """
    check_executor(executor, jobs, address)
    todo, results, total = plan(scenario, grid, seeds, Path(out), tuple(overrides), resume)
    progress = SweepProgress(total=total, skipped=total - len(todo), started=time.perf_counter())
    if on_progress:
        on_progress(progress)
    if not todo:
        return progress
    failures = Path(out) / "failures.jsonl"
    with make_executor(executor, min(jobs, len(todo)), address, run_job, warm_up) as pool:
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
