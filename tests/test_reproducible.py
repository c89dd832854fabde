"""Same scenario and seed → the same summary in every process that can run it.

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
from streamsim.artifacts.diagnostics import WALL_CLOCK_KEYS
from streamsim.presentation.cli import app
from streamsim.running.sweep import METRICS

runner = CliRunner()
COMPARED = [m for m in METRICS if m not in WALL_CLOCK_KEYS]  # wall time differs between identical runs


def _scenario(tiny: dict[str, Any], tmp_path: Path) -> Path:
    # A short De-Pois fit: its wide dense layers are where two threads round differently from one.
    tiny.update(duration=4.0, eval_every=2.0, defense={"name": "depois", "params": {
        "augment": {"cgan_steps": 20, "authenticator_steps": 20, "factor": 1.5}, "critic": {"steps": 20}}})
    tiny["learner"]["params"].update(pretrain_epochs=1, steps_per_batch=2)
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(tiny))
    return path


def _own_cache(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Each process trains its own artifacts (a shared cache would hide what its threads compute)."""
    monkeypatch.setenv("STREAMSIM_CACHE", str(folder / "cache"))


def _sweep_row(path: Path, out: Path, monkeypatch: pytest.MonkeyPatch, *options: str) -> dict[str, Any]:
    _own_cache(monkeypatch, out.parent / f"{out.name}-cache")
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


def test_run_and_sweep_workers_give_the_same_summary(tiny, tmp_path, monkeypatch):
    path = _scenario(tiny, tmp_path)
    _own_cache(monkeypatch, tmp_path / "run-1")
    summary = streamsim.run(path, out=None).summary
    _own_cache(monkeypatch, tmp_path / "run-2")
    two = streamsim.run(path, out=None, threads=2).summary
    assert any(two[m] != summary[m] for m in ("ca", "da", "clean_frr", "final_accuracy")), \
        "this scenario no longer depends on the thread count: the test below would prove nothing"
    _same(summary, _sweep_row(path, tmp_path / "jobs1", monkeypatch, "--jobs", "1"))  # a worker starts with 2 threads
    _same(summary, _sweep_row(path, tmp_path / "jobs2", monkeypatch, "--jobs", "2"))


@pytest.mark.slow
def test_ray_tasks_give_the_same_summary(tiny, tmp_path, monkeypatch):
    path = _scenario(tiny, tmp_path)
    _own_cache(monkeypatch, tmp_path / "run")
    summary = streamsim.run(path, out=None).summary
    _same(summary, _sweep_row(path, tmp_path / "ray", monkeypatch, "--jobs", "2", "--executor", "ray"))
