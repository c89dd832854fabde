"""End-to-end behaviour of the simulator on tiny real data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import streamsim
from streamsim import Attack, Batch, Defense, Verdicts
from streamsim.artifacts.diagnostics import WALL_CLOCK_KEYS
from streamsim.core.records import ScreenRecord
from streamsim.running.experiment import load_data
from streamsim.running.preflight import build_components
from streamsim.scenario.config import load_scenario
from streamsim.simulation.simulator import Simulation
from streamsim.simulation.threat import TargetView


def test_label_flip_without_defense_lowers_accuracy_below_baseline(tiny):
    r = streamsim.run(tiny, out=None)
    s = r.summary
    assert s["ca"] == 0.0 and s["accepted_poisons"] == s["poisons"] > 0
    assert s["accuracy_drop"] > 0.05, s  # guards that poison reaches the learner undefended (seeded tiny run)
    assert s["final_accuracy"] < s["baseline_final_accuracy"] - 0.05


def test_oracle_keeps_accuracy_near_baseline_and_rejects_every_poison(tiny):
    tiny["defense"] = {"name": "oracle"}
    s = streamsim.run(tiny, out=None).summary
    assert s["ca"] == 1.0 and s["da"] == 1.0 and s["clean_frr"] == 0.0
    assert s["precision"] == 1.0 and s["f1"] == 1.0
    # nothing poisoned was learned: the attacked learner saw exactly the baseline's clean batches
    assert abs(s["accuracy_drop"]) < 1e-9


def test_a_fixed_seed_reproduces_a_run_and_another_seed_does_not(tiny):
    a = streamsim.run(tiny, out=None, baseline=False)
    b = streamsim.run(tiny, out=None, baseline=False)
    c = streamsim.run(tiny, out=None, baseline=False, seed=1)
    drop = WALL_CLOCK_KEYS  # wall time, not a result
    assert {k: v for k, v in a.summary.items() if k not in drop} == {k: v for k, v in b.summary.items() if k not in drop}
    assert a.timeline.equals(b.timeline) and a.events.equals(b.events)
    assert a.timeline["accuracy"].tolist() != c.timeline["accuracy"].tolist()


@pytest.mark.parametrize("model", ["linear_model.SoftmaxRegression", "linear_model.LogisticRegression"])
def test_river_learner_runs_a_stream(tiny, model):
    tiny["learner"] = {"name": "river", "params": {"model": model, "pool": 4}}
    tiny.update(duration=6.0, eval_every=3.0)
    r = streamsim.run(tiny, out=None)
    assert r.timeline.time.tolist() == [0.0, 3.0, 6.0]
    assert r.summary["initial_accuracy"] > 0.3  # it learned something from the pretrain split (chance is 0.1)
    assert r.summary["poisons"] == 6 * 64


class HalfDefense(Defense):
    """Rejects the even-indexed samples of each batch: verdicts known by construction."""

    def screen(self, batch: Batch) -> Verdicts:
        accept = torch.arange(len(batch)) % 2 == 1
        return Verdicts(accept=accept, score=accept.float())


@pytest.fixture(autouse=True)
def _allow_this_module(monkeypatch):  # noqa: ANN001 - the toy defenses here are module:attr references
    monkeypatch.setenv("STREAMSIM_ALLOW_IMPORT", "tests.test_simulation")


def test_counts_follow_the_verdicts_exactly(tiny):
    tiny["defense"] = {"name": "tests.test_simulation:HalfDefense"}
    tiny["attackers"][0]["batch_size"] = 10
    r = streamsim.run(tiny, out=None, baseline=False)
    s = r.summary
    assert s["ca"] == 0.5
    assert s["clean_frr"] == 0.5
    assert s["precision"] == pytest.approx(10 / 42 * 0 + 5 / 21)  # 5 rejected poisons of 21 rejected per step
    ev = r.events
    attack_rows = ev[ev.kind == "attack"]
    # da counts rejected poisons plus accepted poisons the model still classifies by their true label
    expected_da = (attack_rows.rejected_poison.sum() + attack_rows.accepted_poison_correct.sum()) / attack_rows.n_poison.sum()
    assert s["da"] == pytest.approx(expected_da)
    assert s["ca"] <= s["da"] <= 1.0


class Recorder(Attack):
    """Remembers every observation it gets, and when."""

    knowledge = "verdicts"

    def __init__(self) -> None:
        self.seen: list[tuple[float, float, torch.Tensor | None]] = []
        self.now = 0.0

    def craft(self, base, context):
        self.now = context.time
        return base.with_(labels=(base.labels + 1) % 10)

    def observe(self, observation):
        assert observation.time >= observation.submitted_at
        self.seen.append((observation.time, observation.submitted_at, observation.accepted))


def _simulate(tiny, attack, defense_name="tests.test_simulation:HalfDefense", **source):
    tiny["defense"] = {"name": defense_name}
    tiny["attackers"] = [{"name": "rec", "batch_size": 8, "attack": {"name": "label-flip"}, **source}]
    sc = load_scenario(tiny)
    learner, defense, _, _ = build_components(sc)
    splits, _ = load_data(sc.data, sc.seed)
    learner.pretrain(splits["pretrain"].x[:64], splits["pretrain"].labels[:64], streamsim.SetupContext(seed=0))
    view = TargetView(attack.knowledge, learner, defense, source.get("query_budget"))
    records = []
    sim = Simulation(sc, splits, learner, defense, {"rec": (attack, view)}, records.append)
    sim.run_to_end()
    return records


def test_delayed_feedback_is_never_visible_before_its_delay(tiny):
    attack = Recorder()
    _simulate(tiny, attack, feedback_delay=2.5)
    assert attack.seen
    for time, submitted, accepted in attack.seen:
        assert time == pytest.approx(submitted + 2.5)
        assert accepted is not None
    # the last batches' verdicts would arrive after the end of the run: never delivered
    assert max(t for t, _, _ in attack.seen) <= tiny["duration"]


def test_noisy_feedback_flips_about_the_given_fraction(tiny):
    attack = Recorder()
    _simulate(tiny, attack, feedback_flip=0.3)
    seen = torch.cat([a for _, _, a in attack.seen])
    truth = (torch.arange(8) % 2 == 1).repeat(len(attack.seen))
    flipped = (seen != truth).float().mean().item()
    assert 0.15 < flipped < 0.45  # guards feedback_flip = 0.3: a binomial share, seeded, within wide bounds


def test_effects_attackers_get_no_verdicts(tiny):
    attack = Recorder()
    attack.knowledge = "effects"
    _simulate(tiny, attack)
    assert attack.seen and all(a is None for _, _, a in attack.seen)


def test_sample_budget_and_stop_time_bound_a_source(tiny):
    tiny["attackers"][0].update(budget=100, batch_size=64)
    tiny["clean"][0].update(stop=5.0)
    r = streamsim.run(tiny, out=None, baseline=False)
    ev = r.events
    assert ev[ev.kind == "attack"].n.sum() == 100
    assert ev[ev.kind == "clean"].time.max() < 5.0


def test_poisson_arrivals_vary_and_average_the_rate(tiny):
    tiny["duration"] = 40.0
    tiny["attackers"] = []
    tiny["clean"][0].update(arrival="poisson", rate=2.0, batch_size=4)
    tiny["learner"]["params"]["update"] = False
    r = streamsim.run(tiny, out=None, baseline=False)
    gaps = np.diff(r.events.time.to_numpy())
    assert gaps.std() > 0.1  # guards Poisson arrivals: gaps vary (fixed arrivals would give 0)
    assert 50 < len(r.events) < 110  # ~80 expected


def test_rotation_drift_lowers_accuracy_and_is_not_poison(tiny):
    tiny["attackers"] = []
    tiny["duration"] = 30.0
    tiny["eval_every"] = 30.0
    tiny["learner"]["params"]["update"] = False
    tiny["clean"][0]["drift"] = {"rotation_per_time": 3.0}
    r = streamsim.run(tiny, out=None, baseline=False)
    ev = r.events
    early = ev[ev.time < 5].prequential_errors.sum() / ev[ev.time < 5].n.sum()
    late = ev[ev.time > 20].prequential_errors.sum() / ev[ev.time > 20].n.sum()
    assert late > early + 0.2
    assert r.summary["poisons"] == 0 and math.isnan(r.summary["ca"] if r.summary["ca"] is not None else math.nan)


def test_prior_shift_changes_the_class_mix(tiny):
    tiny["attackers"] = []
    priors = [0.0] * 10
    priors[3] = 1.0
    tiny["clean"][0]["drift"] = {"prior_shift": {"at": 6.0, "priors": priors}}
    seen: list[ScreenRecord] = []
    sc = load_scenario(tiny)
    learner, defense, _, _ = build_components(sc)
    splits, _ = load_data(sc.data, sc.seed)
    learner.pretrain(splits["pretrain"].x[:64], splits["pretrain"].labels[:64], streamsim.SetupContext(seed=0))
    labels: list[tuple[float, torch.Tensor]] = []

    class Spy(Defense):
        def screen(self, batch):
            labels.append((0.0, batch.labels))
            return Verdicts.accept_all(len(batch))

    Simulation(sc, splits, learner, Spy(), {}, seen.append).run_to_end()
    before, after = labels[:6], labels[6:]
    assert all((lab == 3).all() for _, lab in after)
    assert not all((lab == 3).all() for _, lab in before)


def test_cached_pretraining_gives_the_same_learner_as_training(tiny, tmp_path):
    from streamsim.artifacts.cache import ArtifactCache
    from streamsim.learners.torch_cnn import SmallCNNLearner

    x, y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.arange(64) % 10
    cache = ArtifactCache(tmp_path)
    trained, cached, uncached = SmallCNNLearner(), SmallCNNLearner(), SmallCNNLearner()
    trained.pretrain(x, y, streamsim.SetupContext(seed=4, cache=cache))
    cached.pretrain(x, y, streamsim.SetupContext(seed=4, cache=cache))
    uncached.pretrain(x, y, streamsim.SetupContext(seed=4))
    for other in (cached, uncached):
        for a, b in zip(trained.model.state_dict().values(), other.model.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    # and they keep learning identically: the optimizer state came back too
    for learner in (trained, cached, uncached):
        learner.learn(x[:16], (y[:16] + 1) % 10)
    assert torch.equal(trained.predict_proba(x), cached.predict_proba(x))
    assert torch.equal(trained.predict_proba(x), uncached.predict_proba(x))
