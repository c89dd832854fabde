"""Malformed and adversarial input: exit code 2, one line naming the problem, no traceback, and
nothing left behind — no run directory, complete or partial, and no change to a folder given to
``--resume`` or ``report``.

Two generators: hypothesis for scenario files (a fast subset, below), and a seeded generator of
1,000 cases (``test_fuzz_1000_generated_cases``, marked ``slow``) spanning scenario files, types,
ranges, tiny and huge numbers, paths, names, npz contents, plugin references, command lines, edited
run folders and edited checkpoints. ``test_fuzz_generated_subset`` runs 8 % of them in the quick suite.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import string
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from streamsim.presentation.cli import app

from .conftest import TINY

runner = CliRunner()

# (key path, values that must be rejected there)
BAD_VALUES: list[tuple[str, list[object]]] = [
    ("duration", [-1.0, 0, "long", math.nan, math.inf, 1e30, [], {}]),
    ("eval_every", [0, -5, "often", math.nan]),
    ("seed", [-1, "zero", 1.5, 2**63]),
    ("clean.0.batch_size", [0, -3, 10**9, "32", 3.5, math.nan]),
    ("clean.0.interval", [0, -1, math.inf, "1"]),
    ("clean.0.arrival", ["sometimes", 1]),
    ("clean.0.budget", [0, -10]),
    ("clean.0.drift.rotation_per_time", [1000.0, math.nan]),
    ("clean.0.drift.prior_shift", [{"at": 1.0, "priors": [1.0] * 3}, {"at": -1.0, "priors": [1.0] * 10}]),
    ("attackers.0.feedback_flip", [1.5, -0.1]),
    ("attackers.0.pool", ["validation"]),
    ("attackers.0.query_budget", [-1]),
    ("attackers.0.attack", [{"name": ""}, {}, {"name": "label-flip", "params": {"target": 99}},
                            {"name": "label-flip", "params": {"colour": 1}}, {"name": "nope"},
                            {"name": "os:nope"}, {"name": "no.such.module:Thing"}, {"name": "depois"},
                            {"name": "noise", "params": {"scale": math.nan}}, {"name": "noise", "params": {"kind": 3}}]),
    ("defense", [{}, {"name": "label-flip"}, {"name": "streamsim:__version__"}, {"name": "json:loads"},
                 {"name": "depois", "params": {"preset": "slow"}}, {"name": "depois", "params": {"k": "one"}}]),
    ("learner", [{"name": "small-cnn", "params": {"lr": math.nan}}, {"name": "river", "params": {"model": "nothing"}},
                 {"name": "river", "params": {"pool": 5}}, {"name": "tree"}]),
    ("data.dataset", ["imagenet", "npz:/no/such/file.npz", ""]),
    ("data.splits.test", [0, 2.0]),
    ("data.splits", [{"pretrain": 0.9, "test": 0.5}]),
    ("data.eval_size", [0, -1]),
    ("metrics.window", [0]),
    ("metrics", [{"window": 1, "colour": "red"}]),
    ("clean", [[]]),
]


def _set(raw: dict, path: str, value: object) -> dict:
    node = raw
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value
    return raw


@st.composite
def bad_scenarios(draw: st.DrawFn) -> bytes:
    raw = copy.deepcopy(TINY)
    kind = draw(st.sampled_from(["value", "unknown-key", "toml", "bytes", "empty"]))
    if kind == "value":
        path, values = draw(st.sampled_from(BAD_VALUES))
        value = draw(st.sampled_from(values))
        _set(raw, path, value)
        if path == "clean":
            raw["attackers"] = []
        return tomli_w.dumps(raw).encode()
    if kind == "unknown-key":
        tables = [raw, raw["data"], raw["learner"], raw["defense"], raw["clean"][0], raw["attackers"][0]]
        table = draw(st.sampled_from(tables))
        key = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12))
        if key in table or key in {"params", "name", "drift", "attack", "splits", "root", "dataset"}:
            key = "zz_" + key
        table[key] = draw(st.one_of(st.integers(), st.text(max_size=5), st.booleans()))
        return tomli_w.dumps(raw).encode()
    if kind == "toml":
        text = tomli_w.dumps(raw)
        cut = draw(st.integers(min_value=1, max_value=len(text) - 1))
        junk = draw(st.sampled_from(["= =", "[[", "\"unterminated", "key = ", "]]]", "x = 1\nx = 2"]))
        return (text[:cut] + "\n" + junk + "\n").encode()
    if kind == "bytes":
        prefix = tomli_w.dumps(raw).encode()
        return prefix + draw(st.binary(min_size=1, max_size=20)).replace(b"\n", b"") + b"\xff\xfe\n"
    return draw(st.sampled_from([b"clean = []\n", b"learner = {}\n", b"defense = 3\n", b"attackers = {}\n"]))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=bad_scenarios())
def test_every_malformed_scenario_is_one_line_exit_2_and_leaves_nothing(tmp_path_factory, content):
    folder = tmp_path_factory.mktemp("fuzz")
    path = Path(folder) / "s.toml"
    path.write_bytes(content)
    out = Path(folder) / "run"
    result = runner.invoke(app, ["run", str(path), "--out", str(out), "--no-live"])
    assert result.exit_code == 2, (content, result.output)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamsim: error: "), result.output
    assert "Traceback" not in result.output
    assert list(Path(folder).iterdir()) == [path], "no run directory, complete or partial"


# --- 1,000 generated cases -------------------------------------------------------------------------
# Each generator draws one case from a seeded random.Random: the command line to run, and the folder
# whose contents must not change (the run's --out must not appear at all).
Case = tuple[list[str], Path]
MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / "streamsim-fuzz-PWNED"


class Planted:
    """A class whose construction would leave a marker: no fuzz case may ever construct it."""

    def __init__(self, **_: object) -> None:
        MARKER.write_text("constructed")


def _scenario_file(folder: Path, raw: dict | bytes) -> Path:
    path = folder / "s.toml"
    path.write_bytes(raw if isinstance(raw, bytes) else tomli_w.dumps(raw).encode())
    return path


def _run(folder: Path, raw: dict | bytes, rng: random.Random, *extra: str) -> list[str]:
    path = str(_scenario_file(folder, raw))
    if rng.random() < 0.3:
        return ["validate", path, *extra]
    return ["run", path, "--out", str(folder / "run"), "--no-live", *extra]


def gen_scenario_file(rng: random.Random, folder: Path, _: dict) -> list[str]:
    raw = copy.deepcopy(TINY)
    kind = rng.choice(["value", "value", "unknown-key", "toml", "bytes", "empty", "deep"])
    if kind == "value":
        path, values = rng.choice(BAD_VALUES)
        _set(raw, path, rng.choice(values))
        if path == "clean":
            raw["attackers"] = []
        return _run(folder, raw, rng)
    if kind == "unknown-key":
        table = rng.choice([raw, raw["data"], raw["clean"][0], raw["attackers"][0], raw.setdefault("metrics", {})])
        table["zz_" + "".join(rng.choices(string.ascii_lowercase + "_", k=rng.randint(1, 12)))] = rng.choice([1, "x", True, 2.5])
        return _run(folder, raw, rng)
    text = tomli_w.dumps(raw)
    if kind == "toml":
        cut = rng.randint(1, len(text) - 1)
        return _run(folder, (text[:cut] + "\n" + rng.choice(["= =", "[[", '"open', "key = ", "]]]", "x = 1\nx = 2"]) + "\n").encode(), rng)
    if kind == "bytes":
        return _run(folder, text.encode() + bytes(rng.randrange(256) for _ in range(rng.randint(1, 20))).replace(b"\n", b"") + b"\xff\xfe\n", rng)
    if kind == "deep":
        depth = rng.choice([40, 100, 1000, 20000])
        return _run(folder, f"x = {'[' * depth}{']' * depth}\n".encode(), rng)
    return _run(folder, rng.choice([b"clean = []\n", b"learner = {}\n", b"defense = 3\n", b"attackers = {}\n", b"\x00"]), rng)


# Tiny and huge numbers, each out of range where it is set (so the case must be refused).
NUMBERS: list[tuple[str, list[object]]] = [
    ("eval_every", [1e-300, 5e-324, -1e-300, 1e-6, 0.0, math.inf]),
    ("clean.0.interval", [1e-300, 5e-324, 1e-7, -1e300]),
    ("clean.0.rate", [1e300, 1e7, 1.7e308, -1.0]),
    ("duration", [1e300, 1e8, -1e-300, 0.0]),
    ("learner.params.lr", [1e300, 11.0, -1e-300, 0.0, 1e9]),
    ("learner.params.pretrain_epochs", [-1, 10**7, 2**63, -(2**63)]),
    ("learner.params.steps_per_batch", [-5, 10**9]),
    ("seed", [-1, 2**63, 2**64, -(2**70)]),
    ("threads", [0, -1, 1025, 10**6]),
    ("clean.0.batch_size", [0, 10**6, -1, 2**70]),
    ("metrics.adwin_delta", [0.0, 1.0, 1e300, -5e-324]),
    ("attackers.0.feedback_delay", [-1e-300, math.nan, math.inf]),
    ("attackers.0.stop", [-1.0, -1e300]),
    ("data.eval_size", [0, -(2**63)]),
    ("data.splits.stream", [0.0, 1e-300]),
    ("data.splits.test", [5e-324, 1.0000001]),
    ("learner.update", [{"policy": "buffered", "interval": 1e-300}, {"policy": "buffered", "every": 0},
                        {"policy": "buffered", "every": 2**70}, {"policy": "replay", "mix": 1.0},
                        {"policy": "window-retrain", "interval": 5e-324}, {"policy": "buffered", "steps": 10**9, "every": 1}]),
]


def gen_number(rng: random.Random, folder: Path, _: dict) -> list[str]:
    if rng.random() < 0.25:
        every = rng.choice(["1e-300", "5e-324", "nan", "inf", "-inf", "0", "-1", "1e-7", "soon", "", "1e400"])
        return ["run", str(_scenario_file(folder, TINY)), "--out", str(folder / "run"), "--no-live", "--checkpoint-every", every]
    raw = copy.deepcopy(TINY)
    key, values = rng.choice(NUMBERS)
    if key == "clean.0.rate":
        raw["clean"][0]["arrival"] = "poisson"
    _set(raw, key, rng.choice(values))
    return _run(folder, raw, rng)


def gen_path(rng: random.Random, folder: Path, _: dict) -> list[str]:
    raw = copy.deepcopy(TINY)
    blocker = folder / "a-file"
    blocker.write_text("x")
    kind = rng.choice(["npz", "root", "out", "scenario"])
    if kind == "npz":
        raw["data"]["dataset"] = "npz:" + rng.choice(["", "/", "/dev/null", "/proc/self/status", str(folder), "../../../../etc/passwd",
                                                      "a" * 5000, "x\u0000y", "~/nothing.npz", str(blocker), str(blocker / "x.npz")])
        return _run(folder, raw, rng)
    if kind == "root":
        raw["data"].update(dataset=rng.choice(["mnist", "fashion-mnist"]),
                           root=rng.choice(["/nonexistent", "/dev/null", str(blocker), str(folder), "\u0000", "x" * 4096]))
        return _run(folder, raw, rng)
    if kind == "out":
        (folder / "full").mkdir(exist_ok=True)
        (folder / "full" / "something").write_text("")
        out = rng.choice([blocker / "run", blocker, folder / "full", Path("/proc/streamsim-run"), Path("/sys/streamsim")])
        return ["run", str(_scenario_file(folder, TINY)), "--out", str(out), "--no-live"]
    return ["validate", rng.choice([str(folder), str(folder / "missing.toml"), str(blocker), "/proc/self/environ/x",
                                   "no-such-builtin", "../" * 20 + "etc/shadow"])]


def gen_name(rng: random.Random, folder: Path, _: dict) -> list[str]:
    raw = copy.deepcopy(TINY)
    bad = rng.choice(["", " ", "../x", "a/b", "x:y:z", ":", "::", "depois ", "dé-pois", "\u202e", "a" * 300, ".", "os:", ":system"])
    kind = rng.choice(["defense", "attack", "learner", "dataset", "duplicate", "override"])
    if kind == "defense":
        raw["defense"] = {"name": bad}
    elif kind == "attack":
        raw["attackers"][0]["attack"] = {"name": bad}
    elif kind == "learner":
        raw["learner"] = {"name": bad}
    elif kind == "dataset":
        raw["data"]["dataset"] = bad
    elif kind == "duplicate":
        raw["attackers"][0]["name"] = raw["clean"][0]["name"] = rng.choice(["x", "../x", "clean"])
    else:
        key = rng.choice(["", "a..b", "clean.99.batch_size", "attackers.-1.batch_size", "clean.x.y", "seed.x", ".", "data..dataset"])
        return _run(folder, raw, rng, "--set", f"{key}={rng.choice(['1', 'x', '[]'])}")
    return _run(folder, raw, rng)


def gen_npz(rng: random.Random, folder: Path, _: dict) -> list[str]:
    raw = copy.deepcopy(TINY)
    path = folder / "d.npz"
    n = rng.choice([0, 1, 10, 50])
    x = np.zeros((max(n, 1), 28, 28), np.uint8)
    y = np.arange(max(n, 1)) % 10
    kind = rng.choice(["x-float", "x-nan", "x-int", "x-dtype", "x-shape", "y-float", "y-range", "y-len", "y-dtype",
                       "keys", "empty", "truncated", "bytes", "pickle"])
    arrays: dict[str, np.ndarray] = {"x": x, "y": y}
    if kind == "x-float":
        arrays["x"] = x.astype(np.float32) + rng.choice([1.5, 255.0, -0.5, 1e30])
    elif kind == "x-nan":
        arrays["x"] = x.astype(np.float64)
        arrays["x"].flat[rng.randrange(arrays["x"].size)] = rng.choice([math.nan, math.inf, -math.inf])
    elif kind == "x-int":
        arrays["x"] = x.astype(rng.choice([np.int16, np.int64])) + rng.choice([-1, 256, 10**4])
    elif kind == "x-dtype":
        arrays["x"] = x.astype(rng.choice([np.complex64, np.bool_, np.str_]))
    elif kind == "x-shape":
        arrays["x"] = np.zeros(rng.choice([(10, 28), (10, 28, 27), (10, 1, 28, 28), (28, 28), ()]), np.uint8)
    elif kind == "y-float":
        arrays["y"] = y + rng.choice([0.5, 0.25, math.nan])
    elif kind == "y-range":
        arrays["y"] = y + rng.choice([10, -20, 2**40])
    elif kind == "y-len":
        arrays["y"] = np.arange(len(y) + rng.choice([1, -1, 5])) % 10
    elif kind == "y-dtype":
        arrays["y"] = rng.choice([y.astype(np.str_), y.astype(np.float32), y.astype(np.bool_), y.reshape(-1, 1)])
    elif kind == "keys":
        arrays = {rng.choice(["X", "images", "x"]): x}
    elif kind == "empty":
        arrays = {"x": np.zeros((0, 28, 28), np.uint8), "y": np.zeros(0, np.int64)}
    if kind in ("truncated", "bytes"):
        np.savez(path, x=x, y=y)
        data = path.read_bytes()
        path.write_bytes(data[: rng.randrange(len(data))] if kind == "truncated"
                         else bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))))
    elif kind == "pickle":
        np.savez(path, x=np.array([Planted], dtype=object), y=y)
    else:
        np.savez(path, **arrays)
    raw["data"]["dataset"] = f"npz:{path}"
    return _run(folder, raw, rng)


PLUGIN_REFS = ["os:system", "subprocess:run", "builtins:eval", "builtins:exec", "shutil:rmtree", "importlib:import_module",
               "json:loads", "sys:exit", "pathlib:Path", "streamsim.presentation.cli:app", "tests.test_fuzz:Planted",
               "tests.test_fuzz:MARKER", "streamsim.scenario.registry:resolve", "os.path:join", "ctypes:CDLL", "no.such:Thing"]


def gen_plugin(rng: random.Random, folder: Path, _: dict) -> list[str]:
    raw = copy.deepcopy(TINY)
    ref = rng.choice(PLUGIN_REFS)
    params = {"command": f"touch {MARKER}", "path": str(folder)} if rng.random() < 0.5 else {}
    kind = rng.choice(["defense", "attack", "learner", "dataset"])
    if kind == "defense":
        raw["defense"] = {"name": ref, "params": params}
    elif kind == "attack":
        raw["attackers"][0]["attack"] = {"name": ref, "params": params}
    elif kind == "learner":
        raw["learner"] = {"name": ref, "params": params}
    else:
        raw["data"]["dataset"] = ref
    allow = ["-p", ref.partition(":")[0]] if rng.random() < 0.5 else []  # allowed modules are still type-checked
    return _run(folder, raw, rng, *allow)


def gen_cli(rng: random.Random, folder: Path, _: dict) -> list[str]:
    path = str(_scenario_file(folder, TINY))
    return rng.choice([
        ["run", path, "--seed", rng.choice(["-1", "abc", "1.5", str(2**64)])],
        ["run", path, rng.choice(["--bogus", "-z", "--set"])],
        ["sweep", path, "--out", str(folder / "run"), "--grid", rng.choice(["duration=,,,", "=1", "duration", "seed=-1", "x.y=1,2", "duration=1,1e300"])],
        ["sweep", path, "--out", str(folder / "run"), "--grid", "duration=1", "--seeds", rng.choice(["-1", "a", "1,1", ",", str(2**64)])],
        ["sweep", path, "--out", str(folder / "run"), "--grid", "duration=1", "--jobs", rng.choice(["0", "-3", "x"])],
        ["run", "--resume", str(folder / "missing")],
        ["run", "--resume", str(folder), path],
        ["report", str(folder / "missing")],
        ["validate", path, "--allow-import", rng.choice(["", "a b", "../x", "x;y", "os:system"])],
        [rng.choice(["runn", "", "--nope", "list extra"])],
    ])


def _edit_checkpointed(rng: random.Random, run: Path) -> None:
    target = rng.choice(["resume", "scenario", "state", "tensors", "delete", "finished"])
    if target == "resume":
        doc = json.loads((run / "resume.json").read_text())
        key = rng.choice(list(doc))
        if rng.random() < 0.8:
            doc[key] = rng.choice([math.nan, -1, "x", None, [], {}, 0, "0" * 63])
        else:
            del doc[key]
        (run / "resume.json").write_text(rng.choice([json.dumps(doc), "{", "[]", "\xff"]) if rng.random() < 0.2 else json.dumps(doc))
    elif target == "scenario":
        path = run / "scenario.resolved.toml"
        lines = path.read_text().splitlines()
        i = rng.randrange(len(lines))
        lines[i] = rng.choice([lines[i] + "0", lines[i].replace("= ", "= 1"), "", "# edited", lines[i].upper()])
        text = "\n".join(lines) + "\n"
        path.write_text(text if text != path.read_text() else text + "# edited\n")
    elif target == "state":
        path = run / "checkpoint" / "state.json"
        original = path.read_bytes()
        while True:  # an edit that changes what the file says (1e-05 → 1E-05 does not)
            data = bytearray(original)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            try:
                if json.loads(bytes(data)) == json.loads(original):
                    continue
            except ValueError:
                pass
            break
        path.write_bytes(bytes(data))
    elif target == "tensors":
        path = run / "checkpoint" / "state.safetensors"
        data = bytearray(path.read_bytes())
        if rng.random() < 0.5:
            path.write_bytes(bytes(data[: rng.randrange(len(data))]))
        else:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            path.write_bytes(bytes(data))
    elif target == "delete":
        (run / rng.choice(["resume.json", "checkpoint/state.json", "checkpoint/state.safetensors", "scenario.resolved.toml"])).unlink()
    else:
        (run / "summary.json").write_text("{}")


def gen_checkpoint(rng: random.Random, folder: Path, fixtures: dict) -> list[str]:
    run = folder / "stopped"
    shutil.copytree(fixtures["stopped"], run)
    _edit_checkpointed(rng, run)
    return ["run", "--resume", str(run), "--no-live"]


def gen_run_folder(rng: random.Random, folder: Path, fixtures: dict) -> list[str]:
    run = folder / "finished"
    shutil.copytree(fixtures["finished"], run)
    kind = rng.choice(["delete", "summary", "timeline", "results"])
    if kind == "delete":
        (run / rng.choice(["summary.json", "timeline.csv", "events.csv", "scores.csv", "scenario.resolved.toml"])).unlink()
    elif kind == "summary":
        (run / "summary.json").write_bytes(rng.choice([b"", b"\xff\xfe", b"[1,2]", b"{nope", b"null", b'"x"']))
    elif kind == "timeline":
        (run / "timeline.csv").write_bytes(rng.choice([b"", b"\xff\xfe", b"nothing,useful\n", b"time\n1\n", b"\x00\x01"]))
    else:
        (run / "results.csv").write_text(rng.choice(["", "cell,seed\n", "a,b\n1\n\"", "cell,seed,param:x\n"]))
    return ["report", str(run)]


# generator, share of the 1,000 cases
GENERATORS: list[tuple[Callable[[random.Random, Path, dict], list[str]], int]] = [
    (gen_scenario_file, 250), (gen_number, 150), (gen_path, 100), (gen_name, 100), (gen_npz, 150),
    (gen_plugin, 100), (gen_cli, 50), (gen_checkpoint, 75), (gen_run_folder, 25),
]
assert sum(n for _, n in GENERATORS) == 1000


@pytest.fixture(scope="module")
def fuzz_fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A checkpointed run stopped after its first checkpoint, and a finished run, built once."""
    import streamsim.running.experiment as experiment

    os.environ.setdefault("STREAMSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    raw = copy.deepcopy(TINY)
    raw.update(duration=4.0, eval_every=2.0)
    raw["learner"]["params"]["pretrain_epochs"] = 1
    base = tmp_path_factory.mktemp("fuzz-fixtures")
    real = experiment.save_checkpoint

    class Stop(Exception):
        pass

    def save_then_stop(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)
        raise Stop

    experiment.save_checkpoint = save_then_stop
    try:
        with pytest.raises(Stop):
            experiment.run(raw, out=base / "stopped", checkpoint_every=1.0)
    finally:
        experiment.save_checkpoint = real
    experiment.run(raw, out=base / "finished")
    return {"stopped": base / "stopped", "finished": base / "finished"}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


def _run_cases(share: float, seed: int, fixtures: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> int:
    count = 0
    for gen, n in GENERATORS:
        rng = random.Random(f"{seed}-{gen.__name__}")
        for i in range(max(1, round(n * share))):
            folder = tmp_path_factory.mktemp(gen.__name__)
            args = gen(rng, folder, fixtures)
            before = _snapshot(folder)
            result = runner.invoke(app, args)
            case = f"{gen.__name__} #{i}: {args!r}"
            assert result.exit_code == 2, (case, result.output)
            lines = [line for line in result.output.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("streamsim: error: "), (case, result.output)
            assert "Traceback" not in result.output, case
            assert _snapshot(folder) == before, f"{case}: something was written or left behind"
            assert not MARKER.exists(), f"{case}: plugin code ran"
            count += 1
    return count


def test_fuzz_generated_subset(fuzz_fixtures, tmp_path_factory):
    assert _run_cases(0.08, 0, fuzz_fixtures, tmp_path_factory) == 80


@pytest.mark.slow
def test_fuzz_1000_generated_cases(fuzz_fixtures, tmp_path_factory):
    assert _run_cases(1.0, 1, fuzz_fixtures, tmp_path_factory) == 1000
