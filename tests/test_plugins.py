"""One conformance suite for every registered plugin, built-in or third-party alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamsim import Attack, Batch, CraftContext, DataError, Defense, Learner, SetupContext, TargetView, Verdicts
from streamsim.abilities import Checkpointable, Scoring, has
from streamsim.data.datasets import RawData
from streamsim.registry import GROUPS, available, build, resolve

# Settings that make expensive plugins cheap enough for a unit test; everything else uses defaults.
CHEAP = {
    ("defense", "depois"): {"cgan_steps": 3, "authenticator_steps": 3, "wgan_steps": 3, "augment_factor": 1.5},
    ("attack", "adaptive"): {},
    ("learner", "small-cnn"): {"pretrain_epochs": 1},
    ("learner", "paper-cnn"): {"pretrain_epochs": 1},
    ("learner", "river"): {"pool": 4, "pretrain_epochs": 1},
}


def names(kind: str) -> list[str]:
    return [p.name for p in available(kind)]


def make(kind: str, name: str):
    instance, _ = build(kind, name, CHEAP.get((kind, name), {}), kind)
    return instance


@pytest.fixture(scope="module")
def data() -> dict[str, Batch]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, 28, 28, generator=g) * 2 - 1
    y = torch.arange(60) % 10
    return {"train": Batch.clean(x[:40], y[:40]), "other": Batch.clean(x[40:], y[40:])}


@pytest.mark.parametrize("kind", list(GROUPS))
def test_every_plugin_is_described_and_constructible_with_defaults(kind):
    for info in available(kind):
        assert info.description and not info.description.startswith("(fails"), info
        obj = resolve(kind, info.name)
        if kind != "dataset":
            make(kind, info.name)
        else:
            assert callable(obj)


@pytest.mark.parametrize("name", names("learner"))
def test_learners_are_seeded_and_return_probabilities(name, data):
    def trained() -> Learner:
        learner = make("learner", name)
        assert isinstance(learner, Learner)
        learner.pretrain(data["train"].x, data["train"].labels, SetupContext(seed=3))
        learner.learn(data["other"].x[:8], data["other"].labels[:8])
        return learner

    a, b = trained(), trained()
    pa = a.predict_proba(data["other"].x)
    assert pa.shape == (20, 10) and torch.allclose(pa.sum(1), torch.ones(20), atol=1e-4)
    assert torch.equal(pa, b.predict_proba(data["other"].x))
    assert torch.equal(a.predict(data["other"].x), pa.argmax(1))


@pytest.mark.parametrize("name", names("defense"))
def test_defenses_screen_after_fit_without_changing_and_repeat_from_the_seed(name, data):
    learner = make("learner", "small-cnn")
    learner.pretrain(data["train"].x, data["train"].labels, SetupContext(seed=0))

    def fitted() -> Defense:
        d = make("defense", name)
        assert isinstance(d, Defense)
        d.fit(data["train"], learner, SetupContext(seed=5))
        return d

    a, b = fitted(), fitted()
    batch = data["other"].with_(is_poison=torch.arange(20) % 2 == 0)
    v1, v2 = a.screen(batch), a.screen(batch)
    assert isinstance(v1, Verdicts) and len(v1) == 20 and v1.accept.dtype == torch.bool
    assert torch.equal(v1.accept, v2.accept) and torch.equal(v1.score, v2.score), "screen must not mutate"
    assert torch.equal(v1.score, b.screen(batch).score), "same seed, same defense"
    if has(a, Scoring) and v1.score is not None:  # the optional score is the one screen decides by
        with torch.no_grad():
            assert torch.allclose(a.score(batch.x, batch.labels), v1.score, atol=1e-6)
        assert torch.equal(v1.accept, v1.score >= a.boundary)


@pytest.mark.parametrize("name", names("attack"))
def test_attacks_craft_valid_batches_and_repeat_from_the_seed(name, data):
    learner = make("learner", "small-cnn")
    learner.pretrain(data["train"].x, data["train"].labels, SetupContext(seed=0))
    defense = make("defense", "depois")
    defense.fit(data["train"], learner, SetupContext(seed=0))

    def crafted() -> Batch:
        attack = make("attack", name)
        assert isinstance(attack, Attack)
        view = TargetView(attack.knowledge, learner, defense, query_budget=500)
        attack.prepare(SetupContext(seed=1, pool=data["train"], view=view))
        ctx = CraftContext(time=0.0, rng=np.random.default_rng(2), generator=torch.Generator().manual_seed(2), view=view)
        out = attack.craft(data["other"], ctx)
        assert view.queries_used <= 500
        return out

    a, b = crafted(), crafted()
    assert isinstance(a, Batch) and a.x.shape[1:] == (1, 28, 28)
    assert a.x.min() >= -1 and a.x.max() <= 1
    assert a.labels.min() >= 0 and a.labels.max() <= 9
    assert torch.equal(a.x, b.x) and torch.equal(a.labels, b.labels)


@pytest.mark.parametrize("name", names("dataset"))
def test_datasets_load_or_say_how_to_get_them(name):
    try:
        raw = resolve("dataset", name)(None)
    except DataError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(raw, RawData) and raw.x.dtype == np.uint8 and len(raw.x) == len(raw.y) > 0


def _through_disk(state, tmp_path):
    from streamsim.checkpoint import load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path / "state", state, {})
    return load_checkpoint(tmp_path / "state")[0]


# Built-ins that cannot be checkpointed, and why: `run --checkpoint-every` refuses them up front.
NOT_CHECKPOINTABLE = {"RiverLearner": "a river model could only be saved by pickling"}


def _checkpointable(component) -> bool:
    """Whether it has the checkpoint ability; built-ins must, unless listed above (third-party plugins may opt out)."""
    supported = has(component, Checkpointable)
    built_in = type(component).__module__.split(".")[0] in ("streamsim", "defenses", "attacks")
    assert supported or not built_in or type(component).__name__ in NOT_CHECKPOINTABLE, \
        f"built-in {type(component).__name__} neither supports checkpoints nor is listed as unable to"
    return supported


@pytest.mark.parametrize("name", names("learner"))
def test_learner_state_round_trips_through_a_checkpoint(name, data, tmp_path):
    def pretrained() -> Learner:
        learner = make("learner", name)
        learner.pretrain(data["train"].x, data["train"].labels, SetupContext(seed=3))
        return learner

    a = pretrained()
    if not _checkpointable(a):
        return  # it says why (checked above); `run --checkpoint-every` refuses it up front
    a.learn(data["other"].x[:8], data["other"].labels[:8])
    b = pretrained()
    b.restore_state(_through_disk(a.checkpoint_state(), tmp_path))
    for learner in (a, b):  # the optimizer state came along too: the next update is the same
        learner.learn(data["other"].x[8:], data["other"].labels[8:])
    assert torch.equal(a.predict_proba(data["train"].x), b.predict_proba(data["train"].x))


@pytest.mark.parametrize("name", names("defense"))
def test_defense_state_round_trips_through_a_checkpoint(name, data, tmp_path):
    learner = make("learner", "small-cnn")
    learner.pretrain(data["train"].x, data["train"].labels, SetupContext(seed=0))

    def fitted() -> Defense:
        defense = make("defense", name)
        defense.fit(data["train"], learner, SetupContext(seed=0))
        return defense

    a = fitted()
    if not _checkpointable(a):
        return
    a.after_learn(data["other"])
    b = fitted()
    b.restore_state(_through_disk(a.checkpoint_state(), tmp_path))
    batch = Batch.concat([data["train"], data["other"]])
    assert torch.equal(a.screen(batch).accept, b.screen(batch).accept)
    assert torch.equal(a.screen(batch).score, b.screen(batch).score)


@pytest.mark.parametrize("name", names("attack"))
def test_attack_state_round_trips_through_a_checkpoint(name, data, tmp_path):
    learner = make("learner", "small-cnn")
    learner.pretrain(data["train"].x, data["train"].labels, SetupContext(seed=0))
    defense = make("defense", "depois")
    defense.fit(data["train"], learner, SetupContext(seed=0))
    view = TargetView(make("attack", name).knowledge, learner, defense, query_budget=5000)

    def prepared() -> Attack:
        attack = make("attack", name)
        attack.prepare(SetupContext(seed=1, pool=data["train"], view=view))
        return attack

    def craft(attack: Attack) -> Batch:
        ctx = CraftContext(time=1.0, rng=np.random.default_rng(2), generator=torch.Generator().manual_seed(2), view=view)
        return attack.craft(data["other"], ctx)

    a = prepared()
    if not _checkpointable(a):
        return
    craft(a)
    b = prepared()
    b.restore_state(_through_disk(a.checkpoint_state(), tmp_path))
    x, y = craft(a), craft(b)
    assert torch.equal(x.x, y.x) and torch.equal(x.labels, y.labels)


# --- the same suite on feature vectors, for every plugin that declares it handles them -----------------
VECTOR_CHEAP = {("defense", "depois"): {"preset": "tabular", "cgan_steps": 3, "authenticator_steps": 3, "wgan_steps": 3}}


def vector_names(kind: str) -> list[str]:
    return [n for n in names(kind) if "vectors" in getattr(resolve(kind, n), "accepts", ("images",))]


def make_vec(kind: str, name: str):
    params = VECTOR_CHEAP.get((kind, name), {k: v for k, v in CHEAP.get((kind, name), {}).items() if k != "pool"})
    return build(kind, name, params, kind)[0]


@pytest.fixture(scope="module")
def vectors():
    """60 samples of 5 features (real, integer, binary, real, integer) in 3 classes, cut as a run cuts them."""
    from streamsim.data.splits import cut

    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = np.stack([rng.normal(y, 1.0), rng.integers(0, 6, 60), rng.integers(0, 2, 60), rng.normal(-y, 0.5),
                  rng.integers(-3, 4, 60)], axis=1).astype(np.float64)
    data = cut(RawData(x, y, "toy vectors", n_classes=3), {"pretrain": .5, "trusted": 0, "stream": 0, "attacker": 0,
                                                           "test": .5}, seed=0)
    return data.space, Batch.clean(data.splits["pretrain"].x, data.splits["pretrain"].labels), \
        Batch.clean(data.splits["test"].x, data.splits["test"].labels)


def test_every_built_in_plugin_says_what_data_it_handles():
    # learners: the CNNs are image-only; everything else handles both
    assert vector_names("learner") == ["mlp", "river"]
    assert set(vector_names("defense")) == set(names("defense"))
    assert set(vector_names("attack")) == set(names("attack"))


@pytest.mark.parametrize("name", vector_names("learner"))
def test_learners_on_vectors_are_seeded_and_return_the_datas_classes(name, vectors):
    space, train, other = vectors

    def trained() -> Learner:
        learner = make_vec("learner", name)
        learner.pretrain(train.x, train.labels, SetupContext(seed=3, space=space))
        learner.learn(other.x[:8], other.labels[:8])
        return learner

    a, b = trained(), trained()
    p = a.predict_proba(other.x)
    assert p.shape == (len(other), 3) and torch.allclose(p.sum(1), torch.ones(len(other)), atol=1e-4)
    assert torch.equal(p, b.predict_proba(other.x))


@pytest.mark.parametrize("name", vector_names("defense"))
def test_defenses_on_vectors_screen_after_fit_and_repeat(name, vectors):
    space, train, other = vectors
    learner = make_vec("learner", "mlp")
    learner.pretrain(train.x, train.labels, SetupContext(seed=0, space=space))

    def fitted() -> Defense:
        d = make_vec("defense", name)
        d.fit(train, learner, SetupContext(seed=5, space=space))
        return d

    a, b = fitted(), fitted()
    batch = other.with_(is_poison=torch.arange(len(other)) % 2 == 0)
    v = a.screen(batch)
    assert len(v) == len(other) and v.accept.dtype == torch.bool
    assert torch.equal(v.score, a.screen(batch).score) and torch.equal(v.score, b.screen(batch).score)


# every attack as it comes, and the black-box FGSM/PGD, whose shadows are distilled from a river target's answers
VECTOR_ATTACKS = [(n, "default", "mlp") for n in vector_names("attack")] + \
    [("fgsm", "posteriors", "river"), ("pgd", "posteriors", "river")]


@pytest.mark.parametrize(("name", "knowledge", "target"), VECTOR_ATTACKS)
def test_attacks_on_vectors_stay_in_every_features_range_and_grid(name, knowledge, target, vectors):
    space, train, other = vectors
    learner = make_vec("learner", target)
    learner.pretrain(train.x, train.labels, SetupContext(seed=0, space=space))
    defense = make_vec("defense", "depois")
    defense.fit(train, learner, SetupContext(seed=0, space=space))

    def crafted() -> Batch:
        params = {"eps": 0.7} if name in ("fgsm", "pgd") else {"eps": [0.7]} if name == "adaptive" else {}
        if knowledge == "posteriors":
            params.update(knowledge="posteriors", shadow_epochs=2, shadow_critic_epochs=2)
        attack = build("attack", name, params, "attack")[0]
        view = TargetView(attack.knowledge, learner, defense, query_budget=500)
        attack.prepare(SetupContext(seed=1, pool=train, view=view, space=space))
        ctx = CraftContext(time=0.0, rng=np.random.default_rng(2), generator=torch.Generator().manual_seed(2), view=view,
                           space=space)
        return attack.craft(other, ctx)

    a, b = crafted(), crafted()
    assert a.x.shape[1:] == (5,) and torch.equal(a.x, b.x) and torch.equal(a.labels, b.labels)
    assert space.contains(a.x), "a feature left its observed range or its integer grid"
    assert a.labels.min() >= 0 and a.labels.max() < 3
    # integer and binary features sit on their grid (whole numbers in raw units); binary ones at the two ends
    steps = space.step.numpy()
    whole = (a.x.numpy() + 1) / np.where(steps > 0, steps, 1)
    assert np.allclose(whole[:, steps > 0], np.round(whole[:, steps > 0]), atol=1e-4)
    assert set(np.unique(a.x[:, 2].numpy()).tolist()) <= {-1.0, 1.0}
    if name != "label-flip":
        assert not torch.equal(a.x, other.x), "the attack perturbed nothing"
