"""Sweep throughput: the same small grid with the local pool (1 and 2 workers) and Ray (2 CPUs).

Prints cells/s and speedups. Targets on a 2-core machine: local 2 workers ≥ 1.8× local 1 worker;
Ray within 10 % of the local pool at the same width. Worker start-up (spawning, importing torch)
is included, as a user would pay it; a warm-up sweep fills the artifact cache first so that every
variant does the same work.

Run: ``python benchmarks/bench_sweep.py [--cells 8]`` (needs ``pip install '.[ray]'`` for Ray).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import tomli_w

from streamsim.sweep import run_sweep

SCENARIO = {
    "name": "bench-sweep", "seed": 0, "duration": 150.0, "eval_every": 50.0, "baseline": False,
    "data": {"dataset": "mnist-5k", "eval_size": 500},
    "learner": {"name": "small-cnn", "params": {"pretrain_epochs": 1}},
    "defense": {"name": "none"},
    "clean": [{"name": "clean", "batch_size": 64}],
    "attackers": [{"name": "flip", "batch_size": 64, "attack": {"name": "label-flip"}}],
}


def timed(path: Path, cells: int, jobs: int, executor: str, root: Path) -> float:
    out = root / f"{executor}-{jobs}"
    shutil.rmtree(out, ignore_errors=True)
    grid = {"attackers.0.batch_size": [16 + 8 * i for i in range(cells)]}
    start = time.perf_counter()
    progress = run_sweep(path, grid, [0], out, jobs=jobs, executor=executor)
    elapsed = time.perf_counter() - start
    assert progress.done == cells and progress.failed == 0, progress
    return cells / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    path = root / "scenario.toml"
    path.write_text(tomli_w.dumps(SCENARIO))
    run_sweep(path, {"attackers.0.batch_size": [8]}, [0], root / "warmup")  # fill the cache
    one = timed(path, args.cells, 1, "local", root)
    two = timed(path, args.cells, 2, "local", root)
    print(f"local, 1 worker : {one:.3f} cells/s")
    print(f"local, 2 workers: {two:.3f} cells/s  speedup {two / one:.2f}x (target >= 1.8x)")
    if not args.no_ray:
        ray = timed(path, args.cells, 2, "ray", root)
        print(f"ray, 2 CPUs     : {ray:.3f} cells/s  ratio to local 2 workers {ray / two:.2f} (target >= 0.9)")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
