"""One conformance suite for every registered plugin, built-in or third-party alike, and the examples.

The checks themselves live in :mod:`streamsim.testing` (public: plugin authors run them too); this
file runs them over everything registered, and keeps the project's own rules about its built-ins.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import torch

from streamsim import Attack, Checkpointable, Defense, Verdicts, has
from streamsim.scenario.registry import GROUPS, available, build, resolve
from streamsim.testing import check_attack, check_dataset, check_defense, check_learner, unit_test_params

REPO = Path(__file__).resolve().parent.parent
CHECKS = {"learner": check_learner, "defense": check_defense, "attack": check_attack}


def names(kind: str) -> list[str]:
    return [p.name for p in available(kind)]


@pytest.mark.parametrize("kind", list(GROUPS))
def test_every_plugin_is_described_and_constructible_with_its_unit_test_settings(kind):
    for info in available(kind):
        assert info.description and not info.description.startswith("(fails"), info
        obj = resolve(kind, info.name)
        if kind != "dataset":
            build(kind, info.name, unit_test_params(obj), kind)
        else:
            assert callable(obj)


@pytest.mark.parametrize("name", names("learner"))
def test_learner_conforms(name):
    check_learner(resolve("learner", name))


@pytest.mark.parametrize("name", names("defense"))
def test_defense_conforms(name):
    check_defense(resolve("defense", name))


@pytest.mark.parametrize("name", names("attack"))
def test_attack_conforms(name):
    check_attack(resolve("attack", name))


# the black-box FGSM/PGD, whose shadows are distilled from a river target's answers
@pytest.mark.parametrize("name", ["fgsm", "pgd"])
def test_black_box_gradient_attacks_conform_against_a_river_target(name):
    check_attack(resolve("attack", name), {"knowledge": "posteriors", "shadow": {"epochs": 2, "critic_epochs": 2}},
                 data=["vectors"], target="river")


@pytest.mark.parametrize("name", names("dataset"))
def test_datasets_load_or_say_how_to_get_them(name):
    check_dataset(resolve("dataset", name))


@pytest.mark.parametrize(("check", "ref"), [(check_defense, "examples.border_defense:BorderInk"),
                                            (check_attack, "examples.backdoor_attack:Backdoor")])
def test_examples_conform(check, ref):
    module, _, attr = ref.partition(":")
    check(getattr(importlib.import_module(module), attr))


def test_every_built_in_plugin_says_what_data_it_handles():
    def handles_vectors(kind: str) -> list[str]:
        return [n for n in names(kind) if "vectors" in getattr(resolve(kind, n), "accepts", ("images",))]

    # learners: the CNNs are image-only; everything else handles both
    assert handles_vectors("learner") == ["mlp", "river"]
    assert set(handles_vectors("defense")) == set(names("defense"))
    assert set(handles_vectors("attack")) == set(names("attack"))


# Built-ins that cannot be checkpointed, and why: `run --checkpoint-every` refuses them up front.
NOT_CHECKPOINTABLE = {"RiverLearner": "a river model could only be saved by pickling"}


@pytest.mark.parametrize("kind", list(CHECKS))
def test_built_ins_support_checkpoints_unless_listed_as_unable(kind):
    # third-party plugins may opt out; the checks round-trip whoever opts in
    for name in names(kind):
        instance, _ = build(kind, name, unit_test_params(resolve(kind, name)), kind)
        assert has(instance, Checkpointable) or type(instance).__name__ in NOT_CHECKPOINTABLE, \
            f"built-in {kind} {name} neither supports checkpoints nor is listed as unable to"


# --- the checks catch what they say they check ----------------------------------------------------------
SmallCNN = resolve("learner", "small-cnn")


class Unnormalised(SmallCNN):
    """Probabilities that sum to two."""

    def predict_proba(self, x):
        return super().predict_proba(x) * 2


class Forgetful(SmallCNN):
    """Restores its network but not its optimizer's moments."""

    def restore_state(self, state):
        self.model.load_state_dict(state["model"])


class OffBoundary(Defense):
    """Accepts everything, whatever its score and boundary say."""

    boundary = 0.0

    def score(self, x, claimed):
        return x.flatten(1).mean(1)

    def screen(self, batch):
        return Verdicts(accept=torch.ones(len(batch), dtype=torch.bool), score=self.score(batch.x, batch.labels))


class OutOfRange(Attack):
    """Pushes pixels past 1."""

    def craft(self, base, context):
        return base.with_(x=base.x + 5)


class Idle(Attack):
    """Sends its base samples as they are."""

    def craft(self, base, context):
        return base


class Unseeded(Attack):
    """Draws its noise from torch's global generator, not the one it is handed."""

    def craft(self, base, context):
        return base.with_(x=(base.x + 0.1 * torch.rand(base.x.shape)).clamp(-1, 1))


class Expensive(Defense):
    """Refuses settings too costly for a unit test; its hook gives cheap ones."""

    def __init__(self, steps: int = 10**6) -> None:
        if steps > 10:
            raise ValueError("steps too many for a unit test")
        self.steps = steps

    @classmethod
    def _unit_test_params(cls):
        return {"steps": 3}

    def screen(self, batch):
        return Verdicts.accept_all(len(batch))


@pytest.mark.parametrize(("check", "plugin", "message"), [
    (check_learner, Unnormalised, "Unnormalised on images: predict_proba rows are not probabilities"),
    (check_learner, Forgetful, "Forgetful on images: a learner restored from its checkpoint predicts differently"),
    (check_defense, OffBoundary, "OffBoundary on images: screen does not accept exactly the scores >= boundary"),
    (check_attack, OutOfRange, "OutOfRange on images: a crafted sample left the data's range"),
    (check_attack, Idle, "Idle on images: craft returned its base samples unchanged"),
    (check_attack, Unseeded, "Unseeded on images: two attacks from the same seeds crafted differently"),
])
def test_a_broken_plugin_fails_its_check_naming_itself_and_the_property(check, plugin, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check(plugin)


def test_the_checks_use_a_plugins_cheap_settings_unless_given_others():
    check_defense(Expensive)  # constructible only with its _unit_test_params()
    with pytest.raises(ValueError, match="steps too many"):
        check_defense(Expensive, {"steps": 100})


def test_the_plugin_guides_example_runs():
    guide = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = guide[guide.index("### In your tests"):]
    body = re.search(r"^```python\n(.*?)^```$", section, re.S | re.M)[1]
    assert "check_defense(BorderInk)" in body
    exec(compile(body, "docs/plugins.md", "exec"), {})  # noqa: S102
