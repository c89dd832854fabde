"""Same scenario and seed → the same summary in every process that can run it (issue 13, problem 10).

The scenario's ``threads`` (default 1) is applied by ``run`` itself, so a sweep worker — which the
local executor starts with ``cores / jobs`` torch threads — and a Ray task compute exactly what
``streamsim run`` computes. Before, the quickstart gave ca 0.745 with 2 threads and 0.591 with 1.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import tomli_w
from typer.testing import CliRunner

import streamsim
from streamsim.cli import app
from streamsim.sweep import METRICS

runner = CliRunner()
COMPARED = [m for m in METRICS if m != "wall_time_s"]


def _scenario(tiny: dict[str, Any], tmp_path: Path) -> Path:
    tiny.update(duration=4.0, eval_every=2.0)
    tiny["learner"]["params"].update(pretrain_epochs=1, steps_per_batch=2)
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(tiny))
    return path


def _sweep_row(path: Path, out: Path, *options: str) -> dict[str, Any]:
    result = runner.invoke(app, ["sweep", str(path), "--grid", "duration=4.0", "--seeds", "0", "--out", str(out),
                                 *options])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out / "results.csv")
    assert len(rows) == 1
    return rows.iloc[0].to_dict()


def _same(summary: dict[str, Any], row: dict[str, Any]) -> None:
    for m in COMPARED:
        a, b = summary.get(m), row[m]
        if a is None:
            assert b is None or (isinstance(b, float) and math.isnan(b)), m
        else:
            assert float(a) == float(b), (m, a, b)
    assert json.loads(row["attackers"]) == summary["attackers"]


def test_run_and_sweep_workers_give_the_same_summary(tiny, tmp_path):
    path = _scenario(tiny, tmp_path)
    summary = streamsim.run(path, out=None).summary
    _same(summary, _sweep_row(path, tmp_path / "jobs1", "--jobs", "1"))
    _same(summary, _sweep_row(path, tmp_path / "jobs2", "--jobs", "2"))


@pytest.mark.slow
def test_ray_tasks_give_the_same_summary(tiny, tmp_path):
    path = _scenario(tiny, tmp_path)
    summary = streamsim.run(path, out=None).summary
    _same(summary, _sweep_row(path, tmp_path / "ray", "--jobs", "2", "--executor", "ray"))
