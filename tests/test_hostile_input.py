"""Hostile input, the last holes two probes found: every case exits 2 with one line naming the file
or setting (or, for a damaged cache entry, rebuilds it), fast, and leaves nothing behind — no run,
sweep or report folder, half-written or whole, and no change to a folder given to ``--resume`` or
``report``. Sweeps refused here never start a worker or Ray.

Each test fails on the code before the fix: the probes saw hangs (a FIFO or ``/dev/zero`` read to
the end, a million pretraining epochs, 100,000 workers, a quadratic name check), exit code 1 with
an exception's name, exit code 0 on garbage, and a folder outside a sweep deleted through a symlink.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import streamsim.running.executors as executors
import streamsim.running.experiment as experiment
from streamsim.artifacts.cache import ArtifactCache, cached_fit
from streamsim.core.errors import ConfigError
from streamsim.presentation.cli import app
from streamsim.running.grid import cell_id
from streamsim.running.jobs import Job, remove_leftover
from streamsim.running.sweep import ResultsFile, parse_grid, plan
from streamsim.scenario.config import load_scenario
from tests.cli_checks import one_line_exit_2, write_scenario

from .conftest import TINY

runner = CliRunner()
HANG_S = 60  # a case still running after this long hangs; the cases take about a second each
SMALL = {"duration": 2.0, "eval_every": 1.0, "baseline": False}


@pytest.fixture(autouse=True)
def _no_hangs() -> Iterator[None]:
    """A hang fails the test instead of stopping the suite."""
    def stop(*_: Any) -> None:
        raise TimeoutError(f"still running after {HANG_S} s: a hang")

    before = signal.signal(signal.SIGALRM, stop)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


@pytest.fixture
def no_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a sweep starts a process pool or Ray."""
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("a worker or Ray started before the input was refused")

    monkeypatch.setattr(executors, "ProcessPoolExecutor", refuse)
    monkeypatch.setattr(executors.RayExecutor, "__enter__", refuse)




def _tiny(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(TINY)
    raw.update(SMALL)
    raw["learner"]["params"]["pretrain_epochs"] = 1
    for key, value in changes.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and isinstance(raw.get(key), dict) else value
    return raw




def _snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder``: a file's bytes, or what else it is (never read: it may be a FIFO)."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        key = str(p.relative_to(folder))
        out[key] = "link" if p.is_symlink() else p.read_bytes() if p.is_file() else "dir" if p.is_dir() else "special"
    return out


def _fifo(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    os.mkfifo(path)


# --- --out: one check for run, sweep and report --------------------------------------------------
def _read_only(tmp: Path) -> str:
    if os.geteuid() == 0:  # permission bits do not stop root: a read-only file system does
        return "/sys/streamsim-test/out"
    folder = tmp / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return str(folder / "out")


def _under_a_file(tmp: Path) -> str:
    (tmp / "a-file").write_text("")
    return str(tmp / "a-file" / "out")


BAD_OUTS: dict[str, Callable[[Path], str]] = {
    "too-long": lambda tmp: str(tmp / ("x" * 300)),
    "too-long-path": lambda tmp: str(tmp / "/".join(["y" * 200] * 25)),
    "empty": lambda tmp: "",
    "blank": lambda tmp: "  ",
    "under-a-file": _under_a_file,
    "under-proc": lambda tmp: "/proc/streamsim-test/out",
    "read-only": _read_only,
}


@pytest.mark.parametrize("command", ["run", "sweep", "report"])
@pytest.mark.parametrize("kind", list(BAD_OUTS))
def test_a_bad_out_is_one_line_exit_2_before_any_work(tmp_path, report_run, command, kind, no_workers, monkeypatch):
    out = BAD_OUTS[kind](tmp_path)
    monkeypatch.setattr(experiment, "_execute", lambda *a, **k: pytest.fail("the run started"))
    if command == "run":
        args = ["run", str(write_scenario(tmp_path, _tiny())), "--no-live"]
    elif command == "sweep":
        args = ["sweep", str(write_scenario(tmp_path, _tiny())), "--grid", "duration=1,2"]
    else:
        args = ["report", str(report_run(tmp_path))]
    before = _snapshot(tmp_path)
    one_line_exit_2(runner.invoke(app, [*args, "--out", out]), "out")
    assert _snapshot(tmp_path) == before


def test_report_out_that_is_an_existing_file_is_refused(tmp_path, report_run):
    run = report_run(tmp_path)
    (tmp_path / "taken").write_text("mine")
    one_line_exit_2(runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "taken")]), "taken", "not a folder")
    assert (tmp_path / "taken").read_text() == "mine" and not (run / "report.md").exists()


# --- sweep: checked before any worker, cluster or folder starts ----------------------------------
@pytest.mark.parametrize("args, needle", [
    (["--executor", "ray"], "--grid"),  # no grid: Ray must not start first
    (["--grid", "duration=1,2", "--jobs", "100000"], "--jobs 100,000"),
    (["--grid", "duration=1,2", "--jobs", "100000", "--executor", "ray"], "--jobs 100,000"),
    (["--grid", "duration=1,,2"], "empty value"),
    (["--grid", "duration=1,2,"], "empty value"),
    (["--grid", "seed=" + ",".join(map(str, range(400))), "--grid", "eval_every=" + ",".join(["1"] * 400)], "cells"),
])
def test_sweep_arguments_are_refused_before_any_worker(tmp_path, args, needle, no_workers):
    out = tmp_path / "sweep"
    started = time.perf_counter()
    one_line_exit_2(runner.invoke(app, ["sweep", str(write_scenario(tmp_path, _tiny())), "--out", str(out), *args]), needle)
    assert not out.exists()
    assert time.perf_counter() - started < 10  # in-process: no torch import, no workers


def test_a_sweep_starts_at_most_one_worker_per_cell(tmp_path, monkeypatch):
    import streamsim.running.sweep as sweep

    started = []

    class Fake:
        def __init__(self, kind: str, jobs: int, address: str | None, *task: object) -> None:
            started.append(jobs)

        def __enter__(self) -> Fake:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def map_unordered(self, todo: list[Job]) -> Iterator[tuple[Job, dict, None]]:
            return ((job, {}, None) for job in todo)

    monkeypatch.setattr(sweep, "make_executor", Fake)
    progress = sweep.run_sweep(write_scenario(tmp_path, _tiny()), {"duration": [1.0, 2.0]}, [0], tmp_path / "sw", jobs=8)
    assert started == [2] and progress.done == 2
    again = sweep.run_sweep(tmp_path / "s.toml", {}, [], tmp_path / "sw", resume=True, jobs=8)
    assert started == [2] and again.skipped == 2  # nothing left: no pool at all


@pytest.fixture
def planned(tmp_path) -> Path:
    """A sweep folder as a started sweep leaves it: sweep.json, results.csv with one finished row."""
    out = tmp_path / "sweep"
    todo, results, _ = plan(write_scenario(tmp_path, _tiny()), parse_grid(["duration=1,2"]), [0], out, (), resume=False)
    results.append(todo[0], {"ca": 0.5})
    (out / "runs").mkdir()
    return out


def _edit_meta(out: Path, change: Callable[[dict], None]) -> None:
    meta = json.loads((out / "sweep.json").read_text())
    change(meta)
    (out / "sweep.json").write_text(json.dumps(meta))


def _first_row(out: Path) -> str:
    return (out / "results.csv").read_text().splitlines()[1]


def _append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


SWEEP_DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "edited-scenario": (lambda out: _edit_meta(out, lambda m: m["scenario"].update(duration=3.0)), "scenario changed"),
    "edited-scenario-no-sha": (lambda out: _edit_meta(out, lambda m: m.pop("scenario_sha256")), "scenario changed"),
    "meta-garbage": (lambda out: (out / "sweep.json").write_bytes(b"\xff{nope"), "sweep.json"),
    "meta-list": (lambda out: (out / "sweep.json").write_text("[1, 2]"), "sweep.json"),
    "meta-deep": (lambda out: (out / "sweep.json").write_text("[" * 100_000 + "]" * 100_000), "sweep.json"),
    "meta-types": (lambda out: _edit_meta(out, lambda m: m.update(grid={"duration": 5})), "sweep.json"),
    "meta-fifo": (lambda out: _fifo(out / "sweep.json"), "sweep.json"),
    "meta-dev-zero": (lambda out: ((out / "sweep.json").unlink(), (out / "sweep.json").symlink_to("/dev/zero")),
                      "sweep.json"),
    "results-garbage": (lambda out: (out / "results.csv").write_bytes(b"\x00\xff\xfe garbage\n"), "results.csv"),
    "results-fifo": (lambda out: _fifo(out / "results.csv"), "results.csv"),
    "results-folder": (lambda out: ((out / "results.csv").unlink(), (out / "results.csv").mkdir()), "results.csv"),
    "results-duplicate": (lambda out: _append(out / "results.csv", _first_row(out) + "\n"), "repeats"),
    "results-foreign-cell": (lambda out: _append(out / "results.csv", "ffffffffffff" + _first_row(out)[12:] + "\n"),
                             "results.csv: line 3"),
    "results-bad-seed": (lambda out: _append(out / "results.csv", _first_row(out).replace(",0,", ",zero,", 1) + "\n"),
                         "results.csv: line 3"),
    "results-short-row": (lambda out: _append(out / "results.csv", "abc,0\n"), "results.csv: line 3"),
}


@pytest.mark.parametrize("damage", list(SWEEP_DAMAGE))
def test_resume_refuses_a_damaged_or_edited_sweep_and_changes_nothing(planned, damage, no_workers):
    change, needle = SWEEP_DAMAGE[damage]
    change(planned)
    before = _snapshot(planned)
    one_line_exit_2(runner.invoke(app, ["sweep", "tiny", "--resume", "--out", str(planned)]), needle)
    assert _snapshot(planned) == before


def test_resume_never_deletes_through_a_symlinked_runs_folder(planned, tmp_path, no_workers):
    outside = tmp_path / "precious"
    keep = outside / f"{cell_id({'duration': 2})}-seed0"  # the cell left to run
    keep.mkdir(parents=True)
    (keep / "data.txt").write_text("not the sweep's")
    (planned / "runs").rmdir()
    (planned / "runs").symlink_to(outside)
    one_line_exit_2(runner.invoke(app, ["sweep", "tiny", "--resume", "--out", str(planned)]), "runs", "symlink")
    assert (keep / "data.txt").read_text() == "not the sweep's"
    # and the worker's own clean-up refuses it too, whoever calls it
    with pytest.raises(ConfigError, match="symlink"):
        remove_leftover(planned / "runs" / keep.name)
    assert (keep / "data.txt").exists()


def test_a_leftover_run_folder_that_is_a_symlink_is_unlinked_not_followed(tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data.txt").write_text("keep")
    runs = tmp_path / "sweep" / "runs"
    runs.mkdir(parents=True)
    (runs / "abc-seed0").symlink_to(outside)
    remove_leftover(runs / "abc-seed0")
    assert not (runs / "abc-seed0").exists() and (outside / "data.txt").read_text() == "keep"


def test_results_file_with_a_torn_last_line_is_not_damage(planned):
    with (planned / "results.csv").open("a") as f:
        f.write("deadbeef0000,0,1.0")  # a kill mid-append
    results = ResultsFile(planned / "results.csv", ["duration"])
    assert results.finished({cell_id({"duration": 1}), cell_id({"duration": 2})}, [0]) == {
        (cell_id({"duration": 1}), 0)}


# --- run and validate: settings refused by validate as run would refuse (or hang on) them -----------
VECTORS = {"dataset": "river.synth:SEA", "params": {"size": 300}}
RIVER = {"name": "river", "params": {"model": "linear_model.LogisticRegression"}}
SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"learner": {"name": "small-cnn", "params": {"pretrain_epochs": 1_000_000}}}, "learner.params.pretrain_epochs"),
    ({"learner": {"name": "small-cnn", "params": {"pretrain_epochs": 50_000}}}, "learner.params.pretrain_epochs"),
    ({"learner": {"name": "small-cnn", "params": {"pretrain_batch_size": 0}}}, "pretrain_batch_size"),
    ({"learner": {"name": "river", "params": {"pretrain_batch_size": 0}}}, "pretrain_batch_size"),
    ({"learner": {"name": "river", "params": {"params": {"bogus": 1}}}}, "bogus"),
    ({"learner": {"name": "river", "params": {"pool": 0}}}, "pool"),
    ({"learner": {"name": "river", "params": {"pool": 5}}}, "pool"),
    ({"learner": {"name": "mlp", "params": {"hidden": [1_000_000_000]}}}, "hidden"),
    ({"learner": {"name": "mlp", "params": {"hidden": [16_384] * 3}}}, "hidden"),
    ({"data": {"dataset": "river.synth:Hyperplane", "params": {"n_features": 0, "size": 300}}, "learner": RIVER},
     "n_features"),
    ({"data": {"dataset": "river.synth:Hyperplane", "params": {"n_features": 100_000, "size": 300}}, "learner": RIVER},
     "data.params.n_features"),
    ({"data": {"dataset": "river.synth:ConceptDriftStream", "params": {"width": 0, "size": 300}}, "learner": RIVER},
     "width"),
    ({"data": {"dataset": "river.synth:RandomTree", "params": {"max_tree_depth": 1_000_000, "size": 300}},
      "learner": RIVER}, "data.params.max_tree_depth"),
    ({"data": {"dataset": "river.synth:RandomTree", "params": {"max_tree_depth": 30, "first_leaf_level": 30,
                                                                "size": 300}}, "learner": RIVER},
     "data.params.max_tree_depth"),
    ({"data": {"dataset": "river.synth:RandomRBF", "params": {"n_centroids": 10_000_000, "size": 300}},
      "learner": RIVER}, "data.params.n_centroids"),
    ({"data": {"dataset": "river.synth:Hyperplane", "params": {"n_features": 1_000, "size": 1_000_000}},
      "learner": RIVER}, "data.params.size"),
]


@pytest.mark.parametrize("changes, needle", SETTINGS)
def test_validate_refuses_what_run_would_fail_or_hang_on(tmp_path, changes, needle, monkeypatch):
    path = write_scenario(tmp_path, _tiny(**changes))
    one_line_exit_2(runner.invoke(app, ["validate", str(path)]), needle)
    monkeypatch.setattr(experiment, "_execute", lambda *a, **k: pytest.fail("the run started"))
    one_line_exit_2(runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "r"), "--no-live"]), needle)
    assert not (tmp_path / "r").exists()


def test_200000_sources_are_refused_fast_not_checked_quadratically(tmp_path):
    raw = _tiny(clean=[{"name": f"c{i}"} for i in range(199_999)])  # and tiny's attacker
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="200,000 clean and attacker sources, more than the limit"):
        load_scenario(raw)
    assert time.perf_counter() - started < 10  # was minutes: names.count(name) per source
    path = tmp_path / "many.toml"
    path.write_text("".join(f'[[clean]]\nname = "c{i}"\n' for i in range(200_000)))
    one_line_exit_2(runner.invoke(app, ["validate", str(path)]), "many.toml", "larger than")
    path.write_text("".join(f'[[clean]]\nname = "c{i}"\n' for i in range(20_000)))
    one_line_exit_2(runner.invoke(app, ["validate", str(path)]), "20,000 clean and attacker sources")


def test_many_unique_sources_within_the_limit_are_named_in_linear_time():
    raw = _tiny(clean=[{"name": f"c{i}"} for i in range(9_000)], attackers=[{"name": "c5"}])
    with pytest.raises(ConfigError, match="repeated: c5"):
        load_scenario(raw)


def test_splits_that_leave_data_unused_are_said_so_by_validate(tmp_path):
    raw = _tiny(data={"splits": {"pretrain": 0.1, "trusted": 0.1, "stream": 0.3, "attacker": 0.1, "test": 0.2}})
    result = runner.invoke(app, ["validate", str(write_scenario(tmp_path, raw))])
    assert result.exit_code == 0 and "data.splits leave 20% of the dataset unused" in result.output, result.output
    result = runner.invoke(app, ["validate", str(write_scenario(tmp_path, _tiny()))])
    assert result.exit_code == 0 and "unused" not in result.output


# --- resume: a FIFO where a run file belongs --------------------------------------------------------
@pytest.fixture
def stopped(tmp_path, stop_at_checkpoint) -> Path:
    """A checkpointed tiny run stopped after its first checkpoint."""
    return stop_at_checkpoint(_tiny(duration=4.0), tmp_path / "stopped", checkpoint_every=2.0)


@pytest.mark.parametrize("name", ["scenario.resolved.toml", "resume.json", "checkpoint/state.json",
                                  "checkpoint/state.safetensors"])
@pytest.mark.parametrize("special", ["fifo", "dev-zero"])
def test_resume_refuses_a_fifo_or_device_in_place_of_a_run_file(stopped, name, special):
    target = stopped / name
    if special == "fifo":
        _fifo(target)
    else:
        target.unlink()
        target.symlink_to("/dev/zero")
    before = _snapshot(stopped)
    one_line_exit_2(runner.invoke(app, ["run", "--resume", str(stopped), "--no-live"]), Path(name).name)
    assert _snapshot(stopped) == before


# --- the artifact cache: damage rebuilds, never hangs or crashes ------------------------------------
def _as_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "x").write_text("1")


def _as_dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


CACHE_DAMAGE: dict[str, Callable[[Path], None]] = {
    "folder": _as_folder,
    "fifo": _fifo,
    "dev-zero": _as_dev_zero,
    "deep-json": lambda path: path.write_text("[" * 100_000 + "]" * 100_000),
    "huge": lambda path: os.truncate(path, 64 << 30),  # sparse: 64 GiB that would be read to the end
}


@pytest.mark.parametrize("which", ["manifest", "weights"])
@pytest.mark.parametrize("damage", list(CACHE_DAMAGE))
def test_a_damaged_cache_entry_is_rebuilt(tmp_path, damage, which):
    cache = ArtifactCache(tmp_path / "cache")
    key = {"k": 1}
    cache.put("demo", key, {"w": torch.ones(2)})
    weights, manifest = cache.paths("demo", key)
    CACHE_DAMAGE[damage](manifest if which == "manifest" else weights)
    fits = []

    def fit() -> torch.Tensor:
        fits.append(1)
        return torch.zeros(2)

    def get() -> tuple[torch.Tensor, bool]:
        return cached_fit(cache, "demo", key, fit=fit, load=lambda t, m: t["w"], save=lambda w: ({"w": w}, {}))

    with pytest.warns(RuntimeWarning, match="damaged cache entry"):
        value, hit = get()
    assert not hit and torch.equal(value, torch.zeros(2)) and fits == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt: the next lookup is a clean hit
        value, hit = get()
    assert hit and torch.equal(value, torch.zeros(2)) and fits == [1]
    assert not Path("/dev/zero").is_file()  # the link was replaced, not written through


# --- report: refuses what it cannot draw from, writes nothing ---------------------------------------
_RUNS: dict[str, Path] = {}


@pytest.fixture
def report_run(tmp_path_factory) -> Callable[[Path], Path]:
    """A copy (in the given folder) of one tiny finished run that has examples.npz."""
    if "run" not in _RUNS:
        out = tmp_path_factory.mktemp("hostile-report") / "run"
        experiment.run(_tiny(), out=out, cache=False)
        assert (out / "examples.npz").is_file()
        _RUNS["run"] = out

    def copy_to(folder: Path) -> Path:
        return Path(shutil.copytree(_RUNS["run"], folder / "run", symlinks=True))
    return copy_to


def _rewrite_csv(path: Path, column: str, value: str) -> None:
    lines = path.read_text().splitlines()
    at = lines[0].split(",").index(column)
    row = lines[1].split(",")
    row[at] = value
    lines[1] = ",".join(row)
    path.write_text("\n".join(lines) + "\n")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _npz_bomb(path: Path) -> None:
    """A few hundred kilobytes that unpack to 300 MB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("poison.npy", "w",
                                                                                   force_zip64=True) as member:
        chunk = bytes(1 << 20)
        for _ in range(300):
            member.write(chunk)


REPORT_DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "examples-empty": (lambda run: (run / "examples.npz").write_bytes(b""), "examples.npz"),
    "examples-truncated": (lambda run: _truncate(run / "examples.npz"), "examples.npz"),
    "examples-fifo": (lambda run: _fifo(run / "examples.npz"), "examples.npz"),
    "examples-not-arrays": (lambda run: np.savez(run / "examples.npz", x=np.zeros(3)), "examples.npz"),
    "examples-bomb": (lambda run: _npz_bomb(run / "examples.npz"), "examples.npz"),
    "timeline-text": (lambda run: _rewrite_csv(run / "timeline.csv", "accuracy", "lots"), "timeline.csv"),
    "timeline-text-baseline": (lambda run: _rewrite_csv(run / "timeline.csv", "ca", "high"), "timeline.csv"),
    "timeline-garbage": (lambda run: (run / "timeline.csv").write_bytes(b"\xff\xfe\x00\x01zz\n\x02"), "timeline.csv"),
    "events-garbage": (lambda run: (run / "events.csv").write_text("lorem ipsum\ndolor sit amet\n"), "events.csv"),
    "events-text": (lambda run: _rewrite_csv(run / "events.csv", "boundary", "low"), "events.csv"),
    "events-dev-zero": (lambda run: _as_dev_zero(run / "events.csv"), "events.csv"),
    "scores-text": (lambda run: _rewrite_csv(run / "scores.csv", "score", "good"), "scores.csv"),
    "summary-deep": (lambda run: (run / "summary.json").write_text("[" * 100_000 + "]" * 100_000), "summary.json"),
    "scenario-deep": (lambda run: (run / "scenario.resolved.toml").write_text("x = " + "[" * 100_000),
                      "scenario.resolved.toml"),
}


@pytest.mark.parametrize("damage", list(REPORT_DAMAGE))
def test_report_refuses_a_damaged_run_and_writes_nothing(tmp_path, report_run, damage):
    run = report_run(tmp_path)
    change, needle = REPORT_DAMAGE[damage]
    change(run)
    before = _snapshot(run)
    one_line_exit_2(runner.invoke(app, ["report", str(run)]), needle)
    assert _snapshot(run) == before  # no report.md, no figures/


def test_report_of_a_sweep_refuses_text_metrics_and_damaged_sweep_json(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "results.csv").write_text("cell,seed,param:x,ca,da,accuracy_drop\n"
                                       "a,0,1,0.5,0.5,0.1\nb,0,2,lots,0.4,0.2\n")
    one_line_exit_2(runner.invoke(app, ["report", str(sweep)]), "results.csv", "'ca'")
    (sweep / "results.csv").write_text("cell,seed,param:defense,ca,da,accuracy_drop\n"
                                       "a,0,none,0.5,0.5,0.1\nb,0,oracle,0.6,0.4,0.2\n")
    (sweep / "sweep.json").write_text("[" * 100_000)
    one_line_exit_2(runner.invoke(app, ["report", str(sweep)]), "sweep.json")
    assert sorted(p.name for p in sweep.iterdir()) == ["results.csv", "sweep.json"]


# --- python -m streamsim -------------------------------------------------------------------------
def test_python_m_streamsim_does_not_import_from_the_current_folder(tmp_path):
    marker = tmp_path / "IMPORTED"
    for name in ("typer", "rich", "numpy"):
        (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write({name!r})\n")
    done = subprocess.run([sys.executable, "-m", "streamsim", "--version"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=HANG_S)
    assert done.returncode == 0 and "streamsim" in done.stdout, done.stderr
    assert not marker.exists(), f"imported {marker.read_text()} from the current folder"
