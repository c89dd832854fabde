"""The five online defenses beside De-Pois: each catches, on a toy stream, what it is designed for,
and refuses bad input with a one-line error. (tests/test_plugins.py runs the conformance suite.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attacks.fgsm import FGSM
from streamsim import Batch, ConfigError, CraftContext, Learner, PluginError, SetupContext, TargetView
from streamsim.scenario.registry import build

CLASSES = 10


def clusters(n: int, seed: int) -> Batch:
    """Ten well-separated classes: a fixed ±0.5 pattern per class plus a little noise."""
    patterns = (torch.rand(CLASSES, 1, 28, 28, generator=torch.Generator().manual_seed(99)) > 0.5).float() - 0.5
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % CLASSES
    x = (patterns[y] + 0.1 * torch.randn(n, 1, 28, 28, generator=g)).clamp(-1, 1)
    return Batch.clean(x, y)


class Linear(Learner):
    """Softmax regression with plain SGD steps: a learner that costs nothing."""

    def __init__(self, lr: float = 0.5, steps: int = 1) -> None:
        self.lr, self.steps = lr, steps
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.model = nn.Sequential(nn.Flatten(), nn.Linear(784, CLASSES))

    def learn(self, x: torch.Tensor, y: torch.Tensor) -> None:
        for _ in range(self.steps):
            loss = nn.functional.cross_entropy(self.model(x), y)
            grads = torch.autograd.grad(loss, list(self.model.parameters()))
            with torch.no_grad():
                for p, g in zip(self.model.parameters(), grads, strict=True):
                    p -= self.lr * g

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(x).softmax(1)


@pytest.fixture(scope="module")
def trusted() -> Batch:
    return clusters(200, seed=1)


@pytest.fixture(scope="module")
def arriving() -> Batch:
    return clusters(40, seed=2)


@pytest.fixture(scope="module")
def trained(trusted) -> Linear:
    learner = Linear(steps=20)
    learner.learn(trusted.x, trusted.labels)
    learner.steps = 1
    return learner


@pytest.fixture(scope="module")
def cnn(trusted) -> Learner:
    learner, _ = build("learner", "small-cnn", {"pretrain_epochs": 2}, "learner")
    learner.pretrain(trusted.x, trusted.labels, SetupContext(seed=0))
    return learner


def flipped(batch: Batch) -> Batch:
    return batch.with_(labels=(batch.labels + 1) % CLASSES, is_poison=torch.ones(len(batch), dtype=torch.bool))


def fitted(name: str, trusted: Batch, learner: Learner | None, **params):
    defense, _ = build("defense", name, params, "defense")
    defense.fit(trusted, learner, SetupContext(seed=0))
    return defense


# --- what each catches --------------------------------------------------------------------------
@pytest.mark.parametrize("space", ["input", "features"])
def test_knn_rejects_label_flips_and_keeps_clean_points(trusted, arriving, cnn, space):
    knn = fitted("knn", trusted, cnn, space=space)
    assert knn.screen(arriving).accept.all()
    assert not knn.screen(flipped(arriving)).accept.any()


def test_knn_memory_keeps_the_last_accepted_points(trusted, arriving):
    knn = fitted("knn", trusted, None, k=3, memory=8)
    knn.after_learn(arriving)
    assert torch.equal(knn.recent_x, arriving.x[-8:])
    # a sample the trusted set never saw, vouched for by identical recently accepted ones
    odd = Batch.clean(torch.full((4, 1, 28, 28), 0.9), torch.full((4,), 3))
    assert not knn.screen(odd).accept.any()
    knn.after_learn(odd)
    assert knn.screen(odd).accept.all()


@pytest.mark.parametrize("shape", ["sphere", "slab"])
def test_centroid_rejects_far_out_noise(trusted, arriving, shape):
    f = fitted("centroid", trusted, None, shape=shape, quantile=1.0)
    clean = f.screen(arriving)
    noise = arriving.with_(x=(arriving.x + torch.randn(40, 1, 28, 28, generator=torch.Generator().manual_seed(3))).clamp(-1, 1))
    far = f.screen(noise)
    assert not far.accept.any() and clean.accept.float().mean() >= 0.5
    assert far.score.max() < clean.score.min()  # every noisy point lies farther out than every clean one


def test_centroid_score_has_a_gradient_and_following_drags_the_centroid(trusted, arriving):
    f = fitted("centroid", trusted, None, follow=0.1)
    x = arriving.x[:4].clone().requires_grad_(True)
    f.score(x, arriving.labels[:4]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    before = f.centroids.clone()
    f.after_learn(arriving.subset(arriving.labels == 3).with_(x=torch.ones(4, 1, 28, 28)))
    moved = (f.centroids - before).norm(dim=1)
    assert moved[3] > 0 and moved[torch.arange(CLASSES) != 3].abs().sum() == 0


def test_loss_trim_rejects_what_the_live_model_finds_surprising_and_moves_with_it(trusted, arriving, trained):
    learner = Linear(steps=20)
    learner.model.load_state_dict(trained.model.state_dict())
    trim = fitted("loss-trim", trusted, learner, quantile=0.95)
    assert trim.screen(arriving).accept.float().mean() >= 0.9
    assert not trim.screen(flipped(arriving)).accept.any()
    before = trim.boundary
    learner.learn(flipped(trusted).x, flipped(trusted).labels)  # the model drifts to the flipped labels
    trim.after_learn(flipped(trusted))
    assert trim.boundary != before
    assert trim.screen(flipped(arriving)).accept.all()  # and the rule moved with it: the blind spot


def test_roni_rejects_a_batch_that_hurts_held_out_accuracy(trusted, arriving, trained):
    learner = Linear()
    learner.model.load_state_dict(trained.model.state_dict())
    roni = fitted("roni", trusted, learner, holdout_size=100, groups=2)
    assert roni.screen(arriving).accept.all()
    bad = Batch.concat([arriving.subset(torch.arange(20)), flipped(arriving.subset(torch.arange(20, 40)))])
    verdicts = roni.screen(bad)
    assert verdicts.accept[:20].all() and not verdicts.accept[20:].any(), "the harmful half only"
    assert torch.equal(learner.model[1].weight, trained.model[1].weight), "screening learned on a copy"


@pytest.mark.parametrize("space", ["input", "features"])
def test_spectral_signatures_reject_a_backdoor_cluster(trusted, arriving, cnn, space):
    spectral = fitted("spectral", trusted, cnn, space=space, window=20)
    assert spectral.screen(arriving).accept.float().mean() >= 0.9
    fives = clusters(80, seed=4)
    poison = fives.subset(fives.labels == 5).with_(labels=torch.full((8,), 2))
    poison = poison.with_(x=poison.x.clone())
    poison.x[:, :, :6, :6] = 1.0  # BadNets-style: 5s with a trigger patch, all claiming 2
    mixed = Batch.concat([arriving, poison])
    accept = spectral.screen(mixed).accept
    assert not accept[40:].any()
    assert accept[:40].float().mean() >= 0.9


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "params", "key"), [
    ("knn", {"k": 0}, "k"), ("knn", {"threshold": 1.5}, "threshold"), ("knn", {"space": "pixels"}, "space"),
    ("knn", {"memory": -1}, "memory"),
    ("centroid", {"shape": "cube"}, "shape"), ("centroid", {"quantile": 0.0}, "quantile"),
    ("centroid", {"follow": 1.0}, "follow"),
    ("loss-trim", {"quantile": 2.0}, "quantile"), ("loss-trim", {"reference_size": 0}, "reference_size"),
    ("roni", {"delta": -0.1}, "delta"), ("roni", {"groups": 0}, "groups"), ("roni", {"metric": "f1"}, "metric"),
    ("roni", {"holdout_size": 0}, "holdout_size"),
    ("spectral", {"window": 1}, "window"), ("spectral", {"factor": 0.0}, "factor"),
    ("spectral", {"quantile": 1.5}, "quantile"),
])
def test_bad_settings_are_one_line_errors_naming_the_key(name, params, key):
    with pytest.raises(ConfigError) as e:
        build("defense", name, params, "defense")
    assert key in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["knn", "centroid", "loss-trim", "roni", "spectral"])
def test_empty_trusted_split_and_screen_before_fit_are_plugin_errors(name, trusted, trained):
    defense, _ = build("defense", name, {}, "defense")
    with pytest.raises(PluginError, match="before fit"):
        defense.screen(trusted)
    with pytest.raises(PluginError, match="trusted split is empty"):
        defense.fit(trusted.subset(torch.zeros(len(trusted), dtype=torch.bool)), trained, SetupContext(seed=0))


@pytest.mark.parametrize("name", ["knn", "spectral"])
def test_feature_space_refuses_a_learner_without_features(name, trusted, trained):
    defense, _ = build("defense", name, {"space": "features"}, "defense")
    with pytest.raises(PluginError, match="features") as e:
        defense.fit(trusted, trained, SetupContext(seed=0))
    assert "\n" not in str(e.value)


def test_roni_calibration_needs_a_reference_beside_the_holdout(trusted, trained):
    defense, _ = build("defense", "roni", {"holdout_size": 500}, "defense")
    defense.fit(trusted, trained, SetupContext(seed=0))
    assert len(defense.holdout) == len(defense.reference) == 100  # a small trusted split is shared half and half
    with pytest.raises(PluginError, match="at least 2"):
        defense.fit(trusted.subset(torch.arange(1)), trained, SetupContext(seed=0))


# --- white-box attacks against whatever is deployed ---------------------------------------------
def _white_box(defense, learner, base: Batch, mode: str) -> tuple[FGSM, Batch]:
    attack = FGSM(eps=0.2, mode=mode)
    view = TargetView("white-box", learner, defense)
    attack.prepare(SetupContext(seed=0, pool=base, view=view))
    ctx = CraftContext(time=0.0, rng=np.random.default_rng(0), generator=torch.Generator(), view=view)
    return attack, attack.craft(base, ctx)


def test_fgsm_critic_stage_targets_a_differentiable_defense(trusted, arriving, trained):
    centroid = fitted("centroid", trusted, None)
    far = arriving.with_(x=(arriving.x + torch.randn(40, 1, 28, 28, generator=torch.Generator().manual_seed(3))).clamp(-1, 1))
    attack, poison = _white_box(centroid, trained, far, "critic")
    assert attack.stats()["critic_stage_skipped"] == 0.0
    assert (centroid.score(poison.x, poison.labels) > centroid.score(far.x, far.labels)).all()  # stepped inwards


@pytest.mark.parametrize("name", ["knn", "roni", "spectral"])
def test_fgsm_skips_the_critic_stage_of_a_defense_without_gradient_and_says_so(name, trusted, arriving, trained, cnn):
    defense = fitted(name, trusted, cnn if name == "spectral" else trained)
    attack, poison = _white_box(defense, trained, arriving, "critic-classifier")
    assert attack.stats()["critic_stage_skipped"] == 1.0
    assert (poison.x - arriving.x).abs().max() == pytest.approx(0.2, abs=1e-5)  # the classifier stage ran
    attack, poison = _white_box(defense, trained, arriving, "critic")
    assert torch.equal(poison.x, arriving.x)  # nothing to evade, nothing changed
