"""The leaderboard: from a sweep over defenses and attacks to leaderboard.md, and the docs pages' copies of it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from streamsim.core.errors import DataError
from streamsim.presentation.leaderboard import is_leaderboard, leaderboard, markdown
from streamsim.presentation.report import write_report
from streamsim.running.grid import cell_id, grid_cells
from streamsim.running.sweep import ResultsFile

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMITTED = REPO_ROOT / "experiments" / "results" / "leaderboard"
BUILT_IN_DEFENSES = {"none", "oracle", "depois", "knn", "centroid", "loss-trim", "roni", "spectral"}
SIX_ATTACKS = ["label-flip", "noise", "white-box FGSM", "black-box FGSM", "adaptive verdicts", "adaptive effects"]


def _fake_sweep(root: Path, grid: dict, da: dict[tuple[int, int], list[float]]) -> Path:
    """A sweep directory as `streamsim sweep` leaves it, with made-up metrics (da per cell and seed)."""
    root.mkdir()
    (root / "sweep.json").write_text(json.dumps({"grid": grid, "seeds": [0, 1], "overrides": [],
                                                 "scenario": {"attackers": [{"attack": {"name": "label-flip"}}]}}))
    results = ResultsFile(root / "results.csv", list(grid))
    lines = []
    for i, params in enumerate(grid_cells(grid)):
        for seed in (0, 1):
            value = da.get((i, seed), 0.5)
            lines.append({"cell": cell_id(params), "seed": seed, **{f"param:{k}": v for k, v in params.items()},
                          "ca": value, "da": value, "clean_frr": 0.1 * seed, "accuracy_drop": 0.02,
                          "screen_s_per_1k": 1.0 + seed})
    pd.DataFrame(lines).reindex(columns=results.columns).to_csv(root / "results.csv", index=False)
    return root


GRID = {"defense": [{"name": "none"}, {"name": "knn", "params": {"k": 5}}],
        "attackers.0.attack": [{"name": "label-flip"}, {"name": "fgsm", "params": {"knowledge": "posteriors"}}]}


def test_report_on_a_sweep_over_defenses_writes_the_leaderboard(tmp_path):
    # cells in grid order: (none, flip), (none, fgsm), (knn, flip), (knn, fgsm)
    sweep = _fake_sweep(tmp_path / "s", GRID, {(2, 0): 0.9, (2, 1): 1.0})
    assert is_leaderboard(sweep)
    report = write_report(sweep)
    text = (sweep / "leaderboard.md").read_text()
    assert "| defense | label-flip | black-box FGSM |" in text
    assert "| knn | 0.950 ± 0.071 | 0.500 ± 0.000 |" in text  # da: mean ± std over the two seeds
    assert "| none | 1.50 ± 0.71 | 1.50 ± 0.71 |" in text  # screening cost, two decimals
    assert (sweep / "figures" / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    assert "leaderboard.md" in report.read_text()
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert len(board) == 2 * 2 * 4 and set(board["seeds"]) == {2}


def test_a_sweep_that_keeps_the_defense_is_no_leaderboard(tmp_path):
    sweep = _fake_sweep(tmp_path / "s", {"attackers.0.attack.name": ["label-flip", "noise"]}, {})
    assert not is_leaderboard(sweep)
    write_report(sweep)
    assert not (sweep / "leaderboard.md").exists()
    with pytest.raises(DataError, match="does not vary the defense"):
        leaderboard(sweep)


def _page_table(page: str, marker: str) -> str:
    text = (REPO_ROOT / "docs" / page).read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker}:start -->\n(.*?)<!-- {marker}:end -->", text, re.S)
    assert found, f"docs/{page} has no {marker} section"
    return found.group(1)


def test_the_docs_leaderboard_is_the_committed_results():
    board = leaderboard(COMMITTED)
    assert _page_table("studies/leaderboard.md", "leaderboard") == markdown(board)
    assert set(board.attrs["defenses"]) >= BUILT_IN_DEFENSES and board.attrs["attacks"] == SIX_ATTACKS
    assert (board["seeds"] >= 3).all(), "every cell over at least three seeds"
    assert (COMMITTED / "leaderboard.md").read_text().count(markdown(board)) == 1  # what `streamsim report` wrote


def test_a_grid_value_may_be_a_whole_table():
    from streamsim.running.sweep import parse_grid

    grid = parse_grid(['defense={name = "knn", params = {k = 3, space = "input"}},{name = "none"}'])
    assert grid == {"defense": [{"name": "knn", "params": {"k": 3, "space": "input"}}, {"name": "none"}]}


def test_the_docs_harm_leaderboard_is_the_committed_results():
    committed = REPO_ROOT / "experiments" / "results" / "leaderboard-harm"
    board = leaderboard(committed)
    assert _page_table("studies/harm.md", "leaderboard-harm") == markdown(board)
    assert set(board.attrs["defenses"]) >= BUILT_IN_DEFENSES
    assert board.attrs["attacks"] == ["accumulative", "backdoor", "targeted"]
    assert (board["seeds"] >= 3).all()
    assert {"asr", "targeted_success"} <= set(board["metric"])
