"""Conformance checks for plugins: what every learner, defense and attack must do, as plain functions.

``check_learner``, ``check_defense`` and ``check_attack`` take a plugin class and run it the way a
simulation does, on small synthetic data (sixty random images; sixty feature vectors of real,
integer and binary features when the class ``accepts`` vectors): it constructs from its settings,
repeats itself from the same seed, answers queries without changing, hands back well-formed
batches and verdicts, and — when it has the ``Checkpointable`` ability — comes back from a
checkpoint on disk exactly as it was. A failed property raises :class:`AssertionError` naming the
plugin and the property. streamsim's own tests run these over every registered plugin and the
examples; run them in yours.

Settings: the ``params`` argument, else the class's ``_unit_test_params()`` when it defines one
(a classmethod returning cheap constructor settings — a few training steps instead of thousands,
as river's estimators do), else the defaults.

>>> import torch
>>> from streamsim import Defense, Verdicts
>>> class AcceptAll(Defense):
...     '''Accept every sample.'''
...     def screen(self, batch):
...         return Verdicts(accept=torch.ones(len(batch), dtype=torch.bool), score=torch.ones(len(batch)))
>>> check_defense(AcceptAll)
>>> class Moody(AcceptAll):
...     '''Accept a random half of the samples.'''
...     def screen(self, batch):
...         score = torch.rand(len(batch))
...         return Verdicts(accept=score > 0.5, score=score)
>>> check_defense(Moody)
Traceback (most recent call last):
...
AssertionError: Moody on images: screen gave another answer for the same batch (a query must change nothing and draw only on the seed)
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamsim.artifacts.checkpoint import load_checkpoint, save_checkpoint
from streamsim.core.abilities import Checkpointable, HarmProbes, Scoring, has
from streamsim.core.base import Attack, CraftContext, Defense, Learner, SetupContext
from streamsim.core.batch import Batch, Verdicts
from streamsim.core.errors import DataError
from streamsim.core.probes import Probe
from streamsim.core.space import DataSpace, accepted
from streamsim.data.datasets import RawData
from streamsim.data.splits import cut
from streamsim.scenario.registry import check_kind, check_params, resolve
from streamsim.simulation.threat import TargetView

__all__ = ["check_attack", "check_dataset", "check_defense", "check_learner", "unit_test_params"]

# The targets the defense and attack checks run against, by data kind (registered names).
TARGET_LEARNERS = {"images": "small-cnn", "vectors": "mlp"}
TARGET_DEFENSE = "depois"  # the richest target: a differentiable score, verdicts, a boundary
QUERY_BUDGET = 500


# --- the data -----------------------------------------------------------------------------------------
@functools.cache
def _data(kind: str) -> tuple[DataSpace, Batch, Batch]:
    """(space, training batch, other batch) of one data kind; the same every call."""
    if kind == "images":
        from streamsim.core.space import IMAGES

        g = torch.Generator().manual_seed(0)
        x = torch.rand(60, 1, 28, 28, generator=g) * 2 - 1
        y = torch.arange(60) % 10
        return IMAGES, Batch.clean(x[:40], y[:40]), Batch.clean(x[40:], y[40:])
    # 60 samples of 5 features (real, integer, binary, real, integer) in 3 classes, cut as a run cuts them
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = np.stack([rng.normal(y, 1.0), rng.integers(0, 6, 60), rng.integers(0, 2, 60), rng.normal(-y, 0.5),
                  rng.integers(-3, 4, 60)], axis=1).astype(np.float64)
    data = cut(RawData(x, y, "toy vectors", n_classes=3),
               {"pretrain": .5, "trusted": 0, "stream": 0, "attacker": 0, "test": .5}, seed=0)
    return data.space, Batch.clean(data.splits["pretrain"].x, data.splits["pretrain"].labels), \
        Batch.clean(data.splits["test"].x, data.splits["test"].labels)


# --- helpers ------------------------------------------------------------------------------------------
def _expect(ok: bool, who: str, what: str) -> None:
    if not ok:
        raise AssertionError(f"{who}: {what}")


def unit_test_params(cls: type) -> dict[str, Any]:
    """The settings the checks use for ``cls`` when none are given: its ``_unit_test_params()``, or none."""
    hook = getattr(cls, "_unit_test_params", None)
    params = dict(hook()) if hook is not None else {}
    _expect(all(isinstance(k, str) for k in params), cls.__name__, "_unit_test_params() must return a dict of settings")
    return params


def _factory(kind: str, cls: type, params: dict[str, Any] | None) -> Callable[[], Any]:
    """A constructor of ``cls`` from validated settings, after checking what a registry would."""
    name = getattr(cls, "__name__", repr(cls))
    check_kind(kind, name, cls)
    _expect(bool((cls.__doc__ or "").strip()), name, "has no docstring (its first line is what `streamsim list` shows)")
    settings = check_params(cls, unit_test_params(cls) if params is None else params, kind)
    return lambda: cls(**settings)


def _target(kind: str, data: str) -> Any:
    cls = resolve(kind, TARGET_LEARNERS[data] if kind == "learner" else TARGET_DEFENSE)
    return _factory(kind, cls, None)()


def _through_disk(state: Any) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(Path(folder) / "state", state, {})
        return load_checkpoint(Path(folder) / "state")[0]


def _kinds(cls: type, data: Sequence[str] | None) -> list[str]:
    declared = accepted(cls)
    kinds = list(declared if data is None else data)
    _expect(bool(kinds) and all(k in ("images", "vectors") for k in kinds), cls.__name__,
            f"accepts must name images and/or vectors, not {declared!r}")
    return kinds


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.equal(a, b))


def _unchanged(crafted: Batch, base: Batch) -> bool:
    """Whether every crafted sample is its base sample (found by id), pixels and label alike."""
    position = {int(i): k for k, i in enumerate(base.ids)}
    if len(crafted) == 0 or any(int(i) not in position for i in crafted.ids):
        return False
    index = torch.tensor([position[int(i)] for i in crafted.ids])
    return _same(crafted.x, base.x[index]) and _same(crafted.labels, base.labels[index])


# --- learners -----------------------------------------------------------------------------------------
def check_learner(cls: type[Learner], params: dict[str, Any] | None = None, *, data: Sequence[str] | None = None) -> None:
    """Check a learner class on every data kind it ``accepts`` (or those in ``data``).

    Seeded pretraining repeats; ``predict_proba`` gives one probability row per sample over the
    data's classes and changes nothing; ``predict`` is its argmax; a checkpoint restores the learner
    with its optimizer (the next update matches).
    """
    name = cls.__name__
    make = _factory("learner", cls, params)
    for kind in _kinds(cls, data):
        space, train, other = _data(kind)
        who = f"{name} on {kind}"

        def pretrained(train: Batch = train, space: DataSpace = space, who: str = who) -> Learner:
            learner = make()
            _expect(isinstance(learner, Learner), who, "is not a streamsim.Learner")
            learner.pretrain(train.x, train.labels, SetupContext(seed=3, space=space))
            return learner

        a, b = pretrained(), pretrained()
        for learner in (a, b):
            _expect(learner.learn(other.x[:8], other.labels[:8]) is None, who, "learn must return None")
        p = a.predict_proba(other.x)
        _expect(p.shape == (len(other), space.n_classes), who,
                f"predict_proba gave shape {tuple(p.shape)}, not (samples, classes) = {(len(other), space.n_classes)}")
        _expect(bool(torch.allclose(p.sum(1), torch.ones(len(other)), atol=1e-4)) and bool((p >= 0).all()), who,
                "predict_proba rows are not probabilities (non-negative, summing to 1)")
        _expect(_same(p, a.predict_proba(other.x)), who, "predict_proba changed the learner (or drew on global randomness)")
        _expect(_same(p, b.predict_proba(other.x)), who, "two learners pretrained from the same seed disagree")
        _expect(_same(a.predict(other.x), p.argmax(1)), who, "predict is not the argmax of predict_proba")

        if has(a, Checkpointable):
            a.learn(other.x[:8], other.labels[:8])
            c = pretrained()
            c.restore_state(_through_disk(a.checkpoint_state()))
            for learner in (a, c):  # the optimizer state came along too: the next update is the same
                learner.learn(other.x[8:], other.labels[8:])
            _expect(_same(a.predict_proba(train.x), c.predict_proba(train.x)), who,
                    "a learner restored from its checkpoint predicts differently after the same update")


# --- defenses -----------------------------------------------------------------------------------------
def check_defense(cls: type[Defense], params: dict[str, Any] | None = None, *,
                  data: Sequence[str] | None = None) -> None:
    """Check a defense class on every data kind it ``accepts`` (or those in ``data``).

    After ``fit`` on a trusted batch (beside a pretrained target learner), ``screen`` gives one
    boolean verdict and one score per sample, gives them again for the same batch (a query changes
    nothing), and a second defense fitted from the same seed agrees; with the ``Scoring`` ability,
    ``score`` is the score ``screen`` decided by, against ``boundary``; a checkpoint restores it.
    """
    name = cls.__name__
    make = _factory("defense", cls, params)
    for kind in _kinds(cls, data):
        space, train, other = _data(kind)
        who = f"{name} on {kind}"
        learner = _target("learner", kind)
        learner.pretrain(train.x, train.labels, SetupContext(seed=0, space=space))

        def fitted(train: Batch = train, space: DataSpace = space, who: str = who, learner: Learner = learner) -> Defense:
            defense = make()
            _expect(isinstance(defense, Defense), who, "is not a streamsim.Defense")
            _expect(defense.fit(train, learner, SetupContext(seed=5, space=space)) is None, who, "fit must return None")
            return defense

        a, b = fitted(), fitted()
        batch = other.with_(is_poison=torch.arange(len(other)) % 2 == 0)
        v1 = a.screen(batch)
        _expect(isinstance(v1, Verdicts) and len(v1) == len(batch), who, "screen must return one Verdicts entry per sample")
        v2 = a.screen(batch)
        _expect(_same(v1.accept, v2.accept) and _same(v1.score, v2.score), who,
                "screen gave another answer for the same batch (a query must change nothing and draw only on the seed)")
        v3 = b.screen(batch)
        _expect(_same(v1.accept, v3.accept) and _same(v1.score, v3.score), who,
                "two defenses fitted from the same seed screen differently")
        if has(a, Scoring):  # the optional score is the one screen decides by
            with torch.no_grad():
                score = a.score(batch.x, batch.labels)
            _expect(bool(torch.allclose(score, v1.score, atol=1e-6)), who, "score(x, claimed) is not the score screen gave")
            _expect(_same(v1.accept, v1.score >= a.boundary), who, "screen does not accept exactly the scores >= boundary")

        if has(a, Checkpointable):
            a.after_learn(other)
            c = fitted()
            c.restore_state(_through_disk(a.checkpoint_state()))
            both = Batch.concat([train, other])
            va, vc = a.screen(both), c.screen(both)
            _expect(_same(va.accept, vc.accept) and _same(va.score, vc.score), who,
                    "a defense restored from its checkpoint screens differently")


# --- attacks ------------------------------------------------------------------------------------------
def check_attack(cls: type[Attack], params: dict[str, Any] | None = None, *, data: Sequence[str] | None = None,
                 target: str | None = None) -> None:
    """Check an attack class on every data kind it ``accepts`` (or those in ``data``).

    Against a pretrained target learner (``target``, a registered learner name; default small-cnn on
    images, mlp on vectors) screened by De-Pois, through the view its ``knowledge`` allows: ``craft``
    returns a batch of the data's shape, inside the data's ranges and grids, with labels among the
    classes, that differs from its base (it poisons something), within the query budget, and the
    same again from the same seeds; its harm probes (``HarmProbes``) are well formed; a checkpoint
    restores it (the next craft matches).
    """
    name = cls.__name__
    make = _factory("attack", cls, params)
    for kind in _kinds(cls, data):
        space, train, other = _data(kind)
        who = f"{name} on {kind}"
        learner = _factory("learner", resolve("learner", target), None)() if target else _target("learner", kind)
        learner.pretrain(train.x, train.labels, SetupContext(seed=0, space=space))
        defense = _target("defense", kind)
        defense.fit(train, learner, SetupContext(seed=0, space=space))

        def prepared(view: TargetView | None = None, train: Batch = train, space: DataSpace = space, who: str = who,
                     learner: Learner = learner, defense: Defense = defense, other: Batch = other) -> tuple[Attack, Any]:
            attack = make()
            _expect(isinstance(attack, Attack), who, "is not a streamsim.Attack")
            probes: dict[str, Probe] = {}
            if has(attack, HarmProbes):
                probes = attack.harm_probes(other, space)
                for key, probe in probes.items():
                    _expect(isinstance(probe, Probe) and probe.x.shape[1:] == space.shape and bool(
                        ((probe.wanted >= 0) & (probe.wanted < space.n_classes)).all()), who,
                            f"harm probe {key!r} is not a Probe of the data's shape with wanted labels among the classes")
            view = view or TargetView(attack.knowledge, learner, defense, query_budget=QUERY_BUDGET)
            _expect(attack.prepare(SetupContext(seed=1, pool=train, view=view, space=space, probes=probes)) is None,
                    who, "prepare must return None")
            return attack, view

        def craft(attack: Attack, view: Any, space: DataSpace = space, other: Batch = other) -> Batch:
            ctx = CraftContext(time=0.0, rng=np.random.default_rng(2), generator=torch.Generator().manual_seed(2),
                               view=view, space=space)
            return attack.craft(other, ctx)

        (a, view), (b, view_b) = prepared(), prepared()
        x, y = craft(a, view), craft(b, view_b)
        _expect(isinstance(x, Batch), who, "craft must return a Batch")
        _expect(tuple(x.x.shape[1:]) == space.shape and x.x.dtype == other.x.dtype, who,
                f"crafted samples have shape {tuple(x.x.shape[1:])} and dtype {x.x.dtype}, not the data's {space.shape}")
        _expect(space.contains(x.x), who, "a crafted sample left the data's range (or an integer feature its grid)")
        _expect(len(x) == 0 or bool(((x.labels >= 0) & (x.labels < space.n_classes)).all()), who,
                "a crafted label is not one of the classes")
        _expect(view.queries_used <= QUERY_BUDGET, who, "used more queries than the budget")
        _expect(_same(x.x, y.x) and _same(x.labels, y.labels), who, "two attacks from the same seeds crafted differently")
        _expect(not _unchanged(x, other), who, "craft returned its base samples unchanged (it poisons nothing)")

        if has(a, Checkpointable):
            c, _ = prepared(view)  # the same view: what the target answered so far is the run's, not the attack's
            c.restore_state(_through_disk(a.checkpoint_state()))
            x, y = craft(a, view), craft(c, view)
            _expect(_same(x.x, y.x) and _same(x.labels, y.labels), who,
                    "an attack restored from its checkpoint crafts differently")


# --- datasets -----------------------------------------------------------------------------------------
def check_dataset(load: Callable[[str | None], RawData], root: str | None = None) -> None:
    """A dataset loader either loads well-formed data or raises a one-line :class:`~streamsim.DataError`."""
    who = getattr(load, "__name__", repr(load))
    try:
        raw = load(root)
    except DataError as e:
        _expect(bool(str(e)) and "\n" not in str(e), who, "its DataError must be one line saying how to get the data")
        return
    _expect(isinstance(raw, RawData), who, "a loader must return a RawData")
    _expect(len(raw.x) == len(raw.y) > 0, who, "x and y must be non-empty and the same length")
    if raw.is_vectors:
        _expect(raw.x.ndim == 2 and bool(np.isfinite(raw.x).all()), who, "feature vectors must be finite N×d floats")
    else:
        _expect(raw.x.dtype == np.uint8 and raw.x.shape[1:] == (28, 28), who, "images must be uint8 N×28×28")
    _expect(bool(((raw.y >= 0) & (raw.y < raw.n_classes)).all()), who, "labels must lie in 0..n_classes-1")
