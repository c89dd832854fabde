"""The adaptive comparison and the quickstart's label flips, re-measured under other update regimes.

Each row is a row of ``experiments/adaptive_attackers.py`` (``scenarios/adaptive-verdicts.toml`` with the
attack swapped) or the quickstart's label flips (``scenarios/quickstart.toml``), run with
``learner.update`` set to each regime (:mod:`streamsim.simulation.parts.updates`):

- ``per-batch``: today's target, one step on each accepted batch alone (rerun here beside the
  others, so that all three columns come from the same code, cache and machine);
- ``buffered``: accepted samples wait until 256 are buffered, then 4 steps on shuffled mini-batches
  of 64 (one pass over the buffer);
- ``replay``: every accepted batch learned mixed half-and-half with samples from a 1,024-sample
  reservoir of everything accepted before.

Every attacked run has its own no-attack baseline under the same regime.

    python experiments/update_regimes.py --seeds 0,1,2,3,4 --json experiments/results/update_regimes-seeds0-4.json
    python experiments/update_regimes.py --table experiments/results/update_regimes-seeds0-4.json   # the docs page's table
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

import streamsim
from streamsim.files.atomic import write_text_atomic

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("adaptive_attackers", HERE / "adaptive_attackers.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

POLICIES: dict[str, dict[str, Any]] = {
    "per-batch": {"policy": "per-batch"},
    "buffered": {"policy": "buffered", "every": 256, "steps": 4, "batch_size": 64},
    "replay": {"policy": "replay", "capacity": 1024, "mix": 0.5},
}
QUICKSTART = "quickstart label-flip"
ADAPTIVE = ("adaptive verdicts", "adaptive effects (labels)", "adaptive effects (proba)",
            "adaptive effects (labels, groups of 1)", "adaptive effects (proba, groups of 1)")
ROWS = (QUICKSTART, *ADAPTIVE)
KEYS = ("final_accuracy", "baseline_final_accuracy", "accuracy_drop", "da", "da_window", "ca",
        "inferred_balanced_accuracy", "model_updates")


def one_run(row: str, policy: str, seed: int) -> dict[str, float]:
    update = {"learner.update": POLICIES[policy]}
    if row == QUICKSTART:
        result = streamsim.run("quickstart", seed=seed, out=None, values=update)
    else:
        result = streamsim.run(bench.SCENARIO, seed=seed, out=None, values={**bench.ROWS[row], **update})
    s = result.summary
    attacker = next(iter(s["attackers"].values()), {})
    out = {k: s.get(k, attacker.get(k)) for k in KEYS}
    return {k: (math.nan if v is None else float(v)) for k, v in out.items()}


LABELS = {QUICKSTART: "label flips (quickstart)", "adaptive verdicts": "adaptive, verdicts (2 late, 5 % flipped)",
          "adaptive effects (labels)": "adaptive, effects (labels)", "adaptive effects (proba)": "adaptive, effects (probabilities)",
          "adaptive effects (labels, groups of 1)": "adaptive, effects (labels, groups of 1)",
          "adaptive effects (proba, groups of 1)": "adaptive, effects (probabilities, groups of 1)"}
TABLE = (("inferred_balanced_accuracy", "inferred verdicts, balanced acc."), ("da", "da"),
         ("accuracy_drop", "acc. drop"))


def table(path: Path) -> list[str]:
    """The docs page's side-by-side table, from a committed results file."""
    record = json.loads(path.read_text())
    runs, names = record["runs"], list(record["policies"])
    head = " | ".join(f"{label}, {p}" for _, label in TABLE for p in names)
    lines = [f"| attack | {head} |", "|---" * (1 + len(TABLE) * len(names)) + "|"]
    for row in ROWS:
        cells = [bench.mean_std([r[k] for r in runs[p].get(row, [])]) if runs[p].get(row) else "–"
                 for k, _ in TABLE for p in names]
        lines.append(f"| {LABELS[row]} | " + " | ".join(cells) + " |")
    lines += ["", "| regime | no-attack baseline, final acc. | model updates per run (quickstart) |", "|---|---|---|"]
    for p in names:
        rs = runs[p][QUICKSTART]
        lines.append(f"| {p} | {bench.mean_std([r['baseline_final_accuracy'] for r in rs])} | "
                     f"{bench._cell([r['model_updates'] for r in rs], 'queries_used')} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--rows", default=";".join(ROWS), help="row names separated by ';'")
    parser.add_argument("--json", type=Path, default=None, help="write every run's numbers here (and continue it)")
    parser.add_argument("--table", type=Path, default=None, help="only print the docs page's table from this results file")
    args = parser.parse_args()
    if args.table:
        print("\n".join(table(args.table)))
        return
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    policies = args.policies.split(",")
    rows = [r.strip() for r in args.rows.split(";")]
    record: dict[str, Any] = {"seeds": seeds, "policies": {p: POLICIES[p] for p in POLICIES}, "runs": {},
                              "complete": False}
    if args.json and args.json.exists():  # continue an interrupted measurement
        record = json.loads(args.json.read_text())
    for policy in policies:
        for row in rows:
            done = record["runs"].setdefault(policy, {})
            if len(done.get(row, [])) >= len(seeds):
                continue
            runs = done.setdefault(row, [])
            for seed in seeds[len(runs):]:
                started = time.perf_counter()
                runs.append(one_run(row, policy, seed))
                print(f"{policy:10s} {row:40s} seed {seed}: {time.perf_counter() - started:5.1f} s", flush=True)
                if args.json:
                    write_text_atomic(args.json, json.dumps(record, indent=2))
    record["complete"] = all(len(record["runs"].get(p, {}).get(r, [])) >= len(seeds) for p in POLICIES for r in ROWS)
    if args.json:
        write_text_atomic(args.json, json.dumps(record, indent=2))
    if record["complete"] and args.json:
        print("\n".join(table(args.json)))


if __name__ == "__main__":
    main()
