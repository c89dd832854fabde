"""``fgsm``: gradient-sign poison that slips past De-Pois's critic and hurts the classifier.

Oschart et al., "Breaking the De-Pois Poisoning Defense", arXiv 2204.01090. De-Pois accepts a
sample when its critic scores ``(x, label)`` above a boundary; the attack perturbs clean images
with FGSM (Goodfellow et al. 2015), ``x' = clip(x + ε·sign(∇ₓ loss), −1, 1)``, so that the critic
trusts them (``critic`` stage: the step raises the score) and/or the classifier mislearns from
them (``classifier`` stage: the step raises the cross-entropy with the true label, or lowers it to
``target``). The claimed label stays the true one, so only the pixels are poisoned.

``mode`` names the stages in the order they are applied, each a full ε step clipped to
``[−1, 1]``: ``critic``, ``classifier``, ``critic-classifier`` (classifier step on the
critic-stepped image, the paper's strongest) and ``classifier-critic``.

Threat model (``knowledge``):

- ``white-box``: gradients of the deployed critic (``defense.score``, conditioned as the defense
  screens) and learner (``learner.logits``), taken afresh at every craft.
- ``posteriors`` (the paper's black box): :meth:`FGSM.prepare` distils shadow copies from queries
  of probabilities and critic scores on the attacker's pool, within the query budget (see
  :mod:`attacks.shadow`); crafting then uses only the shadows. :meth:`FGSM.fidelity` measures
  how well they stand in and keeps the numbers in ``fidelity_``.

**Shadow budget and the reference recipe** (``posteriors``): everything about the shadows is
one table, ``shadow`` (:class:`~attacks.shadow.ShadowSettings`; in a scenario
``[attackers.attack.params.shadow]`` or ``shadow = { points = 1000 }``). They are distilled on
the attacker's pool, one query per point and model, so a budget larger than twice the pool is not
spent. ``shadow.pool = "attacker+base"`` adds the images the source poisons (its base split,
e.g. ``pool = "test"``), which the attacker holds anyway. ``shadow.pool = "training"`` distils on
the target's own training data instead, as the reference distilled its shadow on the digits its
target was trained on; the scenario must grant it (the source's ``training_data = true``,
:class:`~streamsim.core.base.SetupContext` ``training``). ``shadow = { alpha = 0.1, kl_weight = 0.9,
epochs = 1, batch_size = 32, critic_batch_size = 2084, critic_temperature = 1.0,
teacher_labels = "claimed" }`` is the reference code's recipe (see :mod:`attacks.shadow`);
``shadow.classifier = "paper-cnn-channels-first"`` is the network its distiller actually built
(rows read as channels, see :func:`streamsim.nn.paper_cnn_channels_first`). The summary reports
``shadow_queries`` and ``shadow_points`` (what was bought) and the ``fidelity_*`` numbers.
The flat ``shadow_*`` keywords of earlier versions are refused with their new spelling.

``critic_labels`` (white-box): the critic stage raises the score the defense will compute
(``"defense"``: ``defense.score``, which under De-Pois's ``condition="predicted"`` conditions on
the model's current prediction), or the score conditioned on the claimed label (``"claimed"``, as
the reference code did; ``defense.conditioned_score`` when the defense has one,
:class:`~streamsim.core.abilities.LabelConditioned`). The shadow critic is always conditioned on the
claimed label.

**Defenses without a gradient.** The critic stage needs a differentiable ``defense.score``:
``depois``, ``centroid`` (distance to the class centroid) and ``loss-trim`` (the live learner's
loss, when it has ``logits``) have one; ``knn``, ``roni``, ``spectral``, ``none`` and ``oracle``
do not. Against those the critic stage is *skipped* — the attack falls back to its classifier
stage(s) (``critic`` alone leaves the pixels as they are) — and says so: ``stats()`` reports
``critic_stage_skipped = 1.0`` (0.0 when the stage ran), which lands in the run summary under the
attacker and in the timeline. Black-box, the shadow critic is distilled only when the defense
answers score queries (see :func:`attacks.shadow.query_teachers`), with the same fallback.
Trained shadows are cached in ``context.cache`` when there is one (keyed by the answers bought).

>>> import numpy as np, torch
>>> from torch import nn
>>> from streamsim import Batch, CraftContext, Defense, Learner, TargetView
>>> class Net(Learner):
...     def __init__(self): self.model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
...     def logits(self, x): return self.model(x)
...     def predict_proba(self, x): return self.model(x).softmax(1)
>>> class Brightness(Defense):  # a toy critic: brighter images are more trusted
...     def score(self, x, y): return x.flatten(1).mean(1)
...     boundary = 0.0
>>> view = TargetView("white-box", Net(), Brightness())
>>> ctx = CraftContext(time=0.0, rng=np.random.default_rng(0), generator=torch.Generator(), view=view)
>>> base = Batch.clean(torch.zeros(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]))
>>> poison = FGSM(eps=0.1, mode="critic").craft(base, ctx)
>>> float(poison.x.max()), poison.labels.tolist()
(0.10000000149011612, [0, 1, 2, 3])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import torch

from attacks.gradients import classifier_grad, critic_grad, frozen
from attacks.shadow import RENAMED, Shadows, ShadowSettings, distill_shadows, distillation_pool
from streamsim import (
    IMAGES,
    Attack,
    Batch,
    ConfigError,
    CraftContext,
    DataSpace,
    Defense,
    Differentiable,
    LabelConditioned,
    Learner,
    PluginError,
    Scoring,
    SetupContext,
    TargetView,
    ThreatModelError,
    has,
    require,
    settings_table,
)

Mode = Literal["critic", "classifier", "critic-classifier", "classifier-critic"]
Knowledge = Literal["white-box", "posteriors"]
MODES = ("critic", "classifier", "critic-classifier", "classifier-critic")
KNOWLEDGE = ("white-box", "posteriors")
DEFAULT_SHADOW = ShadowSettings()
Direction = Callable[[torch.Tensor], torch.Tensor]
"""Maps the current images to the ascent direction of one stage's objective."""


def fgsm(x: torch.Tensor, direction: Direction, eps: float) -> torch.Tensor:
    """One gradient-sign step of size ``eps`` for the whole batch, clipped to ``[−1, 1]``."""
    return (x + eps * direction(x).sign()).clamp_(-1.0, 1.0)


def has_score(defense: Defense | None, space: DataSpace = IMAGES) -> bool:
    """Whether the defense has a differentiable score (:class:`~streamsim.core.abilities.Scoring`) that answers.

    Having the method is not enough: a defense may score only with some learners (``loss-trim``
    needs ``logits``), so a probe that raises ``NotImplementedError`` means no score.
    """
    if defense is None or not has(defense, Scoring):
        return False
    try:
        with torch.no_grad(), frozen(defense):  # eval mode: a probe must not draw dropout randomness
            defense.score(torch.zeros(1, *space.shape), torch.zeros(1, dtype=torch.long))
    except NotImplementedError:
        return False
    return True


class FGSM(Attack):
    """Gradient-sign poison against De-Pois's critic and/or the classifier (Oschart et al.)."""

    knowledge = "white-box"
    accepts = ("images", "vectors")
    labels = {"white-box": "white-box FGSM", "posteriors": "black-box FGSM"}  # the attack paper's names

    renamed: ClassVar[dict[str, str]] = RENAMED  # the flat shadow_* keywords of earlier versions

    def __init__(
        self,
        eps: float = 0.3,
        mode: Mode = "critic-classifier",
        knowledge: Knowledge = "white-box",
        target: int | None = None,
        critic_labels: Literal["defense", "claimed"] = "defense",
        shadow: ShadowSettings | Mapping[str, Any] = DEFAULT_SHADOW,
    ) -> None:
        if eps < 0:
            raise ConfigError(f"eps must be >= 0, got {eps}")
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if knowledge not in KNOWLEDGE:
            raise ConfigError(f"knowledge must be one of {', '.join(KNOWLEDGE)}, got {knowledge!r}")
        if critic_labels not in ("defense", "claimed"):
            raise ConfigError(f"critic_labels must be 'defense' or 'claimed', got {critic_labels!r}")
        if target is not None and target < 0:
            raise ConfigError(f"target must be a class >= 0, got {target}")
        self.eps = eps
        self.mode = mode
        self.knowledge = knowledge  # per instance: the simulator reads attack.knowledge
        self.target = target
        self.critic_labels = critic_labels
        self.shadow = settings_table(ShadowSettings, shadow, "shadow")
        self.shadows_: Shadows | None = None
        self.shadow_stats_: dict[str, float] = {}
        self.fidelity_: dict[str, float] = {}
        self.critic_skipped_ = False  # set in prepare: the defense has no differentiable score

    def __repr__(self) -> str:
        return f"{type(self).__name__}(eps={self.eps}, mode={self.mode!r}, knowledge={self.knowledge!r})"

    @property
    def needs_training_data(self) -> bool:
        """Only a black-box attack distilling on ``shadow.pool = "training"`` reads ``context.training``."""
        return self.shadow.pool == "training" and self.knowledge == "posteriors"

    def check_classes(self, n_classes: int) -> None:
        """``target`` is a class of the data (checked before the run, and again in :meth:`prepare`)."""
        if self.target is not None and self.target >= n_classes:
            raise ConfigError(f"target must be a class 0..{n_classes - 1}, got {self.target}")

    def craft_steps(self) -> int:
        """Gradient steps crafting one poison takes: one per stage."""
        return len(self.stages)

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages in the order they are applied."""
        return tuple(self.mode.split("-"))

    def prepare(self, context: SetupContext) -> None:
        """White-box: check the view grants the models. Posteriors: distil the shadows."""
        view = context.view
        if view is None:
            raise ThreatModelError(f"{type(self).__name__} needs a view of the target ({self.knowledge!r})")
        self.check_classes(context.space.n_classes)
        if self.knowledge == "white-box":
            _, defense = self._white_box(view)
            self.critic_skipped_ = "critic" in self.stages and not has_score(defense, context.space)
            return
        pool = distillation_pool(self.shadow, context, type(self).__name__)
        self.shadows_ = distill_shadows(view, pool, self.shadow, context.seed,
                                        classifier="classifier" in self.stages, critic="critic" in self.stages,
                                        cache=context.cache, space=context.space)
        self.shadow_stats_ = dict(self.shadows_.stats)
        self.critic_skipped_ = "critic" in self.stages and self.shadows_.critic is None

    def _white_box(self, view: TargetView) -> tuple[Learner, Defense]:
        learner, defense = view.learner, view.defense  # ThreatModelError unless the view is white-box
        if "classifier" in self.stages:
            require(learner, Differentiable, f"{type(self).__name__} white-box needs a differentiable learner; learner")
        return learner, defense

    def directions(self, view: TargetView, claimed: torch.Tensor) -> tuple[dict[str, Direction | None], list[object]]:
        """Each stage's ascent direction, and the objects holding the models to freeze while crafting."""
        if self.knowledge == "white-box":
            learner, defense = self._white_box(view)

            def critic(x: torch.Tensor) -> torch.Tensor:
                if self.critic_labels == "claimed" and has(defense, LabelConditioned):
                    # the reference code's choice: the claimed label, whatever the defense conditions on
                    return critic_grad(defense.conditioned_score, x, claimed)
                return critic_grad(defense.score, x, claimed)  # conditioned as the defense screens

            score_ok = has(defense, Scoring) and not self.critic_skipped_  # probed in prepare
            logits, holders = learner.logits, [learner, defense]
        else:
            if self.shadows_ is None:
                raise PluginError(f"{type(self).__name__} with knowledge 'posteriors': call prepare() first")
            shadows = self.shadows_

            def critic(x: torch.Tensor) -> torch.Tensor:
                return critic_grad(shadows.score, x, claimed)

            score_ok, logits = shadows.critic is not None, shadows.logits
            holders = [m for m in (shadows.classifier, shadows.critic) if m is not None]
        targeted = self.target is not None
        wanted = torch.full_like(claimed, self.target) if targeted else claimed

        def classifier(x: torch.Tensor) -> torch.Tensor:
            return classifier_grad(logits, x, wanted, targeted=targeted)

        return {"critic": critic if score_ok else None, "classifier": classifier}, holders

    def perturb(self, x: torch.Tensor, directions: dict[str, Direction | None], context: CraftContext) -> torch.Tensor:
        """Apply the stages in order; each is one ε step. PGD overrides this."""
        for stage in self.stages:
            if directions[stage] is not None:
                x = fgsm(x, directions[stage], self.eps)
        return x

    def craft(self, base: Batch, context: CraftContext) -> Batch:
        """Perturb the pixels (or features) of the whole batch; the claimed labels stay the true ones.

        The result is projected into the data's space: on images that is the ``[-1, 1]`` clip every
        step already made; on vectors each feature goes back into its observed range and integer
        and binary features back onto their grid.
        """
        directions, holders = self.directions(context.view, base.labels)
        with frozen(*holders):
            x = self.perturb(base.x.detach().clone(), directions, context)
        return base.with_(x=context.space.project(x.detach()))

    def stats(self) -> dict[str, float]:
        """For the run summary: the distillation's numbers (``shadow_*``); fidelity comes from :meth:`assess`."""
        skipped = {"critic_stage_skipped": float(self.critic_skipped_)} if "critic" in self.stages else {}
        return {**{f"shadow_{k}": v for k, v in self.shadow_stats_.items()}, **skipped}

    def assess(self, x: torch.Tensor, y: torch.Tensor, learner: Learner, defense: Defense) -> dict[str, float]:
        """After the run: shadow fidelity on held-out data (see :meth:`fidelity`)."""
        return {f"fidelity_{k}": v for k, v in self.fidelity(defense, learner, x, y).items()}

    def fidelity(self, defense: Defense | None, learner: Learner | None, x: torch.Tensor,
                 y: torch.Tensor) -> dict[str, float]:
        """Shadow-vs-target agreement on held-out ``(x, y)``; also kept in ``fidelity_``.

        Keys (see :meth:`attacks.shadow.Shadows.fidelity`): ``n``, ``classifier_agreement``,
        ``critic_agreement``, ``critic_accept_real``, ``critic_accept_shadow``,
        ``critic_rank_corr``. Empty for a white-box attack, which uses the real models. Holding
        the real models, only the simulator (or a test) can call this, not the attacker.
        """
        if self.shadows_ is None:
            self.fidelity_ = {}
            return {}
        with frozen(defense, learner, self.shadows_.classifier, self.shadows_.critic):
            self.fidelity_ = self.shadows_.fidelity(defense if has(defense, Scoring) else None, learner, x, y)
        return self.fidelity_

    def checkpoint_state(self) -> dict[str, Any]:
        return {}  # shadows are set in prepare (seeded, cached); crafting changes nothing

    def restore_state(self, state: dict[str, Any]) -> None:
        pass
