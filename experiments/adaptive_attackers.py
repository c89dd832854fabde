"""Online adaptive attackers against De-Pois, compared on one stream and one budget, over seeds.

Every row runs ``scenarios/adaptive-verdicts.toml`` (the quickstart's stream: De-Pois, fast preset,
guarding a small CNN on mnist-5k; an attacker source from t = 10, 16 samples per Poisson arrival,
5,000 queries) with only the attack swapped:

- ``label-flip``: permutation label flips, blind;
- ``fgsm-bb eps=E``: the paper's non-adaptive black-box attack, composed critic→classifier FGSM
  through shadow models distilled from queried posteriors and critic scores, fixed ``eps``;
- ``fgsm-bb classifier eps=0.5``: the same, classifier stage only — in single runs the strongest
  fixed choice among the adaptive attacker's arms, so the bar an adaptive policy has to reach;
- ``adaptive verdicts``: verdicts two time units late, 5 % flipped;
- ``adaptive effects``: no verdicts; predicted labels only (``labels``) or probabilities (``proba``);
- ``adaptive effects (…)`` with active probing (:mod:`attacks.adaptive.probing`): groups of 1 or 4
  (the model changed at all?), the bandit choosing between passive batches and groups of 1,
  label-inconsistent canaries, boundary probes — and the passive attacker against a target that
  takes 3 Adam steps per batch (how hard the target learns).

The no-attack row is the baseline every attacked run is compared with (same clean stream).
Reported per row, mean ± std over seeds: final accuracy, accuracy drop against the baseline, da
over the whole run and over the last window (``metrics.window`` attacker batches), ca, and for
the adaptive attackers the balanced accuracy of their inferred verdicts (0.5 = guessing) and of
their shadow critic's forecasts (its agreement with the real critic).

    python experiments/adaptive_attackers.py [--seeds 0,1,2] [--rows "NAME;..."] [--json out.json]

Cold, each seed fits De-Pois once (minutes); the fits are cached, and each run then takes about
half a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import streamsim
from streamsim.files.atomic import write_text_atomic

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "adaptive-verdicts.toml"
ATTACKER = "attackers.0"
ROWS: dict[str, dict[str, Any]] = {
    "label-flip": {f"{ATTACKER}.attack": {"name": "label-flip", "params": {"mode": "permutation"}}},
    "fgsm-bb eps=0.3": {f"{ATTACKER}.attack": {"name": "fgsm", "params": {
        "eps": 0.3, "mode": "critic-classifier", "knowledge": "posteriors"}}},
    "fgsm-bb eps=0.5": {f"{ATTACKER}.attack": {"name": "fgsm", "params": {
        "eps": 0.5, "mode": "critic-classifier", "knowledge": "posteriors"}}},
    "fgsm-bb classifier eps=0.5": {f"{ATTACKER}.attack": {"name": "fgsm", "params": {
        "eps": 0.5, "mode": "classifier", "knowledge": "posteriors"}}},
    "adaptive verdicts": {},
    "adaptive effects (labels)": {f"{ATTACKER}.attack.params.knowledge": "effects",
                                  f"{ATTACKER}.feedback_delay": 0.0, f"{ATTACKER}.feedback_flip": 0.0},
    "adaptive effects (proba)": {f"{ATTACKER}.attack.params.knowledge": "effects", f"{ATTACKER}.effects_proba": True,
                                 f"{ATTACKER}.feedback_delay": 0.0, f"{ATTACKER}.feedback_flip": 0.0},
}
EFFECTS = {"labels": ROWS["adaptive effects (labels)"], "proba": ROWS["adaptive effects (proba)"]}
PARAMS = f"{ATTACKER}.attack.params"
PROBING: dict[str, tuple[str, dict[str, Any]]] = {  # active probing (attacks/adaptive/probing.py), by variant
    "labels, groups of 1": ("labels", {f"{PARAMS}.probes": ["group"], f"{PARAMS}.probing.group_size": 1}),
    "proba, groups of 1": ("proba", {f"{PARAMS}.probes": ["group"], f"{PARAMS}.probing.group_size": 1}),
    "proba, groups of 4": ("proba", {f"{PARAMS}.probes": ["group"], f"{PARAMS}.probing.group_size": 4}),
    "proba, bandit over none|group of 1": ("proba", {f"{PARAMS}.probes": ["none", "group"], f"{PARAMS}.probing.group_size": 1}),
    "proba, canaries": ("proba", {f"{PARAMS}.probes": ["canary"]}),
    "labels, boundary probes": ("labels", {f"{PARAMS}.probes": ["boundary"]}),
    "proba, target 3 steps per batch": ("proba", {"learner.params.steps_per_batch": 3}),
}
ROWS.update({f"adaptive effects ({name})": {**EFFECTS[variant], **extra} for name, (variant, extra) in PROBING.items()})
COLUMNS = ("final_accuracy", "accuracy_drop", "da", "da_window", "ca", "inferred_balanced_accuracy",
           "forecast_balanced_accuracy_window", "queries_used", "inferred_n", "inferred_poisons_balanced_accuracy",
           "inferred_probes_balanced_accuracy")


def one_run(row: str, seed: int) -> dict[str, float]:
    result = streamsim.run(SCENARIO, seed=seed, out=None, values=ROWS[row])
    s = result.summary
    attacker = next(iter(s["attackers"].values()))
    out = {k: s.get(k) for k in ("final_accuracy", "accuracy_drop", "da", "da_window", "ca",
                                 "baseline_final_accuracy")}
    out.update({k: attacker.get(k) for k in ("inferred_balanced_accuracy", "forecast_balanced_accuracy_window",
                                             "queries_used", "inferred_accuracy", "inferred_chance", "inferred_n",
                                             "inferred_poisons_balanced_accuracy", "inferred_probes_balanced_accuracy",
                                             "inferred_probes_n")})
    return {k: (math.nan if v is None else float(v)) for k, v in out.items()}


def mean_std(values: list[float]) -> str:
    v = np.array([x for x in values if not math.isnan(x)])
    if not len(v):
        return "–"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


LABELS = {"label-flip": "label-flip (permutation, blind)",
          "fgsm-bb eps=0.3": "black-box composed FGSM, eps 0.3 (non-adaptive)",
          "fgsm-bb eps=0.5": "black-box composed FGSM, eps 0.5 (non-adaptive)",
          "fgsm-bb classifier eps=0.5": "black-box classifier-only FGSM, eps 0.5 (best fixed arm in hindsight)",
          "adaptive verdicts": "adaptive, verdicts (2 late, 5 % flipped)"}
TABLE = ("final_accuracy", "accuracy_drop", "da", "da_window", "ca", "inferred_balanced_accuracy",
         "inferred_probes_balanced_accuracy", "forecast_balanced_accuracy_window", "inferred_n", "queries_used")
HELD_OUT = (3, 4, 5)  # the adaptive attacker's defaults were picked on seeds 0-2


def _cell(values: list[float], column: str) -> str:
    v = [x for x in values if not math.isnan(x)]
    if not v or (column in ("queries_used", "inferred_n") and not any(v)):
        return "–"
    if column in ("queries_used", "inferred_n"):
        a = np.array(v)
        return f"{a.mean():,.0f}" + (f" ± {a.std(ddof=1):,.0f}" if len(a) > 1 and a.std() > 0 else "")
    return mean_std(v)


def table(path: Path) -> list[str]:
    """The docs page's comparison tables, row for row, from a committed results file."""
    record = json.loads(path.read_text())
    runs, seeds = record["runs"], record["seeds"]
    lines = ["| attack | final acc. | acc. drop | da | da window | ca | inferred verdicts, balanced acc. "
             "| probes alone, balanced acc. | shadow vs real critic, balanced acc. (window) | points judged | queries |",
             "|---" * (len(TABLE) + 1) + "|"]
    for row, rs in runs.items():
        name = LABELS.get(row, row.replace("adaptive effects (", "adaptive, effects (").replace("proba", "probabilities"))
        name = name.replace("|", " or ")  # a table cell
        lines.append(f"| {name} | " + " | ".join(_cell([r.get(c, math.nan) for r in rs], c) for c in TABLE) + " |")
    held = [i for i, s in enumerate(seeds) if s in HELD_OUT]
    lines += ["", "| … − adaptive verdicts, paired by seed | da, all seeds | da window, all seeds "
              "| da, held-out seeds | da window, held-out |", "|---|---|---|---|---|"]
    verdicts = runs.get("adaptive verdicts")
    for row, rs in runs.items():
        if row == "adaptive verdicts" or verdicts is None or len(rs) != len(verdicts):
            continue  # (a row still running in a partial file)
        cells = []
        for column in ("da", "da_window"):
            d = np.array([r[column] - v[column] for r, v in zip(rs, verdicts, strict=True)])
            cells.append(f"{d.mean():+.3f} ± {d.std(ddof=1):.3f}")
        for column in ("da", "da_window"):
            d = np.array([rs[i][column] - verdicts[i][column] for i in held])
            cells.append(f"{d.mean():+.3f}" if len(d) else "–")
        lines.append(f"| {row.replace('|', ' or ')} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rows", default=";".join(ROWS), help="row names separated by ';'")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's numbers here")
    parser.add_argument("--table", type=Path, default=None, help="only print the docs page's tables from this results file")
    args = parser.parse_args()
    if args.table:
        print("\n".join(table(args.table)))
        return
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [r.strip() for r in args.rows.split(";")]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    runs: dict[str, list[dict[str, float]]] = {}
    for row in rows:
        for seed in seeds:
            started = time.perf_counter()
            runs.setdefault(row, []).append(one_run(row, seed))
            print(f"{row:28s} seed {seed}: {time.perf_counter() - started:5.1f} s "
                  f"da_window {runs[row][-1]['da_window']:.3f}", flush=True)
            if args.json:  # after every run, so an interrupted benchmark keeps what it measured
                write_text_atomic(args.json, json.dumps({"seeds": seeds, "runs": runs, "complete": False}, indent=2))
    baseline = [r["baseline_final_accuracy"] for r in next(iter(runs.values()))]  # one per seed, same in every row
    print(f"\n{len(seeds)} seeds ({args.seeds}); no attack (baseline) final accuracy: {mean_std(baseline)}\n")
    print("| attack | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for row, rs in runs.items():
        print(f"| {row} | " + " | ".join(mean_std([r[c] for r in rs]) for c in COLUMNS) + " |")
    if args.json:
        write_text_atomic(args.json, json.dumps({"seeds": seeds, "runs": runs, "complete": True}, indent=2))


if __name__ == "__main__":
    main()
