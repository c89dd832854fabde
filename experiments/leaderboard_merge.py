"""Rerun some of the leaderboard's cells and put them into the committed leaderboard.

The whole leaderboard (``experiments/leaderboard.sh``) is 144 cells and about 43 minutes here. When a
change touches one defense only, its 18 cells can be rerun alone — a sweep of the same scenario
and seeds whose grid holds that defense and the same six attacks — and merged: every committed
row of the same cell and seed is replaced by the new one (the cell id is the hash of its grid
values, so a cell means the same settings in both sweeps), the rest are kept, and ``streamsim
report`` rebuilds ``leaderboard.md``, ``leaderboard.csv`` and ``leaderboard.png`` from the merged
rows. Columns the new rows have and the old ones lack stay empty for the old rows.

    streamsim sweep leaderboard --seeds 0,1,2 --out runs/lb-depois \\
      --grid 'defense={name = "depois", params = {preset = "fast", condition = "claimed", k = 1.0}}' \\
      --grid 'attackers.0.attack=...the six attacks of experiments/leaderboard.sh...'
    python experiments/leaderboard_merge.py runs/lb-depois

``tests/test_leaderboard.py`` then checks the docs page's copy against the merged results.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

from streamsim.files.atomic import write_atomic
from streamsim.presentation.report import write_report

COMMITTED = Path(__file__).resolve().parent / "results" / "leaderboard"


def merge(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """``old`` with every (cell, seed) that ``new`` has replaced by ``new``'s row.

    >>> old = pd.DataFrame({"cell": ["a", "a", "b"], "seed": [0, 1, 0], "da": [0.1, 0.2, 0.3]})
    >>> new = pd.DataFrame({"cell": ["a"], "seed": [1], "da": [0.9], "f1": [0.5]})
    >>> merge(old, new).to_dict("list")
    {'cell': ['a', 'b', 'a'], 'seed': [0, 0, 1], 'da': [0.1, 0.3, 0.9], 'f1': [nan, nan, 0.5]}
    """
    unknown = set(new["cell"]) - set(old["cell"])
    if unknown:
        raise SystemExit(f"cells not in the committed leaderboard (other settings?): {', '.join(sorted(unknown))}")
    replaced = old.set_index(["cell", "seed"]).index.isin(new.set_index(["cell", "seed"]).index)
    columns = list(old.columns) + [c for c in new.columns if c not in old.columns]
    return pd.concat([old[~replaced], new], ignore_index=True).reindex(columns=columns)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", type=Path, help="the sweep directory of the rerun cells")
    p.add_argument("--into", type=Path, default=COMMITTED, help="the leaderboard to update (default: the committed one)")
    args = p.parse_args()
    merged = merge(pd.read_csv(args.into / "results.csv"), pd.read_csv(args.sweep / "results.csv"))
    with tempfile.TemporaryDirectory() as tmp:  # report from a copy: a failed report leaves the committed files alone
        work = Path(tmp) / args.into.name  # the report is titled after its directory
        work.mkdir()
        shutil.copy(args.into / "sweep.json", work / "sweep.json")
        merged.to_csv(work / "results.csv", index=False)
        write_report(work)
        for name, source in (("results.csv", work / "results.csv"), ("leaderboard.md", work / "leaderboard.md"),
                             ("leaderboard.csv", work / "leaderboard.csv"),
                             ("leaderboard.png", work / "figures" / "leaderboard.png")):
            data = source.read_bytes()
            write_atomic(args.into / name, lambda f, data=data: f.write(data))
    print(f"{len(merged)} rows in {args.into / 'results.csv'}; leaderboard.md, .csv and .png rebuilt", file=sys.stderr)


if __name__ == "__main__":
    main()
