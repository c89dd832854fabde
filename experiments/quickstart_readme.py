"""The quickstart's numbers and figure that the README and the docs quote, regenerated from one command.

    python experiments/quickstart_readme.py
    # writes experiments/results/quickstart-seed0.json and docs/figures/quickstart-accuracy.png

Runs ``scenarios/quickstart.toml`` (seed 0, its default ``threads = 1``) into a temporary run
directory, keeps the summary's metrics, and copies the accuracy figure that ``streamsim report``
draws for that run; ``tests/test_readme.py`` and ``tests/test_pages.py`` check that they quote exactly these numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import streamsim

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "experiments" / "results" / "quickstart-seed0.json"
FIGURE = REPO / "docs" / "figures" / "quickstart-accuracy.png"
KEYS = ("ca", "da", "clean_frr", "precision", "recall", "f1", "final_accuracy", "baseline_final_accuracy",
        "accuracy_drop", "poisons", "accepted_poisons")


def rows(path: Path = OUT) -> list[str]:
    """The summary table's rows that the README and docs/getting-started.md show, as ``streamsim run`` labels them."""
    from streamsim.core.catalogue import CONSOLE, METRICS

    metrics = json.loads(path.read_text())["metrics"]
    return ["| metric | value |", "| --- | ---: |"] + [
        f"| {METRICS[key].label} | {METRICS[key].format(metrics[key])} |" for key in CONSOLE if key in metrics]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "quickstart"
        started = time.perf_counter()
        result = streamsim.run("quickstart", out=run_dir)
        wall = round(time.perf_counter() - started, 1)  # the run alone, not the report drawn below
        # the report through the command line, as a user would draw it
        subprocess.run([sys.executable, "-m", "streamsim", "report", str(run_dir)], check=True, cwd=REPO)
        FIGURE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / "figures" / "accuracy.png", FIGURE)
    summary = result.summary
    record = {
        "command": "python experiments/quickstart_readme.py",
        "scenario": "quickstart", "seed": summary["seed"], "threads": result.scenario.threads,
        "metrics": {k: summary[k] for k in KEYS},
        "versions": summary["versions"], "wall_time_s": wall,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    json.dump(record["metrics"], sys.stdout, indent=2)
    print(f"\nwritten to {OUT} and {FIGURE}")
    print("\n".join(rows()))


if __name__ == "__main__":
    main()
