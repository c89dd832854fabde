"""Gradient matching: perturb a batch so that the training step it causes points where the attacker wants.

An online learner takes an optimizer step along ``∇θ CE(f(x + δ), y)`` for every batch it learns. If
the attacker knows (or has a stand-in for) ``f``, it can choose ``δ`` — within ``‖δ‖∞ ≤ ε``, true
labels kept — so that this *parameter* gradient has a chosen direction ``d``: the step then moves
the model along ``−d``. Geiping et al. ("Witches' Brew", ICLR 2021) match ``d`` to the gradient of an
adversarial loss on target inputs (targeted poisoning, :mod:`attacks.targeted`); Pang et al.
("Accumulative Poisoning Attacks on Real-time Data", NeurIPS 2021) steer the model towards a state
where a later trigger batch does the most damage (:mod:`attacks.accumulative`).

The objective ``1 − cos(∇θ CE(f(x + δ), y), d)`` is differentiated with respect to ``δ`` through the
parameter gradient — a second-order derivative — for the whole batch at once
(``autograd.grad(..., create_graph=True)``): the learner steps on the batch's mean loss, so the
batch's mean gradient is what has to match. ``δ`` moves by signed steps and is projected back into
the ε-ball and the data's space after each (PGD on the matching loss).

>>> import torch
>>> from torch import nn
>>> torch.manual_seed(0) is not None
True
>>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
>>> x, y = torch.rand(8, 4) * 2 - 1, torch.randint(0, 3, (8,))
>>> params = list(net.parameters())
>>> wanted = flat_grad(param_grads(net, params, torch.rand(8, 4), torch.randint(0, 3, (8,))))
>>> before = cosine(flat_grad(param_grads(net, params, x, y)), wanted)
>>> poison = match_gradient(net, params, x, y, wanted, eps=0.5, steps=20)
>>> bool((poison - x).abs().max() <= 0.5 + 1e-6), cosine(flat_grad(param_grads(net, params, poison, y)), wanted) > before
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from attacks.fgsm import has_score
from attacks.gradients import frozen, modules_of
from attacks.shadow import RENAMED, Shadows, ShadowSettings, distill_shadows, distillation_pool
from streamsim import (
    IMAGES,
    Attack,
    ConfigError,
    DataSpace,
    Differentiable,
    PluginError,
    SetupContext,
    TargetView,
    ThreatModelError,
    require,
    settings_table,
)

MATCHING_SHADOW = ShadowSettings(classifier="small-cnn", epochs=3)
"""Cheaper shadows than FGSM's paper-cnn default: matching runs many forward/backward passes per batch."""
LogitsFn = Callable[[torch.Tensor], torch.Tensor]
Penalty = Callable[[torch.Tensor], torch.Tensor]
"""An extra loss on the crafted inputs, added to the matching loss (e.g. staying above a critic's boundary)."""


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Eval mode for the duration (the deployed function, no dropout noise), modes restored on exit.

    Unlike :func:`attacks.gradients.frozen` the weights keep ``requires_grad``: matching needs the
    parameter gradient. ``autograd.grad`` never writes ``.grad``, so the learner's optimizer sees nothing.
    """
    modes = [(m, m.training) for m in modules]
    for m, _ in modes:
        m.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.train(mode)


def param_grads(logits: LogitsFn, params: Sequence[torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                create_graph: bool = False) -> tuple[torch.Tensor, ...]:
    """``∇θ`` of the batch's mean cross-entropy — the gradient one training step on ``(x, y)`` follows."""
    return torch.autograd.grad(F.cross_entropy(logits(x), y), params, create_graph=create_graph)


def flat_grad(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """The gradients of every parameter as one vector."""
    return torch.cat([g.reshape(-1) for g in grads])


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a, b, dim=0))


def match_gradient(logits: LogitsFn, params: Sequence[torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   direction: torch.Tensor, *, eps: float, steps: int, step_size: float | None = None,
                   project: Callable[[torch.Tensor], torch.Tensor] = lambda v: v.clamp(-1, 1),
                   penalty: Penalty | None = None) -> torch.Tensor:
    """``x + δ`` with ``‖δ‖∞ ≤ ε`` whose training gradient (true labels ``y``) points along ``direction``.

    ``steps`` signed steps of ``step_size`` (default ``2.5·ε/steps``, the usual PGD schedule) on
    ``1 − cos(∇θ CE, direction)`` (+ ``penalty(x + δ)``), each projected into the ε-ball around ``x``
    and then by ``project`` into the data's space. ``direction`` is detached: it is a fixed goal.
    """
    if eps <= 0 or steps <= 0 or len(x) == 0:
        return x.detach().clone()
    step = step_size if step_size is not None else 2.5 * eps / steps
    goal = direction.detach()
    x0 = x.detach()
    poison = x0.clone()
    for _ in range(steps):
        poison.requires_grad_(True)
        g = flat_grad(param_grads(logits, params, poison, y, create_graph=True))
        loss = 1 - F.cosine_similarity(g, goal, dim=0)
        if penalty is not None:
            loss = loss + penalty(poison)
        (grad,) = torch.autograd.grad(loss, poison)
        with torch.no_grad():
            poison = poison - step * grad.sign()
            poison = project(x0 + (poison - x0).clamp(-eps, eps))
    return poison.detach()


def boundary_penalty(score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], labels: torch.Tensor,
                     boundary: float, weight: float) -> Penalty | None:
    """A hinge that pushes each sample's critic score above ``boundary`` (none with ``weight = 0``).

    The paper's composed FGSM steps up the critic's score before the classifier step; here the
    critic's gradient joins the matching objective, so the poison stays acceptable while it matches.
    """
    if weight <= 0:
        return None

    def penalty(x: torch.Tensor) -> torch.Tensor:
        return weight * F.relu(boundary - score(x, labels)).mean()

    return penalty


def parameters_of(*modules: nn.Module) -> list[torch.Tensor]:
    """The trainable parameters of the networks, in a fixed order."""
    return [p for m in modules for p in m.parameters() if p.requires_grad]


class MatchingAttack(Attack):
    """What the gradient-matching attacks share: the model they match through and the critic term.

    ``knowledge = "white-box"`` matches through the deployed learner itself (its weights as they are
    at each craft) and, with ``critic_weight > 0``, the defense's differentiable score;
    ``"posteriors"`` (black box) distils shadow copies first (:mod:`attacks.shadow`, settings in the
    ``shadow`` table: see :class:`~attacks.shadow.ShadowSettings`) and matches through those.
    """

    accepts = ("images", "vectors")

    renamed: ClassVar[dict[str, str]] = RENAMED  # flat shadow_* keywords are FGSM's old spelling

    @property
    def needs_training_data(self) -> bool:
        """Only a black-box attack distilling on ``shadow.pool = "training"`` reads ``context.training``."""
        return self.shadow.pool == "training" and self.knowledge == "posteriors"

    def craft_steps(self) -> int:
        """Gradient steps crafting one poison takes (each a second-order pass through the batch)."""
        return self.steps

    def _set_up_matching(self, knowledge: str, eps: float, steps: int, critic_weight: float,
                         shadow: ShadowSettings | Mapping[str, Any] | None) -> None:
        if knowledge not in ("white-box", "posteriors"):
            raise ConfigError(f"knowledge must be 'white-box' or 'posteriors', got {knowledge!r}")
        if eps < 0 or steps < 0 or critic_weight < 0:
            raise ConfigError(f"eps, steps and critic_weight must be >= 0, got {eps}, {steps}, {critic_weight}")
        self.knowledge = knowledge  # per instance: the simulator reads attack.knowledge
        self.eps, self.steps, self.critic_weight = eps, steps, critic_weight
        self.shadow = settings_table(ShadowSettings, shadow, "shadow", MATCHING_SHADOW)
        self.shadows_: Shadows | None = None
        self.critic_skipped_ = False
        self.space_: DataSpace = IMAGES

    def _prepare_model(self, context: SetupContext) -> None:
        """White-box: check the learner is differentiable. Black-box: distil the shadows."""
        view = context.view
        if view is None:
            raise ThreatModelError(f"{type(self).__name__} needs a view of the target ({self.knowledge!r})")
        self.space_ = context.space
        if self.knowledge == "white-box":
            require(view.learner, Differentiable, f"{type(self).__name__} white-box needs a differentiable learner; learner")
            if not modules_of(view.learner):
                raise PluginError(f"{type(self).__name__} white-box needs a learner with torch weights to match gradients")
            self.critic_skipped_ = self.critic_weight > 0 and not has_score(view.defense, context.space)
            return
        pool = distillation_pool(self.shadow, context, type(self).__name__)
        self.shadows_ = distill_shadows(view, pool, self.shadow, context.seed, classifier=True,
                                        critic=self.critic_weight > 0, cache=context.cache, space=context.space)
        if self.shadows_.classifier is None:
            raise PluginError(f"{type(self).__name__}: the query budget bought no answers to distil a shadow on")
        self.critic_skipped_ = self.critic_weight > 0 and self.shadows_.critic is None

    def _model(self, view: TargetView) -> tuple[LogitsFn, list[torch.Tensor], list[nn.Module]]:
        """The logits function, its parameters, and its networks (kept in eval mode while crafting)."""
        if self.knowledge == "white-box":
            learner = view.learner
            modules = modules_of(learner)
            return learner.logits, parameters_of(*modules), modules
        if self.shadows_ is None:
            raise PluginError(f"{type(self).__name__} with knowledge 'posteriors': call prepare() first")
        net = self.shadows_.classifier
        return net, parameters_of(net), [net]

    @contextmanager
    def _crafting(self, view: TargetView) -> Iterator[tuple[LogitsFn, list[torch.Tensor]]]:
        """The model to match through, in eval mode, with the critic frozen (its input gradient only)."""
        logits, params, nets = self._model(view)
        critic = view.defense if self.knowledge == "white-box" else (self.shadows_.critic if self.shadows_ else None)
        with eval_mode(*nets), frozen(critic):
            yield logits, params

    def _penalty(self, view: TargetView, labels: torch.Tensor) -> Penalty | None:
        """The critic term of the objective, or ``None`` (off, or no score to climb)."""
        if self.critic_weight <= 0 or self.critic_skipped_:
            return None
        if self.knowledge == "white-box":
            return boundary_penalty(view.defense.score, labels, float(view.defense.boundary), self.critic_weight)
        return boundary_penalty(self.shadows_.score, labels, self.shadows_.boundary, self.critic_weight)

    def _match(self, view: TargetView, x: torch.Tensor, y: torch.Tensor, direction: torch.Tensor, eps: float,
               logits: LogitsFn, params: list[torch.Tensor]) -> torch.Tensor:
        return match_gradient(logits, params, x, y, direction, eps=eps, steps=self.steps,
                              project=self.space_.project, penalty=self._penalty(view, y))

    def _stats(self) -> dict[str, float]:
        out = {f"shadow_{k}": v for k, v in (self.shadows_.stats if self.shadows_ is not None else {}).items()}
        if self.critic_weight > 0:
            out["critic_stage_skipped"] = float(self.critic_skipped_)
        return out
