"""Sweep throughput per core: N workers × T threads against one worker with the same T threads.

The same small grid runs three ways in one process: the local pool with 1 worker, the local pool
with ``--workers`` workers, and Ray with that many CPUs; every worker runs its cells with
``--threads`` torch threads (the scenario's ``threads``). Per-core efficiency is

    (cells/s with N workers) / (N × cells/s with 1 worker)      goal ≥ 0.9

A warm-up sweep fills the artifact cache first, so that every variant does the same work. Three
measures of it are printed:

* **whole sweep** — wall time from the call to the last row, worker start-up (spawning, importing
  torch) included, paid once per sweep (the pool persists across cells);
* **steady state** — wall time between the N-th and the last finished cell, start-up excluded;
* **CPU per cell** (local pool only) — the workers' CPU seconds per cell; N workers that slow each
  other down (memory bandwidth, caches) need more CPU per cell. Unlike wall time it does not
  depend on how busy the rest of the machine is.

Run: ``python benchmarks/bench_sweep.py [--cells 8] [--workers 2] [--threads 1] [--no-ray]``
(Ray needs ``pip install '.[ray]'``). The machine's load average is printed with the results.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import tomli_w

from streamsim.running.sweep import SweepProgress, run_sweep

SCENARIO = {
    "name": "bench-sweep", "seed": 0, "duration": 150.0, "eval_every": 50.0, "baseline": False,
    "data": {"dataset": "mnist-5k", "eval_size": 500},
    "learner": {"name": "small-cnn", "params": {"pretrain_epochs": 1}},
    "defense": {"name": "none"},
    "clean": [{"name": "clean", "batch_size": 64}],
    "attackers": [{"name": "flip", "batch_size": 64, "attack": {"name": "label-flip"}}],
}


def timed(path: Path, cells: int, jobs: int, executor: str, root: Path) -> dict[str, float]:
    """Cells/s over the whole sweep and in steady state, and the workers' CPU seconds per cell."""
    out = root / f"{executor}-{jobs}"
    shutil.rmtree(out, ignore_errors=True)
    grid = {"attackers.0.batch_size": [16 + 8 * i for i in range(cells)]}
    finished: list[float] = []

    def seen(p: SweepProgress) -> None:
        finished.extend([time.perf_counter()] * (p.done + p.failed - len(finished)))

    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    progress = run_sweep(path, grid, [0], out, jobs=jobs, executor=executor, on_progress=seen)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # pool workers have exited: their time is counted
    assert progress.done == cells and progress.failed == 0, progress
    steady = (cells - jobs) / (finished[-1] - finished[jobs - 1])
    child_cpu = (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
    return {"whole": cells / elapsed, "steady": steady, "cpu_per_cell": child_cpu / cells}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (the scenario's threads)")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    if args.cells <= args.workers:
        parser.error("--cells must exceed --workers (steady state is measured after the first round)")
    root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    path = root / "scenario.toml"
    path.write_text(tomli_w.dumps({**SCENARIO, "threads": args.threads}))
    load_before = os.getloadavg()[0]
    run_sweep(path, {"attackers.0.batch_size": [8]}, [0], root / "warmup")  # fill the cache
    n, t = args.workers, args.threads
    one = timed(path, args.cells, 1, "local", root)
    many = timed(path, args.cells, n, "local", root)
    ray = None if args.no_ray else timed(path, args.cells, n, "ray", root)
    load_after = os.getloadavg()[0]
    print(f"{args.cells} cells, {t} torch thread(s) per worker, {os.cpu_count()} cores; "
          f"load average {load_before:.1f} before, {load_after:.1f} after")
    print(f"{'':24} {'whole sweep':>13} {'steady state':>13} {'CPU s/cell':>11}")
    print(f"{'local, 1 worker':24} {one['whole']:9.3f} c/s {one['steady']:9.3f} c/s {one['cpu_per_cell']:11.2f}")
    rows = [(f"local, {n} workers", many)] + ([(f"ray, {n} CPUs", ray)] if ray else [])
    for name, r in rows:
        cpu = f"{r['cpu_per_cell']:11.2f}" if name.startswith("local") else f"{'n/a':>11}"
        print(f"{name:24} {r['whole']:9.3f} c/s {r['steady']:9.3f} c/s {cpu}")
    print(f"per-core efficiency ({n} workers x {t} thread(s) vs 1 worker x {t}; goal >= 0.9):")
    for name, r in rows:
        line = (f"  {name:22} whole sweep {r['whole'] / (n * one['whole']):.2f}, "
                f"steady state {r['steady'] / (n * one['steady']):.2f}")
        if name.startswith("local"):
            line += f", CPU per cell {one['cpu_per_cell'] / r['cpu_per_cell']:.2f}"
        print(line)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
