"""Table 1 of Oschart et al. (ε = 0.7) from a sweep's ``results.csv``: the docs page's rows, printed.

    streamsim sweep paper-whitebox --grid attackers.0.attack.params.eps=0.7 \\
      --grid attackers.0.attack.params.mode=classifier,critic-classifier \\
      --grid attackers.0.attack.params.knowledge=white-box,posteriors --seeds 0,1,2 --jobs 2 --out sweeps/table1
    cp sweeps/table1/results.csv experiments/results/table1/results.csv
    python experiments/table1.py            # prints the rows the docs page shows
    python experiments/table1.py experiments/results/table1-paper/results.csv   # the paper preset's table

``tests/test_pages.py`` checks that the docs page's table is exactly what this prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "table1" / "results.csv"
#: the same sweep with ``--set defense.params.preset=paper`` (one sweep per seed, rows concatenated)
PAPER_PRESET = Path(__file__).resolve().parent / "results" / "table1-paper" / "results.csv"
PAPER = {  # Oschart et al., arXiv 2204.01090, Table 1 (ca, da)
    ("white-box", "classifier"): (0.3524, 0.3564),
    ("white-box", "critic-classifier"): (0.2077, 0.2077),
    ("posteriors", "classifier"): (0.3173, 0.3383),
    ("posteriors", "critic-classifier"): (0.2119, 0.2714),
}
ACCESS = {"white-box": "white-box", "posteriors": "black-box"}
MODE = {"classifier": "classifier", "critic-classifier": "critic→classifier"}


def rows(results: Path = RESULTS) -> list[str]:
    """The markdown rows: paper ca/da against our mean ± std over the seeds in ``results``."""
    d = pd.read_csv(results)
    knowledge, mode = "param:attackers.0.attack.params.knowledge", "param:attackers.0.attack.params.mode"
    out = ["| access | mode | paper ca | paper da | ours ca | ours da |", "| --- | --- | --- | --- | --- | --- |"]
    for (k, m), (paper_ca, paper_da) in PAPER.items():
        cell = d[(d[knowledge] == k) & (d[mode] == m)]
        ours = [f"{cell[c].mean():.3f} ± {cell[c].std():.3f}" if len(cell) > 1 else f"{cell[c].mean():.3f}"
                for c in ("ca", "da")]
        out.append(f"| {ACCESS[k]} | {MODE[m]} | {paper_ca} | {paper_da} | {ours[0]} | {ours[1]} |")
    frr = d.drop_duplicates("seed")["clean_frr"].mean()
    out += ["", f"Clean false-rejection rate of the same critic: {frr:.3f} (mean over seeds {', '.join(map(str, sorted(d['seed'].unique())))})."]
    return out


if __name__ == "__main__":
    print("\n".join(rows(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS)))
