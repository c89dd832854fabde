"""Sweeps: one row per cell and seed, and a killed sweep resumes without losing or repeating rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import tomli_w

from streamsim.artifacts.diagnostics import WALL_CLOCK_KEYS
from streamsim.core.errors import ConfigError
from streamsim.running.sweep import parse_grid, run_sweep

GRID = ["attackers.0.batch_size=16,48"]


def _scenario(tmp_path, tiny):
    tiny.update(duration=4.0, eval_every=2.0)
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(tiny))
    return path


def _rows(out):
    frame = pd.read_csv(out / "results.csv").drop(columns=list(WALL_CLOCK_KEYS))
    return frame.sort_values(["cell", "seed"]).reset_index(drop=True)


def _children_of_session(sid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,sid"], capture_output=True, text=True).stdout.split("\n")[1:]
    return [int(p) for p, s in (line.split() for line in out if line.strip()) if int(s) == sid and int(p) != sid]


def test_grid_parsing_and_errors():
    assert parse_grid(["a.b=0,0.5,1", "c=x,y"]) == {"a.b": [0, 0.5, 1], "c": ["x", "y"]}
    with pytest.raises(ConfigError, match="expected key.path"):
        parse_grid(["novalue"])


def test_bad_grid_value_fails_before_any_cell_runs(tmp_path, tiny):
    path = _scenario(tmp_path, tiny)
    with pytest.raises(ConfigError, match="batch_size"):
        run_sweep(path, {"attackers.0.batch_size": [8, -1]}, [0], tmp_path / "sw")
    assert not (tmp_path / "sw" / "results.csv").exists()


@pytest.mark.slow
def test_killed_sweep_resumes_to_exactly_the_uninterrupted_rows(tmp_path, tiny):
    path = _scenario(tmp_path, tiny)
    reference = tmp_path / "reference"
    progress = run_sweep(path, parse_grid(GRID), [0, 1], reference, jobs=2)
    assert progress.done == 4 and progress.failed == 0
    expected = _rows(reference)
    assert len(expected) == 4 and not expected.duplicated(["cell", "seed"]).any()

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "streamsim", "sweep", str(path), "--grid", GRID[0], "--seeds", "0,1",
           "--jobs", "1", "--out", str(out)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    results = out / "results.csv"
    while time.time() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # the sweep alone: its workers must not outlive it
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and _children_of_session(proc.pid):
        time.sleep(0.2)
    assert not _children_of_session(proc.pid), "workers outlived the killed sweep"
    rows_at_kill = len(results.read_text().splitlines()) - 1
    assert 1 <= rows_at_kill < 4
    # a kill in the middle of an append leaves a torn line: resume must drop it, not keep it
    with results.open("a") as f:
        f.write("deadbeef0000,1,16,0.5")
    progress = run_sweep(path, {}, [], out, resume=True, jobs=1)
    assert progress.skipped == rows_at_kill and progress.done == 4 - rows_at_kill
    pd.testing.assert_frame_equal(_rows(out), expected)
    # resuming a finished sweep runs nothing and adds nothing
    again = run_sweep(path, {}, [], out, resume=True)
    assert again.done == 0 and again.skipped == 4
    assert len(_rows(out)) == 4


@pytest.mark.slow
def test_refuses_to_mix_sweeps(tmp_path, tiny):
    path = _scenario(tmp_path, tiny)
    out = tmp_path / "sw"
    run_sweep(path, {"attackers.0.batch_size": [8]}, [0], out)
    with pytest.raises(ConfigError, match="already exists"):
        run_sweep(path, {"attackers.0.batch_size": [8]}, [0], out)
    with pytest.raises(ConfigError, match="differ"):
        run_sweep(path, {"attackers.0.batch_size": [9]}, [0], out, resume=True)


@pytest.mark.slow
def test_ray_executor_writes_the_same_rows_as_the_local_pool(tmp_path, tiny):
    path = _scenario(tmp_path, tiny)
    grid = {"attackers.0.batch_size": [16, 48]}
    run_sweep(path, grid, [0], tmp_path / "local", jobs=1)
    progress = run_sweep(path, grid, [0], tmp_path / "ray", jobs=2, executor="ray")
    assert progress.done == 2 and progress.failed == 0
    pd.testing.assert_frame_equal(_rows(tmp_path / "ray"), _rows(tmp_path / "local"))


def test_unknown_executor_is_a_config_error(tmp_path, tiny):
    path = _scenario(tmp_path, tiny)
    with pytest.raises(ConfigError, match="executor"):
        run_sweep(path, {"attackers.0.batch_size": [8]}, [0], tmp_path / "sw", executor="slurm")
    assert not (tmp_path / "sw").exists()


@pytest.mark.slow
def test_a_sweep_killed_at_random_moments_again_and_again_ends_with_exactly_its_rows(tmp_path, tiny):
    """Crash the whole sweep (parent and workers, SIGKILL) at seeded random moments, four times,
    resuming after each; then finish it. No row may be lost, repeated or differ."""
    import random

    path = _scenario(tmp_path, tiny)
    tiny.update(duration=10.0, eval_every=5.0)  # cells long enough to be caught mid-work
    path.write_text(tomli_w.dumps(tiny))
    grid = "attackers.0.batch_size=8,16,32,48"
    run_sweep(path, parse_grid([grid]), [0, 1], tmp_path / "reference", jobs=2)
    expected = _rows(tmp_path / "reference")
    out = tmp_path / "crashed"
    moments = random.Random(7)
    kills, rows_seen = 0, []
    for _ in range(4):
        cmd = [sys.executable, "-m", "streamsim", "sweep", str(path), "--grid", grid, "--seeds", "0,1",
               "--jobs", "2", "--out", str(out)] + (["--resume"] if (out / "sweep.json").exists() else [])
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        results = out / "results.csv"
        before = rows_seen[-1] if rows_seen else 0
        deadline = time.time() + 120
        # Wait for progress (a new row), then kill at a random moment of the next cells' work.
        while time.time() < deadline and proc.poll() is None:
            if results.exists() and len(results.read_text().splitlines()) - 1 > before:
                break
            time.sleep(0.1)
        try:
            proc.wait(timeout=moments.uniform(0.0, 0.8))
            break  # it finished before this kill
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        rows_seen.append(len(results.read_text().splitlines()) - 1 if results.exists() else 0)
    assert kills >= 2, "the sweep finished too fast to be killed: make the cells longer"
    run_sweep(path, {}, [], out, resume=True, jobs=1)
    rows = _rows(out)
    assert not rows.duplicated(["cell", "seed"]).any()
    pd.testing.assert_frame_equal(rows, expected)
    print(f"kills survived: {kills}; rows after each kill: {rows_seen}; rows lost: 0")


def test_a_sweep_killed_before_it_wrote_anything_resumes_by_starting(tmp_path, tiny):
    from streamsim.running.sweep import plan

    path = _scenario(tmp_path, tiny)
    out = tmp_path / "early"
    out.mkdir()
    (out / ".sweep.json.x.tmp").write_text("{")  # killed inside the atomic write of sweep.json
    todo, _, total = plan(path, parse_grid(GRID), [0], out, (), resume=True)
    assert total == 2 and len(todo) == 2 and (out / "sweep.json").is_file()
    other = tmp_path / "other"  # a directory with something else in it is still refused
    other.mkdir()
    (other / "results.csv").write_text("cell,seed\n")
    with pytest.raises(ConfigError, match="holds no sweep.json"):
        plan(path, parse_grid(GRID), [0], other, (), resume=True)
