"""``targeted``: clean-label gradient matching — chosen held-out inputs misclassified as a chosen class.

Geiping et al., "Witches' Brew: Industrial Scale Data Poisoning via Gradient Matching", ICLR 2021.
The attacker picks victims (``n_victims`` held-out inputs, of ``source_class`` or of any class but
``target``) and wants them classified as ``target``. Every batch it sends is made of its own
samples of the ``target`` class, true labels kept, perturbed within ``eps`` so that the parameter
gradient of learning them points the way the adversarial loss ``CE(f(victims), target)`` falls
(:func:`attacks.gradient_matching.match_gradient`): each update the target takes on the poison is
then a step towards misclassifying the victims, while the poisons look like ordinary, correctly
labelled digits.

**Why gradient matching, not feature collision.** Feature collision (Shafahi et al., 2018) places
poisons next to the victim in a *fixed* feature space and needs the model to fit them over many
epochs; an online target is updated end to end, one step per batch, so its features move under the
collision. Gradient matching aims at the one thing an online update is — a gradient step — and is
recomputed against the model as it is at every batch (white-box) or a distilled shadow (black box).

Success is measured by the ``targeted_success`` probe (:mod:`streamsim.core.probes`): the share of
victims classified as ``target`` at each evaluation, in the attacked run and the baseline.
Works on images and feature vectors.

>>> import torch
>>> from streamsim import Batch, IMAGES
>>> test = Batch.clean(torch.zeros(20, 1, 28, 28), torch.arange(20) % 10)
>>> probe = Targeted(target=3, source_class=5, n_victims=4).harm_probes(test, IMAGES)["targeted_success"]
>>> len(probe), probe.wanted.tolist()  # only two held-out fives exist
(2, [3, 3])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch

from attacks.gradient_matching import MATCHING_SHADOW, MatchingAttack, cosine, flat_grad, param_grads
from attacks.shadow import ShadowSettings
from streamsim import Batch, ConfigError, CraftContext, DataSpace, PluginError, Probe, SetupContext

PROBE = "targeted_success"


class Targeted(MatchingAttack):
    """Clean-label poisons whose training gradient matches the victims' adversarial gradient."""

    knowledge = "white-box"

    def __init__(self, target: int = 0, source_class: int | None = None, n_victims: int = 10, victim_seed: int = 0,
                 eps: float = 0.3, steps: int = 10, poison_class: Literal["target", "any"] = "target",
                 knowledge: Literal["white-box", "posteriors"] = "white-box", critic_weight: float = 0.0,
                 shadow: ShadowSettings | Mapping[str, Any] = MATCHING_SHADOW) -> None:
        if target < 0 or (source_class is not None and (source_class < 0 or source_class == target)):
            raise ConfigError(f"need target >= 0 and a source_class >= 0 other than the target, got {target}, {source_class}")
        if n_victims < 1:
            raise ConfigError(f"n_victims must be >= 1, got {n_victims}")
        if poison_class not in ("target", "any"):
            raise ConfigError(f"poison_class must be 'target' or 'any', got {poison_class!r}")
        self.target, self.source_class, self.n_victims, self.victim_seed = target, source_class, n_victims, victim_seed
        self.poison_class = poison_class
        self._set_up_matching(knowledge, eps, steps, critic_weight, shadow)
        self.victims_: torch.Tensor | None = None
        self.own_: Batch | None = None  # its pool samples of the target class
        self.last_cosine_ = float("nan")

    def check_classes(self, n_classes: int) -> None:
        """``target`` and ``source_class`` are classes of the data (checked before the run starts)."""
        if self.target >= n_classes or (self.source_class or 0) >= n_classes:
            raise ConfigError(f"target and source_class must be classes 0..{n_classes - 1}, "
                              f"got {self.target} and {self.source_class}")

    def harm_probes(self, test: Batch, space: DataSpace) -> dict[str, Probe]:
        """The victims: ``n_victims`` held-out inputs of ``source_class`` (any class but the target
        when unset), drawn with ``victim_seed``; wanted label ``target``."""
        self.check_classes(space.n_classes)
        eligible = (test.labels == self.source_class) if self.source_class is not None else (test.labels != self.target)
        idx = np.flatnonzero(eligible.numpy())
        pick = np.sort(np.random.default_rng(self.victim_seed).permutation(idx)[:self.n_victims])
        x = test.x[torch.from_numpy(pick)]
        return {PROBE: Probe(x=x, wanted=torch.full((len(pick),), self.target, dtype=torch.long))}

    def prepare(self, context: SetupContext) -> None:
        probe = context.probes.get(PROBE)
        if probe is None:  # prepared outside a run: aim at the split it poisons
            probe = self.harm_probes(context.base if context.base is not None else context.pool, context.space)[PROBE]
        if len(probe) == 0:
            raise PluginError("targeted: no held-out input fits source_class; nothing to aim at")
        self.victims_ = probe.x
        self._prepare_model(context)
        if self.poison_class == "target":
            pool = context.pool
            self.own_ = pool.subset(pool.labels == self.target) if pool is not None else None
            if self.own_ is None or len(self.own_) == 0:
                raise PluginError(f"targeted: the attacker's pool holds no sample of class {self.target}")

    def craft(self, base: Batch, context: CraftContext) -> Batch:
        if self.victims_ is None:
            raise PluginError("targeted: call prepare() first")
        if self.own_ is not None:  # clean-label: its own samples of the class the victims should take
            base = self.own_.subset(torch.from_numpy(context.rng.integers(0, len(self.own_), size=len(base))))
        with self._crafting(context.view) as (logits, params):
            wanted = torch.full((len(self.victims_),), self.target, dtype=torch.long)
            adversarial = flat_grad(param_grads(logits, params, self.victims_, wanted))
            x = self._match(context.view, base.x, base.labels, adversarial, self.eps, logits, params)
            self.last_cosine_ = cosine(flat_grad(param_grads(logits, params, x, base.labels)), adversarial)
        return base.with_(x=x)

    def stats(self) -> dict[str, float]:
        """``match_cosine``: how well the last batch's training gradient matched the victims' adversarial one."""
        return {"match_cosine": self.last_cosine_, **self._stats()}

    def checkpoint_state(self) -> dict[str, Any]:
        return {"last_cosine": self.last_cosine_}  # everything else is set in prepare

    def restore_state(self, state: dict[str, Any]) -> None:
        self.last_cosine_ = float(state["last_cosine"])
