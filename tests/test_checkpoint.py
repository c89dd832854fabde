"""Run checkpoints: a stopped or killed run resumes to exactly the uninterrupted result; corrupt
checkpoints are refused in one line, and never execute code."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import tomli_w
from typer.testing import CliRunner

import streamsim.running.experiment as experiment
from streamsim.artifacts.checkpoint import CheckpointError, _tree_sha256, load_checkpoint, save_checkpoint
from streamsim.artifacts.diagnostics import WALL_CLOCK_KEYS
from streamsim.presentation.cli import app

runner = CliRunner()
RESULT_FILES = ("timeline.csv", "events.csv", "scores.csv")


def _scenario(tiny: dict[str, Any]) -> dict[str, Any]:
    """Poisson clean arrivals, a label flipper, and an adaptive attacker whose verdicts arrive late:
    at any checkpoint some observations are in flight."""
    tiny.update(duration=10.0, eval_every=2.5)
    tiny["clean"][0].update(arrival="poisson", rate=1.3)
    tiny["attackers"] = [
        {"name": "adaptive", "batch_size": 16, "arrival": "poisson", "rate": 1.0, "start": 1.0, "feedback_delay": 2.5,
         "feedback_flip": 0.1, "attack": {"name": "adaptive", "params": {"surrogate_epochs": 1, "eps": [0.1, 0.3]}}},
        {"name": "flip", "batch_size": 8, "attack": {"name": "label-flip", "params": {"mode": "permutation"}}},
    ]
    return tiny


def _same_results(a: Path, b: Path) -> None:
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for key in WALL_CLOCK_KEYS:  # wall time, not a result
        sa.pop(key), sb.pop(key)
    assert sa == sb
    for name in RESULT_FILES:
        pd.testing.assert_frame_equal(pd.read_csv(a / name), pd.read_csv(b / name), check_exact=True)
    assert (a / "scenario.resolved.toml").read_text() == (b / "scenario.resolved.toml").read_text()


@pytest.fixture
def stopped_run(tiny, tmp_path, stop_at_checkpoint):
    """Start a checkpointed run and stop it right after its n-th checkpoint; returns (run dir, scenario)."""

    def start(n: int) -> tuple[Path, dict[str, Any]]:
        sc = _scenario(tiny)
        return stop_at_checkpoint(sc, tmp_path / f"stopped{n}", checkpoint_every=3.0, n=n), sc

    return start


@pytest.mark.slow
@pytest.mark.parametrize("checkpoints", [2, 5], ids=["in-the-baseline", "in-the-attacked-run"])
def test_a_stopped_run_resumes_to_exactly_the_uninterrupted_run(stopped_run, tmp_path, checkpoints):
    out, sc = stopped_run(checkpoints)
    _, meta = load_checkpoint(out / "checkpoint")
    assert meta["phase"] == ("baseline" if checkpoints <= 3 else "attack")
    resumed = experiment.resume(out)
    reference = experiment.run(sc, out=tmp_path / "reference")
    _same_results(resumed.run_dir, reference.run_dir)
    assert not (out / "checkpoint").exists() and not (out / "resume.json").exists()  # results replaced them


def test_checkpointing_itself_changes_nothing(tiny, tmp_path):
    sc = _scenario(tiny)
    with_checkpoints = experiment.run(sc, out=tmp_path / "a", checkpoint_every=1.5)
    without = experiment.run(sc, out=tmp_path / "b")
    _same_results(with_checkpoints.run_dir, without.run_dir)


def _phase(folder: Path) -> str | None:
    """The phase of the checkpoint a live run is writing; ``None`` if the run swapped the folder
    between our reads of its two files (the run never reads while it writes; this poll does)."""
    try:
        return load_checkpoint(folder)[1]["phase"]
    except CheckpointError:
        return None


@pytest.mark.slow
def test_a_run_killed_between_checkpoints_resumes_from_the_last_one(tiny, tmp_path):
    sc = _scenario(tiny)
    sc["duration"] = 16.0
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(sc))
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "streamsim", "run", str(path), "--out", str(out), "--no-live",
                             "--checkpoint-every", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = out / "checkpoint" / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists() and _phase(out / "checkpoint") == "attack":
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    time.sleep(0.3)  # somewhere between two checkpoints
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.json").exists()

    result = runner.invoke(app, ["run", "--resume", str(out), "--no-live"])
    assert result.exit_code == 0, result.output
    reference = experiment.run(sc, out=tmp_path / "reference")
    _same_results(out, reference.run_dir)


class _Payload:
    """Unpickling this would create a file: proof that a checkpoint never unpickles."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def _truncate(folder: Path) -> None:
    blob = (folder / "state.safetensors").read_bytes()
    (folder / "state.safetensors").write_bytes(blob[: len(blob) // 2])


def _bitflip(folder: Path) -> None:
    blob = bytearray((folder / "state.safetensors").read_bytes())
    blob[len(blob) // 2] ^= 0x10
    (folder / "state.safetensors").write_bytes(bytes(blob))


def _wrong_shape(folder: Path) -> None:
    doc = json.loads((folder / "state.json").read_text())
    key = next(iter(doc["manifest"]["tensors"]))
    doc["manifest"]["tensors"][key]["shape"] = [7, 7]
    (folder / "state.json").write_text(json.dumps(doc))


def _smuggled_pickle(folder: Path) -> None:
    import hashlib

    blob = pickle.dumps(_Payload(str(folder.parent.parent / "PWNED")))
    (folder / "state.safetensors").write_bytes(blob)
    doc = json.loads((folder / "state.json").read_text())
    doc["manifest"]["sha256"] = hashlib.sha256(blob).hexdigest()  # even with a matching checksum
    (folder / "state.json").write_text(json.dumps(doc))


def _mangled_json(folder: Path) -> None:
    (folder / "state.json").write_text('{"manifest": {"format": 1, "sha')


def _other_scenario(folder: Path) -> None:
    doc = json.loads((folder / "state.json").read_text())
    doc["meta"]["scenario_sha256"] = "0" * 64
    doc["manifest"]["state_sha256"] = _tree_sha256(doc["state"], doc["meta"])  # a consistent checkpoint, of another run
    (folder / "state.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("corrupt, needle", [
    (_truncate, "checksum"), (_bitflip, "checksum"), (_wrong_shape, "manifest"),
    (_smuggled_pickle, "not a valid safetensors file"), (_mangled_json, "not valid JSON"), (_other_scenario, "another scenario"),
])
def test_corrupt_checkpoints_are_refused_in_one_line(stopped_run, tmp_path, corrupt, needle):
    out, _ = stopped_run(1)
    corrupt(out / "checkpoint")
    before = sorted(p.name for p in out.iterdir())
    result = runner.invoke(app, ["run", "--resume", str(out), "--no-live"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.output, result.output
    assert sorted(p.name for p in out.iterdir()) == before  # nothing written, nothing half-replaced
    assert not (tmp_path / "PWNED").exists()


def test_a_checkpoint_of_the_old_format_or_with_an_altered_record_segment_is_refused_in_one_line(stopped_run):
    out, _ = stopped_run(2)
    segment = out / "checkpoint.records" / "000001"
    doc = json.loads((segment / "state.json").read_text())
    doc["meta"]["records"] += 1  # a valid segment on its own, but not the one the checkpoint names
    (segment / "state.json").write_text(json.dumps(doc))
    result = runner.invoke(app, ["run", "--resume", str(out), "--no-live"])
    assert result.exit_code == 2 and "000001" in result.output and "checksum" in result.output, result.output
    doc = json.loads((out / "checkpoint" / "state.json").read_text())
    doc["manifest"]["format"] = 1  # before records were logged incrementally
    (out / "checkpoint" / "state.json").write_text(json.dumps(doc))
    result = runner.invoke(app, ["run", "--resume", str(out), "--no-live"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "format 1 is not 2" in lines[0], result.output


def test_checkpoints_store_each_record_once(stopped_run):
    out, _ = stopped_run(5)
    _, meta = load_checkpoint(out / "checkpoint")
    segments = [load_checkpoint(out / "checkpoint.records" / f"{i:06d}", sha256=digest)
                for i, digest in enumerate(meta["records"])]
    assert len(segments) == 5 and all(s["order"] for s, _ in segments)
    state, _ = load_checkpoint(out / "checkpoint")
    assert "records" not in state  # the state holds the parts' states only, whatever the run's length


def test_a_half_written_checkpoint_falls_back_to_the_previous_one(stopped_run):
    out, _ = stopped_run(2)
    state, meta = load_checkpoint(out / "checkpoint")
    # As if killed inside save_checkpoint: the previous checkpoint moved aside, the new one not yet in place.
    os.replace(out / "checkpoint", out / ".checkpoint.old")
    assert experiment.resume(out).summary["scenario"] == "tiny-test"


def test_save_checkpoint_refuses_objects_it_could_only_pickle(tmp_path):
    from streamsim.artifacts.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="cannot be checkpointed"):
        save_checkpoint(tmp_path / "c", {"model": object()}, {})
    with pytest.raises(CheckpointError, match="not a string"):
        save_checkpoint(tmp_path / "c", {1: 2}, {})
    assert not (tmp_path / "c").exists()


def test_cli_checkpoint_errors_are_one_line_exit_2(tiny, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(tiny))
    river = tmp_path / "river.toml"
    river.write_text(tomli_w.dumps({**tiny, "learner": {"name": "river"}}))
    cases = [
        (["run", str(path), "--checkpoint-every", "0", "--out", str(tmp_path / "a")], "positive"),
        (["run", str(river), "--checkpoint-every", "2", "--out", str(tmp_path / "b")], "RiverLearner cannot be checkpointed"),
        (["run", "--resume", str(tmp_path / "nowhere")], "not a run started with --checkpoint-every"),
        (["run", "--resume", str(tmp_path), "--seed", "3"], "drop --seed"),
        (["run"], "give a scenario"),
    ]
    for args, needle in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output, (args, result.output)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    finished = tmp_path / "done"
    assert runner.invoke(app, ["run", str(path), "--out", str(finished), "--no-live", "--checkpoint-every", "5"]).exit_code == 0
    result = runner.invoke(app, ["run", "--resume", str(finished)])
    assert result.exit_code == 2 and "finished run" in result.output


class Stop(Exception):
    pass


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(tiny, tmp_path, monkeypatch):
    def stop(*args: Any, **kwargs: Any) -> None:
        raise Stop

    sc = _scenario(tiny)
    monkeypatch.setattr(experiment, "save_checkpoint", stop)
    out = tmp_path / "early"
    with pytest.raises(Stop):
        experiment.run(sc, out=out, checkpoint_every=3.0)
    monkeypatch.undo()
    # The first record segment was written, the checkpoint naming it was not: resume ignores it.
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.records", "resume.json", "scenario.resolved.toml"]
    _same_results(experiment.resume(out).run_dir, experiment.run(sc, out=tmp_path / "reference").run_dir)
