"""The ``adaptive`` attack on toy defenses with known rules: inference, delays, budgets, adaptation."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import streamsim
from attacks.adaptive import Adaptive
from attacks.adaptive.policy import Arm, Policy
from streamsim import Batch, Defense, Verdicts
from streamsim.core.records import AttackRecord
from streamsim.running.experiment import load_data
from streamsim.running.preflight import build_components
from streamsim.scenario.config import load_scenario
from streamsim.simulation.simulator import Simulation
from streamsim.simulation.threat import TargetView


class Brightness(Defense):
    """Accepts a sample iff its mean pixel is at least ``threshold``: ``score = mean − threshold``, boundary 0.

    ``switch_after`` screened batches, the threshold becomes ``later`` (a defense that moves its boundary).
    """

    def __init__(self, threshold: float = -0.7, later: float | None = None, switch_after: int | None = None) -> None:
        self.threshold = threshold
        self.later = later
        self.switch_after = switch_after
        self.screened = 0

    def score(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).mean(1) - self.threshold

    @property
    def boundary(self) -> float:
        return 0.0

    def screen(self, batch: Batch) -> Verdicts:
        self.screened += 1
        if self.switch_after is not None and self.screened > self.switch_after and self.later is not None:
            self.threshold = self.later
        s = self.score(batch.x, batch.labels)
        return Verdicts(accept=s >= 0, score=s)


def simulate(tiny: dict[str, Any], attack: Adaptive, defense: Defense, *, duration: float = 30.0,
             learner: dict[str, Any] | None = None, **source: Any) -> tuple[list[Any], TargetView, Simulation]:
    """Drive a Simulation directly (no baseline): one clean source, one adaptive attacker every time unit."""
    tiny.update(duration=duration, eval_every=duration / 3)
    tiny["learner"] = learner or {"name": "small-cnn", "params": {"pretrain_epochs": 1}}
    tiny["attackers"] = [{"name": "adaptive", "batch_size": 16, "attack": {"name": "label-flip"}, **source}]
    sc = load_scenario(tiny)
    lrn, _, _, _ = build_components(sc)
    splits, _ = load_data(sc.data, sc.seed)
    lrn.pretrain(splits["pretrain"].x[:300], splits["pretrain"].labels[:300], streamsim.SetupContext(seed=0))
    view = TargetView(attack.knowledge, lrn, defense, source.get("query_budget"), source.get("effects_proba", False))
    attack.prepare(streamsim.SetupContext(seed=1, pool=splits["attacker"], view=view))
    records: list[Any] = []
    sim = Simulation(sc, splits, lrn, defense, {"adaptive": (attack, view)}, records.append)
    sim.run_to_end()
    return records, view, sim


def median_brightness(tiny: dict[str, Any]) -> float:
    splits, _ = load_data(load_scenario(tiny).data, 0)
    return float(splits["attacker"].x.flatten(1).mean(1).median())


def saturated_fraction(x: torch.Tensor) -> torch.Tensor:
    """Share of pixels within 0.1 of black or white: clean digits ~0.8, eps-0.3 FGSM noise pulls it down."""
    return ((x.abs() - 1).abs() < 0.1).flatten(1).float().mean(1)


class Saturation(Defense):
    """Accepts a sample iff its saturated-pixel share is at least ``threshold``, which becomes
    ``later`` after ``switch_after`` screened batches: a boundary that moves mid-stream."""

    def __init__(self, threshold: float, later: float, switch_after: int) -> None:
        self.threshold, self.later, self.switch_after, self.screened = threshold, later, switch_after, 0

    def screen(self, batch: Batch) -> Verdicts:
        self.screened += 1
        if self.screened > self.switch_after:
            self.threshold = self.later
        s = saturated_fraction(batch.x) - self.threshold
        return Verdicts(accept=s >= 0, score=s)


def last(records: list[Any], key: str) -> float:
    return [r for r in records if isinstance(r, AttackRecord)][-1].values[key]


@pytest.mark.slow
def test_shadow_critic_converges_on_the_rule_through_noisy_feedback(tiny):
    """20% of verdicts arrive flipped; the shadow's forecasts still converge towards the true rule."""
    defense = Brightness(threshold=median_brightness(tiny))
    attack = Adaptive(eps=[0.05], modes=["classifier"], surrogate_epochs=1, shadow={"warm_start": 0})
    records, _, _ = simulate(tiny, attack, defense, duration=60.0, feedback_flip=0.2)
    evals = [r.values for r in records if isinstance(r, AttackRecord) and r.values.get("forecast_n", 0) > 0]
    assert evals[-1]["inferred_chance"] < 0.7  # both verdicts are common: accuracy cannot come from guessing
    assert 0.72 < evals[-1]["inferred_accuracy"] < 0.88  # what it hears: 20% flipped
    first, final = evals[0]["forecast_balanced_accuracy_window"], evals[-1]["forecast_balanced_accuracy_window"]
    # guards that learning from noisy verdicts converges: seeded, the final window sits well above 0.8
    assert final > 0.8 and final > first + 0.05, (first, final)


def test_effects_inference_beats_chance_on_a_known_rule(tiny):
    """No verdicts at all: probabilities before and after each batch reveal which points were learned."""
    defense = Brightness(threshold=median_brightness(tiny))
    attack = Adaptive(knowledge="effects", eps=[0.05], modes=["classifier"], surrogate_epochs=1, shadow={"warm_start": 0})
    learner = {"name": "small-cnn", "params": {"pretrain_epochs": 1, "steps_per_batch": 5, "lr": 0.01}}
    records, view, _ = simulate(tiny, attack, defense, duration=40.0, learner=learner, query_budget=5000,
                                effects_proba=True)
    values = [r for r in records if isinstance(r, AttackRecord)][-1].values
    assert values["inferred_n"] > 300 and view.queries_used <= 5000
    # Learning a point the model already fits moves nothing, so only part of the points carry evidence:
    # clearly above chance (0.5; the standard error at n > 600 is about 0.02), far from perfect.
    assert values["inferred_balanced_accuracy"] > 0.58, values


class Spy(Adaptive):
    """Checks, whenever it crafts, that no belief it holds is about a batch whose feedback is not due yet."""

    delay = 0.0

    def craft(self, base: Batch, context: Any) -> Batch:
        assert all(t <= context.time - self.delay + 1e-9 for t in self.inferred_), (context.time, max(self.inferred_))
        return super().craft(base, context)

    def observe(self, observation: Any) -> None:
        assert observation.time == pytest.approx(observation.submitted_at + self.delay)
        super().observe(observation)


def test_delayed_feedback_is_never_used_before_it_arrives(tiny):
    attack = Spy(eps=[0.1], modes=["critic-classifier"], surrogate_epochs=1)
    attack.delay = 3.0
    records, _, sim = simulate(tiny, attack, Brightness(threshold=median_brightness(tiny)), duration=20.0, feedback_delay=3.0)
    # Batches sent in the last 3 time units were screened but their verdicts never arrived.
    assert sorted(sim.beliefs.truth["adaptive"])[-1] > max(attack.inferred_) >= 10.0
    assert attack.observed_ == len(attack.inferred_) < len(sim.beliefs.truth["adaptive"])


def test_budgets_are_enforced_and_the_policy_freezes_when_queries_run_out(tiny):
    attack = Adaptive(knowledge="effects", eps=[0.1, 0.3], modes=["classifier"], surrogate_epochs=1, probing={"controls": 4})
    records, view, sim = simulate(tiny, attack, Brightness(threshold=median_brightness(tiny)), duration=20.0,
                                  query_budget=200, budget=100)
    assert view.queries_used <= 200 and last(records, "queries_used") == view.queries_used
    assert last(records, "inferring") == 0.0 and last(records, "policy_frozen") == 1.0
    assert last(records, "submitted") <= 100
    assert sum(len(v) for v in sim.beliefs.truth["adaptive"].values()) <= 100


def test_verdicts_attacker_makes_no_queries(tiny):
    attack = Adaptive(eps=[0.1], modes=["classifier"], surrogate_epochs=1)
    _, view, _ = simulate(tiny, attack, Brightness(threshold=median_brightness(tiny)), duration=6.0, query_budget=0)
    assert view.queries_used == 0


def test_policy_switches_arms_when_the_defense_moves_its_boundary(tiny):
    """Everything passes at first, so the bigger eps does more damage; then the boundary tightens and
    rejects exactly the eps-0.3 poison: the bandit must move to eps 0.05."""
    chosen: list[float] = []

    class Recording(Adaptive):
        def craft(self, base: Batch, context: Any) -> Batch:
            out = super().craft(base, context)
            chosen.append(self.policy_.last.arm.eps)
            return out

    attack = Recording(eps=[0.05, 0.3], modes=["classifier"], surrogate_epochs=2,
                       policy={"discount": 0.8, "min_rate": 1.0})
    defense = Saturation(threshold=0.0, later=0.6, switch_after=40)  # about 20 attacker batches in
    simulate(tiny, attack, defense, duration=40.0)
    before, after = chosen[8:20], chosen[-12:]
    assert sum(e == 0.3 for e in before) > len(before) / 2, before
    assert sum(e == 0.05 for e in after) > len(after) / 2, after


def test_a_run_repeats_from_its_seed(tiny):
    def once() -> tuple[list[Any], list[Any]]:
        attack = Adaptive(eps=[0.1, 0.3], modes=["critic-classifier", "classifier"], surrogate_epochs=1)
        records, _, _ = simulate(tiny, attack, Brightness(threshold=median_brightness(tiny)), duration=12.0,
                                 feedback_flip=0.1)
        screens = [(r.time, r.accept.tolist(), r.scores.tolist()) for r in records if hasattr(r, "accept")]
        return screens, [r.values for r in records if isinstance(r, AttackRecord)]

    assert once() == once()


def test_backoff_halves_the_rate_when_rejections_spike_and_recovers_when_calm():
    from attacks.adaptive.policy import Backoff

    b = Backoff(spike=0.3, factor=0.5, min_rate=0.25, recover=1.25)
    for _ in range(5):
        b.update(rejected=0.1)
    assert b.rate == 1.0 and b.backoffs == 0
    b.update(rejected=0.9)  # spike: 0.9 > running average 0.1 + 0.3
    assert b.rate == 0.5 and b.backoffs == 1
    b.update(rejected=0.95)
    b.update(rejected=0.95)  # the average catches up, but not before the floor
    assert b.rate >= 0.25  # the back-off floor: rate never halves below a quarter
    for _ in range(10):
        b.update(rejected=0.1)
    assert b.rate == 1.0


def test_policy_freeze_keeps_the_best_arm():
    policy = Policy([Arm(0.1, "classifier"), Arm(0.3, "classifier")], discount=0.9)
    for _ in range(10):
        c = policy.choose()
        policy.feedback(c.index, reward=0.9 if c.arm.eps == 0.1 else 0.1, rejected=0.0)
    policy.freeze()
    policy.feedback(0, reward=0.0, rejected=1.0)  # ignored once frozen
    assert {policy.choose().arm.eps for _ in range(5)} == {0.1}


def _storable(value: Any, path: str = "state") -> None:
    """Checkpoint states hold only tensors, plain scalars, and lists / str-keyed dicts of them."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{path}: key {k!r} is not a string"
            _storable(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _storable(v, f"{path}[{i}]")
    else:
        assert value is None or isinstance(value, (torch.Tensor, bool, int, float, str)), f"{path}: {type(value)}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b or (a != a and b != b)  # NaN equals NaN here


@pytest.mark.parametrize("knowledge", ["verdicts", "effects", "effects+probes"])
def test_checkpoint_state_restores_an_attacker_that_continues_identically(tiny, knowledge):
    import copy

    import numpy as np

    from streamsim.core.base import CraftContext, Observation, SetupContext

    probes = knowledge.endswith("+probes")
    knowledge = knowledge.removesuffix("+probes")
    settings = {"knowledge": knowledge, "eps": [0.1, 0.3], "modes": ["critic-classifier", "classifier"],
                "surrogate_epochs": 1, **({"probes": ["canary", "boundary", "group"]} if probes else {})}
    defense = Brightness(threshold=median_brightness(tiny))
    a = Adaptive(**settings)
    _, view, _ = simulate(tiny, a, defense, duration=10.0, feedback_delay=3.0 if knowledge == "verdicts" else 0.0,
                          query_budget=5000)
    state = a.checkpoint_state()
    _storable(state)
    assert state["sent"] if knowledge == "verdicts" else state["inference"]["submitted_moves"].numel()

    b = Adaptive(**settings)
    b.prepare(SetupContext(seed=1, pool=a.pool_, view=view))
    b.restore_state(copy.deepcopy(state))
    assert _same(b.checkpoint_state(), state)

    base = a.pool_.subset(torch.arange(16))
    outs = []
    for attack in (a, b):
        ctx = CraftContext(time=11.0, rng=np.random.default_rng(5), generator=torch.Generator().manual_seed(5), view=view)
        crafted = attack.craft(base, ctx)
        accepted = defense.screen(crafted).accept if knowledge == "verdicts" else None
        attack.observe(Observation(time=11.0, submitted_at=11.0, batch=crafted, accepted=accepted))
        outs.append((crafted.x, attack.checkpoint_state()))
    assert torch.equal(outs[0][0], outs[1][0]) and _same(outs[0][1], outs[1][1])


# --- active probing (attacks/adaptive/probing.py, canary.py, boundary.py, group.py) ---------------------
EAGER = {"name": "small-cnn", "params": {"pretrain_epochs": 1, "steps_per_batch": 5, "lr": 0.01}}


def probing_run(tiny: dict[str, Any], probe: str, proba: bool, *, learner: dict[str, Any] | None = None,
                duration: float = 24.0, query_budget: int = 5000,
                **probing: Any) -> tuple[dict[str, float], TargetView, Adaptive]:
    attack = Adaptive(knowledge="effects", eps=[0.05], modes=["classifier"], surrogate_epochs=1,
                      shadow={"warm_start": 0}, probes=[probe], probing=probing)
    records, view, _ = simulate(tiny, attack, Brightness(threshold=median_brightness(tiny)), duration=duration,
                                learner=learner or EAGER, query_budget=query_budget, effects_proba=proba,
                                arrival="poisson", rate=1.0)  # as in the scenarios: never at a clean batch's instant
    return [r for r in records if isinstance(r, AttackRecord)][-1].values, view, attack


@pytest.mark.parametrize(("probe", "proba", "kind"), [
    ("canary", True, "inferred_probes"),
    ("boundary", False, "inferred_probes"),
    ("group", True, "inferred"),
    ("group", False, "inferred"),
])
def test_each_probe_design_beats_chance_on_its_own(tiny, probe, proba, kind):
    """A brightness rule the attacker never sees; each probe design's inferred verdicts beat guessing."""
    values, view, _ = probing_run(tiny, probe, proba)
    assert view.queries_used <= 5000
    assert values[f"{kind}_n"] >= 20, values
    assert values[f"{kind}_chance"] < 0.85  # both verdicts occur among the probed points
    # canaries and boundary probes: one noisy movement each; groups of one: the model changed or it did not
    floor = 0.9 if probe == "group" else 0.6
    assert values[f"{kind}_balanced_accuracy"] > floor, values


@pytest.mark.parametrize("probe", ["canary", "boundary", "group"])
def test_probes_get_no_credit_for_verdicts_the_attacker_cannot_observe(tiny, probe):
    """A target that learns nothing leaves no effect to read: the verdicts are still screened (and
    scored), but the beliefs must fall to guessing — nothing of the truth leaks into them."""
    frozen = {"name": "small-cnn", "params": {"pretrain_epochs": 1, "update": False}}
    values, _, attack = probing_run(tiny, probe, probe != "boundary", learner=frozen)
    assert values["inferred_n"] > 20
    assert abs(values["inferred_balanced_accuracy"] - 0.5) < 0.06, values
    if probe == "group":  # nothing moved: every point believed rejected, exactly
        assert not any(bool(b.any()) for b in attack.inferred_.values())


@pytest.mark.parametrize("probe", ["canary", "boundary", "group"])
def test_probe_budgets_hold(tiny, probe):
    """Probes are paid for from the query budget, which is never exceeded; probes take a share of the
    batch (the rest stays poison); groups send at most probing.group_size points."""
    values, view, attack = probing_run(tiny, probe, probe == "canary", duration=16.0, query_budget=400,
                                       group_size=2, share=0.25)
    assert view.queries_used <= 400 and values["queries_used"] == view.queries_used
    assert values["inferring"] == 0.0 and values["policy_frozen"] == 1.0  # the budget ran out, and it noticed
    if probe == "group":
        assert all(len(b) <= 2 for b in attack.inferred_.values())
    else:
        assert attack.probed_ and all(k == round(0.25 * len(attack.inferred_[t])) for t, k in attack.probed_.items())


def test_probe_settings_are_validated():
    with pytest.raises(streamsim.ConfigError, match="probes"):
        Adaptive(knowledge="effects", probes=["sonar"])
    with pytest.raises(streamsim.ConfigError, match="knowledge = 'effects'"):
        Adaptive(knowledge="verdicts", probes=["canary"])
    with pytest.raises(streamsim.ConfigError, match="probing.share"):
        Adaptive(knowledge="effects", probes=["canary"], probing={"share": 1.0})


@pytest.mark.parametrize("name", ["adaptive-effects", "adaptive-effects-proba", "adaptive-probing"])
def test_effects_scenarios_validate(name):
    """One scenario per effects variant (labels, probabilities) plus the probing one: each loads and builds."""
    from pathlib import Path

    sc = load_scenario(Path(__file__).resolve().parent.parent / "scenarios" / f"{name}.toml")
    _, _, attacks, _ = build_components(sc)
    attack = attacks["adaptive"]
    assert attack.knowledge == "effects" and sc.attackers[0].effects_proba == (name == "adaptive-effects-proba")
