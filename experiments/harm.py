"""Poisons that hurt: the accumulative, backdoor and targeted attacks on the quickstart's stream, undefended.

Each cell runs a scenario of ``scenarios/`` with a few settings changed, over seeds 0-2, and keeps
the harm numbers of its ``summary.json``. Results go to ``experiments/results/harm.json`` one cell at
a time (a stopped run resumes where it was); ``--print`` only prints the docs tables from it.

    python experiments/harm.py            # every cell over seeds 0-2: about 10 minutes on 2 cores
    python experiments/harm.py --seeds 0,1,2,3,4 --cells "accumulative + trigger;trigger alone;..."  # more seeds
    python experiments/harm.py --print
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "harm.json"
SEEDS = (0, 1, 2)
SGD = {"learner.params.optim": "sgd", "learner.params.lr": 0.05}
# the update regimes of experiments/update_regimes.py: when the target no longer learns each batch on its own
BUFFERED = {"learner.update": {"policy": "buffered", "every": 256, "steps": 4, "batch_size": 64}}
REPLAY = {"learner.update": {"policy": "replay", "capacity": 1024, "mix": 0.5}}
ALONE = {"attackers.0.attack.params.accumulate": False}
FLIPS = {"name": "label-flip", "params": {"mode": "permutation"}}
# cell -> (scenario, values): the accumulative cells share one source (16 poisons per unit from t = 10, a
# 64-digit trigger at 59), label flips get that source's poison budget
CELLS: dict[str, tuple[str, dict[str, Any]]] = {
    "accumulative + trigger": ("accumulative", {}),
    "trigger alone": ("accumulative", {"attackers.0.attack.params.accumulate": False}),
    "label flips, same budget": ("accumulative", {"attackers.0.attack": FLIPS, "attackers.0.budget": 848}),
    "accumulative + trigger, SGD learner": ("accumulative", SGD),
    "trigger alone, SGD learner": ("accumulative", {**SGD, "attackers.0.attack.params.accumulate": False}),
    "label flips, same budget, SGD learner": ("accumulative", {**SGD, "attackers.0.attack": FLIPS,
                                                               "attackers.0.budget": 848}),
    "accumulative + trigger, buffered updates": ("accumulative", BUFFERED),
    "trigger alone, buffered updates": ("accumulative", {**BUFFERED, **ALONE}),
    "accumulative + trigger, replay updates": ("accumulative", REPLAY),
    "trigger alone, replay updates": ("accumulative", {**REPLAY, **ALONE}),
    "backdoor, dirty label": ("backdoor", {}),
    "backdoor, clean label": ("backdoor", {"attackers.0.attack.params.label": "clean"}),
    "targeted (4 → 9)": ("targeted", {}),
}
KEEP = ("final_accuracy", "baseline_final_accuracy", "accuracy_drop", "asr", "baseline_asr", "targeted_success",
        "baseline_targeted_success", "worst_class", "worst_class_drop", "poisons", "accepted_poisons", "screened")


def run_cell(scenario: str, values: dict[str, Any], seed: int) -> dict[str, Any]:
    from streamsim import run

    summary = run(scenario, out=None, seed=seed, values=values).summary
    return {k: summary.get(k) for k in KEEP}


def save(path: Path, record: dict[str, Any]) -> None:
    """Replace the results file atomically: a kill leaves the old one or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _mean(values: list[float | None]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _std(values: list[float | None]) -> float:
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return math.nan
    m = _mean(vals)
    return math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def _cell(runs: dict[str, dict[str, Any]], key: str) -> str:
    values = [r.get(key) for r in runs.values()]
    if all(v is None for v in values):
        return "–"
    return f"{_mean(values):.3f} ± {_std(values):.3f}"


def table(path: Path = RESULTS) -> list[str]:
    """The docs page's harm table: mean ± std over the seeds of each cell."""
    record = json.loads(path.read_text())
    lines = ["| attack | seeds | poisons | accuracy drop | worst class drop | ASR (baseline) | "
             "targeted success (baseline) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in CELLS:
        runs = record["cells"].get(name, {})
        if not runs:
            continue
        poisons = _mean([r["poisons"] for r in runs.values()])

        def paired(key: str, runs: dict[str, dict[str, Any]] = runs) -> str:
            main = _cell(runs, key)
            return main if main == "–" else f"{main} ({_mean([r.get('baseline_' + key) for r in runs.values()]):.3f})"

        seeds = ", ".join(sorted(runs, key=int))
        lines.append(f"| {name} | {seeds} | {poisons:.0f} | {_cell(runs, 'accuracy_drop')} | {_cell(runs, 'worst_class_drop')} | "
                     f"{paired('asr')} | {paired('targeted_success')} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    p.add_argument("--cells", default=";".join(CELLS), help="cell names separated by semicolons")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--print", action="store_true", help="only print the docs table from --out")
    args = p.parse_args()
    if args.print:
        print("\n".join(table(args.out)))
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    record = json.loads(args.out.read_text()) if args.out.exists() else {"seeds": seeds, "cells": {}}
    for name in args.cells.split(";"):
        scenario, values = CELLS[name]
        for seed in seeds:
            if str(seed) in record["cells"].get(name, {}):
                continue
            record["cells"].setdefault(name, {})[str(seed)] = run_cell(scenario, values, seed)
            record["seeds"] = sorted({*record["seeds"], seed})
            save(args.out, record)
            print(name, seed, record["cells"][name][str(seed)], flush=True)
    print("\n".join(table(args.out)))


if __name__ == "__main__":
    main()
