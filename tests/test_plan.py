"""One plan per run: the checks before a run build every plugin and load the data, and the run
executes what they built — each plugin is constructed once, the dataset loaded once."""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import pytest
import tomli_w
from typer.testing import CliRunner

from attacks.label_flip import LabelFlip
from defenses.knn import KNNSanitizer
from streamsim.learners.torch_cnn import SmallCNNLearner
from streamsim.presentation.cli import app
from streamsim.running import preflight
from streamsim.scenario.config import load_scenario

runner = CliRunner()


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each plugin class is constructed, and the dataset loaded (``"data"``)."""
    counts: Counter[str] = Counter()
    for cls in (SmallCNNLearner, KNNSanitizer, LabelFlip):
        init = cls.__init__

        @functools.wraps(init)  # the registry still reads the real signature and type hints
        def counted(self: Any, *args: Any, _init: Any = init, _name: str = cls.__name__, **kwargs: Any) -> None:
            counts[_name] += 1
            _init(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counted)
    load_raw = preflight.load_raw

    def counted_load(*args: Any, **kwargs: Any) -> Any:
        counts["data"] += 1
        return load_raw(*args, **kwargs)

    monkeypatch.setattr(preflight, "load_raw", counted_load)
    return counts


def _scenario(tmp_path, tiny) -> str:
    tiny.update(duration=4.0, defense={"name": "knn"})
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(tiny))
    return str(path)


def test_one_streamsim_run_builds_each_plugin_once_and_loads_the_data_once(tmp_path, tiny, built):
    res = runner.invoke(app, ["run", _scenario(tmp_path, tiny), "--out", str(tmp_path / "run"), "--no-live"])
    assert res.exit_code == 0, res.output
    assert built == {"SmallCNNLearner": 1, "KNNSanitizer": 1, "LabelFlip": 1, "data": 1}


def test_validate_builds_each_plugin_once_and_trains_nothing(tmp_path, tiny, built, monkeypatch):
    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("validate trained the learner")

    monkeypatch.setattr(SmallCNNLearner, "pretrain", no_training)
    res = runner.invoke(app, ["validate", _scenario(tmp_path, tiny)])
    assert res.exit_code == 0, res.output
    assert built == {"SmallCNNLearner": 1, "KNNSanitizer": 1, "LabelFlip": 1, "data": 1}


def test_the_plan_holds_the_resolved_scenario_and_the_components_it_checked(tiny):
    tiny["defense"] = {"name": "knn"}
    plan = preflight.check(load_scenario(tiny), cache=False)
    assert plan.resolved.learner.params["lr"] == 1e-3  # every plugin default filled in
    assert "lr" not in plan.scenario.learner.params  # the scenario as given
    assert isinstance(plan.learner, SmallCNNLearner) and isinstance(plan.defense, KNNSanitizer)
    assert list(plan.attacks) == ["flipper"] and isinstance(plan.attacks["flipper"], LabelFlip)
    assert plan.raw.x.shape == (5000, 28, 28) and plan.device == "cpu" and plan.cache is False
