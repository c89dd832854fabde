"""The command line: outputs, resolved scenarios, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import tomllib

import pytest
import tomli_w
from typer.testing import CliRunner

from streamsim.artifacts.rundir import OPTIONAL_RUN_FILES, RUN_FILES
from streamsim.presentation.cli import app

runner = CliRunner()


def _scenario(tmp_path, tiny, **changes):
    tiny.update(changes)
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(tiny))
    return path


def test_run_writes_a_complete_run_dir_whose_resolved_scenario_reproduces_it(tmp_path, tiny):
    path = _scenario(tmp_path, tiny, duration=4.0)
    out = tmp_path / "run1"
    res = runner.invoke(app, ["run", str(path), "--out", str(out), "--no-live", "--set", "seed=3"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted((*RUN_FILES, *OPTIONAL_RUN_FILES))  # it has an attacker
    summary = json.loads((out / "summary.json").read_text())
    resolved = tomllib.loads((out / "scenario.resolved.toml").read_text())
    assert resolved["seed"] == 3 and summary["seed"] == 3
    assert resolved["learner"]["params"]["lr"] == 1e-3  # plugin defaults are written out too
    assert "ca" in res.output and "accuracy" in res.output
    # the resolved scenario alone reproduces the run
    again = tmp_path / "run2"
    res2 = runner.invoke(app, ["run", str(out / "scenario.resolved.toml"), "--out", str(again), "--no-live"])
    assert res2.exit_code == 0, res2.output
    s2 = json.loads((again / "summary.json").read_text())
    for key in ("final_accuracy", "baseline_final_accuracy", "ca", "da", "poisons"):
        assert s2[key] == summary[key]
    assert (again / "timeline.csv").read_text() == (out / "timeline.csv").read_text()


@pytest.mark.parametrize(("edit", "needle"), [
    ({"duration": -1}, "duration"),
    ({"clean": [{"batch_size": "many"}]}, "clean.0.batch_size"),
    ({"colour": "red"}, "colour: unknown key"),
    ({"defense": {"name": "nope"}}, "unknown defense 'nope'"),
    ({"learner": {"name": "small-cnn", "params": {"lr": "fast"}}}, "learner.params.lr"),
    ({"attackers": [{"attack": {"name": "label-flip", "params": {"target": 12}}}]}, "target"),
    ({"data": {"dataset": "npz:/nonexistent.npz"}}, "no such file"),
    ({"data": {"splits": {"pretrain": 0.9}}}, "add up to"),
    ({"attackers": [{"attack": {"name": "fgsm", "params": {"knowledge": "posteriors", "shadow": {"pool": "training"}}}}]},
     "grant it with training_data = true"),
])
def test_bad_input_is_one_line_exit_2_and_no_run_dir(tmp_path, tiny, edit, needle):
    path = _scenario(tmp_path, tiny, **edit)
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(path), "--out", str(out), "--no-live"])
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]


def test_validate_and_bad_overrides(tmp_path, tiny):
    path = _scenario(tmp_path, tiny)
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0
    res = runner.invoke(app, ["validate", str(path), "--set", "clean.5.batch_size=3"])
    assert res.exit_code == 2 and "index" in res.output
    res = runner.invoke(app, ["validate", str(path), "--set", "nonsense"])
    assert res.exit_code == 2 and "key.path=value" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"name = \"\xff\xfe\"\n")
    res = runner.invoke(app, ["validate", str(bad)])
    assert res.exit_code == 2 and "UTF-8" in res.output


def test_refuses_to_overwrite_an_existing_run(tmp_path, tiny):
    path = _scenario(tmp_path, tiny)
    out = tmp_path / "taken"
    out.mkdir()
    (out / "x").write_text("keep me")
    res = runner.invoke(app, ["run", str(path), "--out", str(out), "--no-live"])
    assert res.exit_code == 2 and "already exists" in res.output
    assert (out / "x").read_text() == "keep me"


def test_list_shows_builtins_with_descriptions():
    res = runner.invoke(app, ["list"])
    assert res.exit_code == 0
    for name in ("mnist-5k", "small-cnn", "river", "oracle", "label-flip", "noise"):
        assert name in res.output


def test_help_piped_into_a_closed_pipe_ends_without_a_traceback():
    # `streamsim --help | head -1` closes the pipe early; the abort path must not itself crash.
    import subprocess
    import sys

    code = ("import sys; from streamsim.presentation.cli import app; sys.argv = ['streamsim', '--help']; "
            "sys.stdout = open(sys.stdout.fileno(), 'w', closefd=False); app()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(1)  # read one byte, then close: later writes meet a broken pipe
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "AttributeError" not in err, err


def test_every_built_in_plugin_has_a_one_line_description():
    from streamsim.scenario.registry import available
    for kind in ("learner", "defense", "attack", "dataset"):
        for info in available(kind):
            assert info.description and info.description != "(no description)", f"{kind} {info.name}"
            assert "``" not in info.description, f"{kind} {info.name}: reST markup in {info.description!r}"
