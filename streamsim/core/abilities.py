"""Optional abilities, declared one way: a ``typing.Protocol`` per ability, checked by :func:`has`.

A learner, defense or attack needs only its role's required methods (:mod:`streamsim.core.base`).
Anything more is an ability a component has when it defines the methods below — no base class to
inherit, no flag to set. The simulator, the runner and the attacks ask :func:`has` (or
:func:`require`, which raises a :class:`~streamsim.core.errors.PluginError` naming what is missing)
and never call an optional method to see whether it raises.

==================  ===========  ==========================================================
ability             who          what for
==================  ===========  ==========================================================
``Differentiable``  learner      ``logits(x)``: white-box attacks differentiate through it
``Features``        learner      ``features(x)``: feature-space defenses
``Bounded``         defense      ``boundary``: verdict scores under it are rejected (the
                                 score plots, the live dashboard)
``Scoring``         defense      ``score(x, claimed)`` (differentiable) and ``boundary``:
                                 white-box attacks, score queries (``posteriors``)
``LabelConditioned`` defense     ``conditioned_score(x, labels)``: the score as if conditioned
                                 on ``labels``, whatever the defense itself conditions on
``HoldoutBoundary`` defense     ``boundary_from`` and ``fit_boundary(batch)``: with
                                 ``boundary_from == "test"`` the runner refits the boundary
                                 on the held-out test split (the reference code's protocol)
``Checkpointable``  any          ``checkpoint_state()`` / ``restore_state(state)``: ``run
                                 --checkpoint-every`` and resume
``VerdictBeliefs``  attack       ``verdict_beliefs()``: what it believes the defense decided,
                                 scored by the simulator
``HarmProbes``      attack       ``harm_probes(test, space)``: held-out inputs with the label the
                                 attack wants them to get (ASR, targeted success), measured
                                 at every evaluation of both runs (:mod:`streamsim.core.probes`)
``ClassChecked``    any          ``check_classes(n_classes)``: settings that name classes
                                 (a target) are checked against the data before the run
                                 (``streamsim validate``), not found out at set-up
``CraftCost``       attack       ``craft_steps()``: gradient steps crafting one poison takes;
                                 the work a scenario asks for (steps × poisons) is bounded
                                 before the run
==================  ===========  ==========================================================

>>> import torch
>>> class Threshold:
...     boundary = 0.0
...     def screen(self, batch): ...
...     def score(self, x, claimed):
...         return x.flatten(1).mean(1)
>>> has(Threshold(), Scoring), has(Threshold(), Checkpointable)
(True, False)
>>> require(Threshold(), Checkpointable, "defense")
Traceback (most recent call last):
...
streamsim.core.errors.PluginError: defense Threshold cannot be checkpointed: it has no checkpoint_state / restore_state
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from streamsim.core.errors import PluginError


@runtime_checkable
class Differentiable(Protocol):
    """A learner whose logits are differentiable in ``x`` (white-box classifier attacks)."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``N × n_classes`` logits, differentiable in ``x``."""
        ...


@runtime_checkable
class Features(Protocol):
    """A learner that exposes its penultimate-layer features (feature-space defenses)."""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``N × d`` features of ``x``, computed without gradients."""
        ...


@runtime_checkable
class Scoring(Protocol):
    """A defense that rejects by a differentiable per-sample trust score under a boundary."""

    def score(self, x: torch.Tensor, claimed: torch.Tensor) -> torch.Tensor:
        """Trust score (higher = more trusted) of submitting ``x`` with labels ``claimed``, as
        :meth:`screen` computes it: the defense conditions on whatever it conditions on."""
        ...

    @property
    def boundary(self) -> float:
        """Scores under this are rejected."""
        ...


@runtime_checkable
class Bounded(Protocol):
    """A defense that rejects the samples whose verdict score is under a boundary (scored or not)."""

    @property
    def boundary(self) -> float:
        """Verdict scores under this are rejected."""
        ...


@runtime_checkable
class LabelConditioned(Protocol):
    """A scoring defense whose score is conditioned on a label it may choose itself (De-Pois)."""

    def conditioned_score(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The score of ``x`` as a sample of class ``labels`` (differentiable in ``x``)."""
        ...


@runtime_checkable
class HoldoutBoundary(Protocol):
    """A defense that can fit its boundary on clean data other than its trusted set.

    The reference code of Oschart et al. fitted De-Pois's boundary on the very clean test images it
    then attacked; a defense that offers this declares ``boundary_from`` and, when it says
    ``"test"``, the runner hands it the held-out test split (true labels) once after ``fit``.
    """

    boundary_from: str

    def fit_boundary(self, clean: Any) -> None:
        """Refit the boundary on ``clean`` (a :class:`~streamsim.core.batch.Batch` of clean samples)."""
        ...


@runtime_checkable
class Checkpointable(Protocol):
    """A component whose state can be saved and restored (``run --checkpoint-every``, resume)."""

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything this component changed since it was set up, as a state tree (see
        :mod:`streamsim.state`). A stateless component returns ``{}``."""
        ...

    def restore_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`checkpoint_state`. Called after set-up (pretrain / fit / prepare)."""
        ...


@runtime_checkable
class VerdictBeliefs(Protocol):
    """An attack that says what it believes the defense decided on its own batches."""

    def verdict_beliefs(self) -> dict[str, dict[float, torch.Tensor]]:
        """``{kind: {submitted_at: accept}}``, one bool per sample of the batch screened then. The
        simulator, which alone holds the true verdicts, scores each kind (``<kind>_accuracy``)."""
        ...


@runtime_checkable
class HarmProbes(Protocol):
    """An attack with a goal beyond accuracy: a backdoor's trigger, a targeted poison's targets."""

    def harm_probes(self, test: Any, space: Any) -> dict[str, Any]:
        """``{name: Probe}`` built from the held-out evaluation split ``test`` (a
        :class:`~streamsim.core.batch.Batch`) and the data space; deterministic in the attack's settings,
        since the no-attack baseline measures the same probes. Called before :meth:`prepare`."""
        ...


@runtime_checkable
class ClassChecked(Protocol):
    """A component with settings that name classes, checked against the data before anything runs."""

    def check_classes(self, n_classes: int) -> None:
        """Raise :class:`~streamsim.core.errors.ConfigError` when a setting names a class outside ``0..n_classes-1``."""
        ...


@runtime_checkable
class ShapeChecked(Protocol):
    """A component with settings that depend on the images' size (a pooling window), checked before anything runs."""

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise :class:`~streamsim.core.errors.ConfigError` when a setting does not fit images of ``shape`` (C×H×W)."""
        ...


@runtime_checkable
class CraftCost(Protocol):
    """An attack whose crafting cost grows with its settings (gradient steps per poison)."""

    def craft_steps(self) -> int:
        """Gradient steps (forward and backward passes) crafting one poison takes."""
        ...


_MISSING = {
    Features: "exposes no features: it has no features(x)",
    Bounded: "has no boundary",
    Differentiable: "is not differentiable: it has no logits(x)",
    Scoring: "has no differentiable score: it has no score(x, claimed) and boundary",
    LabelConditioned: "has no label-conditioned score: it has no conditioned_score(x, labels)",
    HoldoutBoundary: "cannot fit its boundary on other data: it has no boundary_from / fit_boundary",
    Checkpointable: "cannot be checkpointed: it has no checkpoint_state / restore_state",
    VerdictBeliefs: "exposes no verdict beliefs: it has no verdict_beliefs()",
    HarmProbes: "defines no harm probes: it has no harm_probes(test, space)",
    ClassChecked: "checks no class settings: it has no check_classes(n_classes)",
    CraftCost: "declares no crafting cost: it has no craft_steps()",
}


def has(component: object, ability: type) -> bool:
    """Whether ``component`` has the optional ``ability`` (one of the protocols above)."""
    return isinstance(component, ability)


def require(component: object, ability: type, role: str) -> None:
    """Raise a :class:`PluginError` naming ``role`` and what is missing unless ``component`` has ``ability``."""
    if not has(component, ability):
        raise PluginError(f"{role} {type(component).__name__} {_MISSING[ability]}")
