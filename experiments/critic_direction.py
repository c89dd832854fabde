"""Does the reference critic react to FGSM's direction, or only to its size? Random-sign noise as the control.

Under the reference profile (``scenarios/paper-reference-whitebox.toml``) with the reference
authors' own critic (``--reference-critic``, converted by ``tools/reference_critic.py``), the
attacker's FGSM poisons are replaced by the same budget in a random direction: every pixel moved
by exactly ±ε (``noise`` with ``kind = "sign"``), clipped to [−1, 1]. Its ca is set beside the
classifier-only FGSM cells already measured:

- at ε = 0.7 for each seed, against the ``reference critic`` rows of
  ``experiments/results/table1_reference.csv`` (white-box and black-box);
- over ε for seed 0, against ``experiments/results/paper-grid-reference/results.csv``;
- with the critic fed upright images (``--upright-seeds``, the ``channels_first`` bug fixed),
  against the ``reference critic upright`` rows.

    python experiments/critic_direction.py --reference-critic /tmp/reference-critic.safetensors
    python experiments/critic_direction.py --print     # the docs page's tables, from the committed CSV

Rows are appended to ``experiments/results/critic_direction.csv`` after every run (rows already
there are skipped). ``tests/test_pages.py`` checks that the docs page's tables are what ``--print``
prints.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "critic_direction.csv"
TABLE1 = RESULTS / "table1_reference.csv"
GRID = RESULTS / "paper-grid-reference" / "results.csv"
SCENARIO = "paper-reference-whitebox"
COLUMNS = ("seed", "eps", "input_layout", "ca", "clean_frr", "initial_accuracy", "wall_s")
LAYOUT_VARIANT = {"transposed": "reference critic", "upright": "reference critic upright"}
GRID_EPS = "0,0.1,0.2,0.3,0.4,0.45,0.5,0.6,0.7,0.8,0.9,1.0"


def one(seed: int, eps: float, layout: str, reference_critic: str) -> dict[str, Any]:
    import streamsim

    started = time.perf_counter()
    result = streamsim.run(SCENARIO, out=None, seed=seed, values={
        "defense.params.critic_weights": reference_critic, "defense.params.input_layout": layout,
        "attackers.0.attack": {"name": "noise", "params": {"kind": "sign", "scale": eps}}})
    s = result.summary
    return {"seed": seed, "eps": eps, "input_layout": layout, "ca": s["ca"], "clean_frr": s["clean_frr"],
            "initial_accuracy": s["initial_accuracy"], "wall_s": round(time.perf_counter() - started, 1)}


def _mean_std(c: pd.Series) -> str:
    return f"{c.mean():.3f} ± {c.std():.3f}"


def per_seed(d: pd.DataFrame, table1: pd.DataFrame, layout: str) -> list[str]:
    """At ε = 0.7, one row a seed: random sign beside classifier-only FGSM, the critic read ``layout``."""
    t1 = table1[(table1["variant"] == LAYOUT_VARIANT[layout]) & (table1["mode"] == "classifier")]
    at = d[(d["eps"] == 0.7) & (d["input_layout"] == layout)].set_index("seed")["ca"]
    lines = [f"| seed ({layout} critic input) | random sign ca | white-box FGSM ca | black-box FGSM ca |",
             "| --- | --- | --- | --- |"]
    cols: dict[str, list[float]] = {"random": [], "white-box": [], "black-box": []}
    for seed in sorted(set(at.index) & set(t1["seed"])):
        fgsm = {a: t1[(t1["seed"] == seed) & (t1["access"] == a)]["ca"] for a in ("white-box", "black-box")}
        if any(c.empty for c in fgsm.values()):
            continue
        cells = {"random": float(at[seed]), **{a: float(c.iloc[0]) for a, c in fgsm.items()}}
        for k, v in cells.items():
            cols[k].append(v)
        lines.append(f"| {seed} | {cells['random']:.3f} | {cells['white-box']:.3f} | {cells['black-box']:.3f} |")
    lines.append("| mean ± std | " + " | ".join(_mean_std(pd.Series(v)) for v in cols.values()) + " |")
    return lines


def rows(out: Path = OUT, table1: Path = TABLE1, grid: Path = GRID) -> list[str]:
    """The docs page's tables: per seed at ε = 0.7 (transposed, then upright input), and over ε for seed 0."""
    d = pd.read_csv(out)
    t1 = pd.read_csv(table1)
    lines = per_seed(d, t1, "transposed")
    if (d["input_layout"] == "upright").any():
        lines += ["", *per_seed(d, t1, "upright")]
    d = d[d["input_layout"] == "transposed"]
    g = pd.read_csv(grid)
    g = g[(g["seed"] == 0) & (g["param:attackers.0.attack.params.mode"] == "classifier")]
    curve = d[d["seed"] == 0].set_index("eps")["ca"]
    lines += ["", "| ε (seed 0) | random sign ca | white-box FGSM ca | black-box FGSM ca |", "| --- | --- | --- | --- |"]
    for eps in sorted(curve.index):
        fgsm = [g[(g["param:attackers.0.attack.params.eps"] == eps)
                  & (g["param:attackers.0.attack.params.knowledge"] == k)]["ca"] for k in ("white-box", "posteriors")]
        lines.append(f"| {eps:g} | {curve[eps]:.3f} | " + " | ".join("–" if c.empty else f"{c.iloc[0]:.3f}" for c in fgsm) + " |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2,3,4,5", help="seeds run at ε = 0.7")
    p.add_argument("--eps", default=GRID_EPS, help="budgets run for seed 0")
    p.add_argument("--upright-seeds", default="0,1,2", help="seeds run at ε = 0.7 with the critic fed upright images")
    p.add_argument("--reference-critic", default=None, help="safetensors from tools/reference_critic.py")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--print", action="store_true", help="only print the docs tables from --out")
    args = p.parse_args()
    if not args.print:
        from table1_reference import append_row  # a sibling script: experiments/ is on the path when run
        if args.reference_critic is None:
            p.error("--reference-critic is required to run (or --print)")
        done = set()
        if args.out.exists():
            done = {(int(r["seed"]), float(r["eps"]), r["input_layout"]) for r in csv.DictReader(args.out.open())}
        todo = [(int(s), 0.7, "transposed") for s in args.seeds.split(",")]
        todo += [(0, float(e), "transposed") for e in args.eps.split(",")]
        todo += [(int(s), 0.7, "upright") for s in args.upright_seeds.split(",")]
        for seed, eps, layout in dict.fromkeys(todo):
            if (seed, eps, layout) in done:
                continue
            append_row(args.out, COLUMNS, one(seed, eps, layout, args.reference_critic))
    print("\n".join(rows(args.out)))


if __name__ == "__main__":
    main()
