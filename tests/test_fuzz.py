"""Malformed and adversarial scenario files: exit code 2, one line naming the problem, no traceback,
and no run directory — never a partially written one. Generated with hypothesis."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from streamsim.cli import app

from .conftest import TINY

pytestmark = pytest.mark.slow  # fuzzing: hundreds of CLI runs

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


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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
