"""The three tabular scenarios over seeds: the numbers of the docs page's "Tabular and synthetic streams".

Runs ``scenarios/phishing.toml``, ``shuttle-adaptive.toml`` and ``sea-drift.toml`` for each seed
(no run directories; the artifact cache is used), and writes per-seed numbers and their mean ± std
to ``experiments/results/tabular-scenarios.json``. For ``sea-drift`` it also splits the clean
stream's false-rejection rate and prequential error at the stream's own concept change, and says
which ADWIN alarms came during the attack window and which after the change.

Run: ``python experiments/tabular_scenarios.py [--seeds 0,1,2] [--scenarios phishing,sea-drift]``
(about a minute per run on a busy 2-core machine, De-Pois fits included).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

import streamsim

OUT = Path(__file__).resolve().parent / "results" / "tabular-scenarios.json"
SCENARIOS = ("phishing", "shuttle-adaptive", "sea-drift")
KEYS = ("ca", "da", "clean_frr", "precision", "f1", "final_accuracy", "baseline_final_accuracy")


def _rate(events: Any, lo: float, hi: float, what: str) -> float:
    clean = events[(events["kind"] == "clean") & (events["time"] >= lo) & (events["time"] < hi)]
    n = int(clean["n"].sum())
    return round(float(clean[what].sum()) / n, 4) if n else float("nan")


def one(name: str, seed: int) -> dict[str, Any]:
    result = streamsim.run(name, seed=seed, out=None)
    s = result.summary
    row: dict[str, Any] = {k: round(float(s[k]), 4) for k in KEYS}
    row["drift_alarm_times"] = s["drift_alarm_times"]
    row["baseline_drift_alarm_times"] = s.get("baseline_drift_alarm_times", [])
    row["wall_time_s"] = s["wall_time_s"]
    if name == "sea-drift":
        sc = result.scenario
        change = s["concept_change_times"][0]
        attacker = sc.attackers[0]
        start, stop = attacker.start, attacker.stop if attacker.stop is not None else sc.duration
        row["concept_change_time"] = change
        row["attack_window"] = [start, stop]
        ev = result.events
        for label, (lo, hi) in {"before_attack": (0, start), "during_attack": (start, stop),
                                "after_attack_before_change": (stop, change),
                                "after_change": (change, sc.duration + 1)}.items():
            row[f"clean_frr_{label}"] = _rate(ev, lo, hi, "rejected_clean")
            row[f"clean_error_{label}"] = _rate(ev, lo, hi, "prequential_errors")
        row["alarms_in_attack_window"] = [t for t in s["drift_alarm_times"] if start <= t < stop]
        row["alarms_after_change"] = [t for t in s["drift_alarm_times"] if t >= change]
        row["baseline_alarms_after_change"] = [t for t in row["baseline_drift_alarm_times"] if t >= change]
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in rows[0].items():
        if isinstance(value, float) and key != "wall_time_s":
            values = [r[key] for r in rows]
            out[key] = {"mean": round(statistics.fmean(values), 4),
                        "std": round(statistics.pstdev(values), 4) if len(values) > 1 else 0.0}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    found = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for name in args.scenarios.split(","):
        rows = []
        for seed in seeds:
            rows.append({"seed": seed, **one(name, seed)})
            print(name, rows[-1], flush=True)
        found[name] = {"seeds": seeds, "runs": rows, "mean_std": summarise(rows)}
        args.out.write_text(json.dumps(found, indent=1) + "\n")  # after each scenario: partial results survive
    print(json.dumps({k: v["mean_std"] for k, v in found.items()}, indent=1))
    if all(name in found for name in SCENARIOS):
        print("\n".join(readme_rows(args.out)))


def _ms(entry: dict[str, Any], key: str, digits: int = 2) -> str:
    m = entry["mean_std"][key]
    return f"{m['mean']:.{digits}f} ± {m['std']:.{digits}f}"


def readme_rows(path: Path = OUT) -> list[str]:
    """The docs page's table and sea-drift sentence, from the committed results (tests/test_pages.py checks them)."""
    found = json.loads(path.read_text())
    rows = ["| scenario | ca | da | clean FRR | F1 | accuracy attacked / baseline |", "| --- | --- | --- | --- | --- | --- |"]
    for name in SCENARIOS:
        e = found[name]
        rows.append(f"| `{name}` | {_ms(e, 'ca')} | {_ms(e, 'da')} | {_ms(e, 'clean_frr')} | {_ms(e, 'f1')} | "
                    f"{_ms(e, 'final_accuracy')} / {_ms(e, 'baseline_final_accuracy')} |")
    sea = found["sea-drift"]
    runs = sea["runs"]
    during = sum(bool(r["alarms_in_attack_window"]) for r in runs)
    after = sum(bool(r["alarms_after_change"]) for r in runs)
    base_after = sum(bool(r["baseline_alarms_after_change"]) for r in runs)
    rows.append(f"clean FRR {_ms(sea, 'clean_frr_before_attack')} before the attack, "
                f"{_ms(sea, 'clean_frr_after_attack_before_change')} after it and before the change, "
                f"{_ms(sea, 'clean_frr_after_change')} after the change; clean prequential error "
                f"{_ms(sea, 'clean_error_after_attack_before_change')} → {_ms(sea, 'clean_error_after_change')}; "
                f"ADWIN alarms in the attack window in {during} of {len(runs)} seeds, after the change in {after} "
                f"of {len(runs)} (baseline: {base_after} of {len(runs)})")
    return rows


if __name__ == "__main__":
    main()
