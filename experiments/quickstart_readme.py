"""The quickstart's numbers that the README quotes, regenerated from one command.

    python experiments/quickstart_readme.py     # writes experiments/results/quickstart-seed0.json

Runs ``scenarios/quickstart.toml`` (seed 0, its default ``threads = 1``) with no run directory and
keeps the summary's metrics; ``tests/test_readme.py`` checks the README quotes exactly these.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import streamsim

OUT = Path(__file__).resolve().parent / "results" / "quickstart-seed0.json"
KEYS = ("ca", "da", "clean_frr", "precision", "recall", "f1", "final_accuracy", "baseline_final_accuracy",
        "accuracy_drop", "poisons", "accepted_poisons")


def main() -> None:
    started = time.perf_counter()
    result = streamsim.run("quickstart", out=None)
    summary = result.summary
    record = {
        "command": "python experiments/quickstart_readme.py",
        "scenario": "quickstart", "seed": summary["seed"], "threads": result.scenario.threads,
        "metrics": {k: summary[k] for k in KEYS},
        "versions": summary["versions"], "wall_time_s": round(time.perf_counter() - started, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    json.dump(record["metrics"], sys.stdout, indent=2)
    print(f"\nwritten to {OUT}")


if __name__ == "__main__":
    main()
