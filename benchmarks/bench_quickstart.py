"""The quickstart's cost: cold (empty artifact cache) and warm run time, start-up, and peak memory.

Each measurement is a fresh interpreter running ``streamsim.run("quickstart", out=None)``, as
``make quickstart`` does minus the terminal: first with an empty artifact cache (the De-Pois fast
fit and the learner's pretraining run), then again with the cache that run filled. The child
reports its own numbers: seconds to import streamsim, seconds in ``run`` (wall and CPU), and its
peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``). Targets on 2 idle cores:
cold run ≤ 45 s, warm run ≤ 5 s, peak RSS ≤ 1.5 GiB.

    python benchmarks/bench_quickstart.py [--repeat-warm 3] [--json benchmarks/results/bench_quickstart.json]

Wall times depend on how busy the machine is (the load average is printed); the CPU seconds much
less so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
import streamsim
t1 = time.perf_counter(); c1 = time.process_time()
result = streamsim.run("quickstart", out=None)
t2 = time.perf_counter(); c2 = time.process_time()
print(json.dumps({"import_s": t1 - t0, "run_s": t2 - t1, "run_cpu_s": c2 - c1,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "ca": result.summary["ca"], "final_accuracy": result.summary["final_accuracy"]}))
"""
TARGETS = {"cold_run_s": 45.0, "warm_run_s": 5.0, "peak_rss_mib": 1.5 * 1024}


def child(cache: Path) -> dict[str, float]:
    env = {**os.environ, "STREAMSIM_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat-warm", type=int, default=3, help="warm runs (the median is reported)")
    parser.add_argument("--json", default=None, help="also write the measurements here")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-quickstart-") as tmp:
        cold = child(Path(tmp))
        warm = [child(Path(tmp)) for _ in range(args.repeat_warm)]
    load_after = os.getloadavg()[0]
    assert all(w["ca"] == cold["ca"] and w["final_accuracy"] == cold["final_accuracy"] for w in warm), "warm != cold"
    med = {k: statistics.median(w[k] for w in warm) for k in ("import_s", "run_s", "run_cpu_s", "peak_rss_mib")}
    peak = max(cold["peak_rss_mib"], *(w["peak_rss_mib"] for w in warm))
    print(f"quickstart, {os.cpu_count()} cores, load average {load_before:.1f} before, {load_after:.1f} after")
    print(f"  cold: run {cold['run_s']:6.1f} s wall, {cold['run_cpu_s']:6.1f} s CPU (target <= {TARGETS['cold_run_s']:.0f} s); "
          f"import {cold['import_s']:.2f} s; peak RSS {cold['peak_rss_mib']:.0f} MiB")
    print(f"  warm: run {med['run_s']:6.1f} s wall, {med['run_cpu_s']:6.1f} s CPU (target <= {TARGETS['warm_run_s']:.0f} s; "
          f"median of {args.repeat_warm}); import {med['import_s']:.2f} s; peak RSS {med['peak_rss_mib']:.0f} MiB")
    print(f"  peak RSS over all runs {peak:.0f} MiB (target <= {TARGETS['peak_rss_mib']:.0f} MiB)")
    if args.json:
        Path(args.json).write_text(json.dumps({"cold": cold, "warm": warm, "load_average": [load_before, load_after],
                                               "command": "python benchmarks/bench_quickstart.py"}, indent=2) + "\n")


if __name__ == "__main__":
    main()
