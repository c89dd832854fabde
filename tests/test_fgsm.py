"""FGSM / PGD poison (Oschart et al.): bounds, objectives, threat models, shadows and query budgets."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import pytest
import torch
from torch import nn

from attacks.fgsm import FGSM, MODES
from attacks.pgd import PGD
from streamsim.core.base import CraftContext, Defense, SetupContext
from streamsim.core.batch import Batch
from streamsim.core.errors import BudgetExceeded, ThreatModelError
from streamsim.data.datasets import RawData
from streamsim.data.splits import make_splits
from streamsim.learners.torch_cnn import SmallCNNLearner
from streamsim.simulation.threat import TargetView

EPS = 0.2
TOL = 1e-5


class LinearCritic(Defense):
    """A differentiable toy critic with a known gradient: ``score = Σ dropout(x) ⊙ W[label]``.

    It conditions on ``(claimed + shift) % 10`` (like De-Pois conditioning on something other than
    the claimed label) and records, at every score call, whether it was in train mode and whether
    its weights required gradients.
    """

    def __init__(self, shift: int = 0, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.table = nn.Embedding(10, 28 * 28)
        with torch.no_grad():
            self.table.weight.copy_(torch.randn(10, 28 * 28, generator=g) * 0.1)
        self.drop = nn.Dropout(0.5)
        self.shift = shift
        self.threshold = 0.0
        self.calls: list[tuple[bool, bool]] = []

    def fit_boundary(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.no_grad():
            s = self.score(x, y)
        self.threshold = float(s.mean() - s.std())
        self.calls.clear()

    def score(self, x: torch.Tensor, claimed: torch.Tensor) -> torch.Tensor:
        return self.conditioned_score(x, (claimed + self.shift) % 10)

    def conditioned_score(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.drop.training, self.table.weight.requires_grad))
        return (self.drop(x.flatten(1)) * self.table(labels)).sum(1)

    @property
    def boundary(self) -> float:
        return self.threshold


@pytest.fixture(scope="module")
def splits(mnist5k: RawData) -> dict[str, Batch]:
    return make_splits(mnist5k, {"pretrain": 0.3, "trusted": 0.1, "stream": 0.1, "attacker": 0.3, "test": 0.2}, seed=0)


@pytest.fixture(scope="module")
def learner(splits: dict[str, Batch]) -> SmallCNNLearner:
    lrn = SmallCNNLearner(pretrain_epochs=1, pretrain_batch_size=32)
    lrn.pretrain(splits["pretrain"].x, splits["pretrain"].labels, SetupContext(seed=0))
    return lrn


@pytest.fixture()
def critic(splits: dict[str, Batch]) -> LinearCritic:
    c = LinearCritic(shift=3)
    c.drop.eval()  # deployed: dropout off
    c.fit_boundary(splits["trusted"].x, splits["trusted"].labels)
    return c


def ctx(view: TargetView, seed: int = 0) -> CraftContext:
    return CraftContext(time=0.0, rng=np.random.default_rng(seed), generator=torch.Generator().manual_seed(seed), view=view)


def accuracy(learner: SmallCNNLearner, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((learner.predict(x) == y).float().mean())


@pytest.mark.parametrize("cls", [FGSM, PGD])
@pytest.mark.parametrize("mode", MODES)
def test_perturbation_is_bounded_per_stage_and_in_range(cls, mode, splits, learner, critic):
    base = splits["test"].subset(torch.arange(64))
    out = cls(eps=EPS, mode=mode).craft(base, ctx(TargetView("white-box", learner, critic)))
    stages = len(mode.split("-"))
    delta = (out.x - base.x).abs().amax()
    assert delta <= stages * EPS + TOL
    assert delta > 0
    assert out.x.min() >= -1 and out.x.max() <= 1
    assert torch.equal(out.labels, base.labels)  # the claimed label stays the true one
    if stages == 2:  # each stage on its own stays within ε
        first = cls(eps=EPS, mode=mode.split("-")[0]).craft(base, ctx(TargetView("white-box", learner, critic)))
        assert (first.x - base.x).abs().amax() <= EPS + TOL
        if cls is FGSM:  # the second stage is a further ε step from the first stage's output
            assert (out.x - first.x).abs().amax() <= EPS + TOL


def test_critic_step_is_the_signed_gradient_on_the_labels_the_defense_conditions_on(splits, learner, critic):
    base = splits["test"].subset(torch.arange(64))
    out = FGSM(eps=EPS, mode="critic").craft(base, ctx(TargetView("white-box", learner, critic)))
    w = critic.table.weight.detach()[(base.labels + critic.shift) % 10].view_as(base.x)
    assert torch.allclose(out.x, (base.x + EPS * w.sign()).clamp(-1, 1))
    with torch.no_grad():
        critic.drop.eval()
        before = critic.score(base.x, base.labels)
        after = critic.score(out.x, base.labels)
    assert (after > before).all()
    assert float((after >= critic.boundary).float().mean()) >= float((before >= critic.boundary).float().mean())


def test_classifier_mode_lowers_accuracy_and_targeted_pulls_to_target(splits, learner, critic):
    base = splits["test"].subset(torch.arange(400))
    view = TargetView("white-box", learner, critic)
    clean = accuracy(learner, base.x, base.labels)
    adv = FGSM(eps=0.3, mode="classifier").craft(base, ctx(view))
    attacked = accuracy(learner, adv.x, base.labels)
    assert clean > 0.75  # guards the fixture: a pretrained learner worth attacking (seeded)
    assert attacked < clean - 0.3  # guards the classifier step's direction: at ε = 0.3 it must cost 0.3 accuracy or more
    hit_before = float((learner.predict(base.x) == 7).float().mean())
    targeted = FGSM(eps=0.3, mode="classifier", target=7).craft(base, ctx(view))
    assert float((learner.predict(targeted.x) == 7).float().mean()) > 2 * hit_before
    pgd = PGD(eps=0.3, steps=5, mode="classifier").craft(base, ctx(view))
    assert accuracy(learner, pgd.x, base.labels) < attacked  # iterating finds stronger poison


def test_composition_order_matters(splits, learner, critic):
    base = splits["test"].subset(torch.arange(64))
    view = TargetView("white-box", learner, critic)
    a = FGSM(eps=EPS, mode="critic-classifier").craft(base, ctx(view))
    b = FGSM(eps=EPS, mode="classifier-critic").craft(base, ctx(view))
    assert not torch.allclose(a.x, b.x)


@pytest.mark.parametrize("cls", [FGSM, PGD])
def test_no_weight_gradients_and_modes_restored(cls, splits, learner, critic):
    base = splits["test"].subset(torch.arange(32))
    learner.model.zero_grad(set_to_none=True)  # pretraining leaves .grad behind; crafting must add none
    learner.model.train()
    critic.drop.train()
    critic.calls.clear()
    try:
        cls(eps=EPS, mode="critic-classifier").craft(base, ctx(TargetView("white-box", learner, critic)))
        assert critic.calls and all(not training and not needs_grad for training, needs_grad in critic.calls)
        for p in [*learner.model.parameters(), *critic.table.parameters()]:
            assert p.grad is None
            assert p.requires_grad
        assert learner.model.training and all(m.training for m in learner.model.modules())
        assert critic.drop.training
    finally:
        learner.model.eval()
        critic.drop.eval()


def test_seeded_pgd_repeats(splits, learner, critic):
    base = splits["test"].subset(torch.arange(16))
    view = TargetView("white-box", learner, critic)
    a = PGD(eps=EPS, steps=3).craft(base, ctx(view, seed=1))
    b = PGD(eps=EPS, steps=3).craft(base, ctx(view, seed=1))
    c = PGD(eps=EPS, steps=3).craft(base, ctx(view, seed=2))
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)


def test_defense_without_score_skips_the_critic_stage(splits, learner):
    base = splits["test"].subset(torch.arange(16))
    view = TargetView("white-box", learner, Defense())
    assert torch.equal(FGSM(eps=EPS, mode="critic").craft(base, ctx(view)).x, base.x)
    both = FGSM(eps=EPS, mode="critic-classifier").craft(base, ctx(view))
    assert torch.equal(both.x, FGSM(eps=EPS, mode="classifier").craft(base, ctx(view)).x)


def shadow_attack(shadow: dict | None = None, **kw) -> FGSM:
    settings = dict(classifier="small-cnn", epochs=3, critic_hidden=(128, 16), critic_epochs=40)
    return FGSM(knowledge="posteriors", shadow={**settings, **(shadow or {})}, **kw)


def test_distilled_shadows_agree_with_their_teachers(splits, learner, critic):
    view = TargetView("posteriors", learner, critic, query_budget=10_000)
    attack = shadow_attack(eps=EPS, mode="critic-classifier")
    assert attack.knowledge == "posteriors" and FGSM.knowledge == "white-box"
    attack.prepare(SetupContext(seed=0, pool=splits["attacker"], view=view))
    test = splits["test"]
    f = attack.fidelity(critic, learner, test.x, test.labels)
    assert f is attack.fidelity_
    assert attack.stats()["shadow_points"] == len(splits["attacker"])
    assessed = attack.assess(test.x, test.labels, learner, critic)  # what the runner puts in the summary
    assert assessed["fidelity_critic_agreement"] == f["critic_agreement"]
    assert f["classifier_agreement"] > 0.6  # chance is ~0.1
    assert f["critic_rank_corr"] > 0.5  # guards critic distillation: the shadow orders held-out points like the critic
    p, q = f["critic_accept_real"], f["critic_accept_shadow"]
    assert f["critic_agreement"] > p * q + (1 - p) * (1 - q) + 0.03  # better than independent calls
    # the black-box poison transfers: the real critic trusts it more than the clean images
    base = test.subset(torch.arange(200))
    crit_only = shadow_attack(eps=EPS, mode="critic")
    crit_only.shadows_ = attack.shadows_
    out = crit_only.craft(base, ctx(view))
    with torch.no_grad():
        before = critic.score(base.x, base.labels).mean()
        after = critic.score(out.x, base.labels).mean()
    assert after > before


def test_query_budget_caps_shadow_training(splits, learner, critic):
    pool = splits["attacker"]
    view = TargetView("posteriors", learner, critic, query_budget=300)
    attack = shadow_attack(mode="critic-classifier", shadow={"epochs": 1, "critic_epochs": 2})
    attack.prepare(SetupContext(seed=0, pool=pool, view=view))
    assert view.queries_used == 300
    assert attack.shadow_stats_["points"] == 150 and attack.shadow_stats_["queries"] == 300
    with pytest.raises(BudgetExceeded):
        view.predict_proba(pool.x[:1])
    solo_view = TargetView("posteriors", learner, critic, query_budget=300)
    solo = shadow_attack(mode="classifier", shadow={"epochs": 1})
    solo.prepare(SetupContext(seed=0, pool=pool, view=solo_view))
    assert solo.shadow_stats_["points"] == 300 and solo.shadows_.critic is None


def test_white_box_attack_refuses_a_weaker_view(splits, learner, critic):
    view = TargetView("posteriors", learner, critic, query_budget=100)
    with pytest.raises(ThreatModelError):
        FGSM().prepare(SetupContext(seed=0, pool=splits["attacker"], view=view))
    with pytest.raises(ThreatModelError):
        PGD(mode="classifier").craft(splits["test"].subset(torch.arange(4)), ctx(view))
    assert view.queries_used == 0


def test_plugins_are_registered():
    eps = {ep.name: ep for ep in entry_points(group="streamsim.attacks")}
    assert eps["fgsm"].load() is FGSM and eps["pgd"].load() is PGD


def test_cached_shadows_are_reused_for_the_same_answers_only(splits, learner, critic, tmp_path):
    from streamsim.artifacts.cache import ArtifactCache

    cache = ArtifactCache(tmp_path)
    pool = splits["attacker"].subset(torch.arange(300))

    def prepared(budget: int) -> FGSM:
        attack = shadow_attack(mode="critic-classifier", shadow={"epochs": 1, "critic_epochs": 5})
        view = TargetView("posteriors", learner, critic, query_budget=budget)
        attack.prepare(SetupContext(seed=0, pool=pool, view=view, cache=cache))
        assert view.queries_used == min(budget, 600)  # queries are spent even on a cache hit
        return attack

    fresh, again, other = prepared(600), prepared(600), prepared(400)
    assert "cached" not in fresh.shadow_stats_ and again.shadow_stats_["cached"] == 1.0
    assert "cached" not in other.shadow_stats_  # other answers bought: retrained
    assert again.shadows_.boundary == fresh.shadows_.boundary
    for a, b in zip(fresh.shadows_.critic.parameters(), again.shadows_.critic.parameters(), strict=True):
        assert torch.equal(a, b)
