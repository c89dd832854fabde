"""Start-up time of the command line: ``streamsim --help`` and ``streamsim list``.

Targets: ``--help`` under 0.5 s and ``list`` under 1 s of wall time. Each command runs in a fresh
interpreter, ``--repeat`` times, and the median is compared with a reference measured in the same
run — ``python -c pass``, the interpreter's own start-up — and with ``python -c "import torch"``,
what every command paid before torch was imported lazily. Ratios travel between machines better
than seconds do; the seconds are printed too.

Run: ``python benchmarks/bench_startup.py [--repeat 7]`` (results: ``benchmarks/results/bench_startup.txt``)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

TARGETS = {"--help": 0.5, "list": 1.0}


def wall(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} when started")
    python = wall([sys.executable, "-c", "pass"], repeat)
    torch_import = wall([sys.executable, "-c", "import torch"], repeat)
    print(f"reference: python -c pass {python:.3f} s; python -c 'import torch' {torch_import:.3f} s (median of {repeat})")
    for command, target in TARGETS.items():
        seconds = wall([sys.executable, "-m", "streamsim", *command.split()], repeat)
        verdict = "met" if seconds < target else "NOT met"
        print(f"streamsim {command}: {seconds:.3f} s = {seconds / python:.1f}x python start-up, "
              f"{seconds / torch_import:.2f}x an import of torch; target < {target} s: {verdict}")


if __name__ == "__main__":
    main()
