"""``accumulative``: prepare the online model in secret, then break it with one trigger batch.

Pang et al., "Accumulative Poisoning Attacks on Real-time Data", NeurIPS 2021. An online learner
takes a step on every batch it accepts, so an attacker can move it a little at a time. During the
*accumulative phase* (from the source's ``start`` until ``trigger_at``) every batch the attacker
sends is its own samples with their true labels, perturbed within ``eps``, so that learning them
steers the model to where a later **trigger batch** does the most damage; at ``trigger_at`` it
sends the trigger (``trigger_size`` samples, ``trigger_eps``) and stops.

With ``g_val`` the gradient of the loss on the attacker's own validation samples (``val_size``)
and ``g_trig`` that of the trigger batch, one step on the trigger changes the validation loss by
about ``−η⟨g_val, g_trig⟩``. The accumulative poisons make ``h = ⟨g_val, g_trig⟩`` as negative as
they can: a step along a poison gradient ``g_p`` changes ``h`` by ``−η⟨∇θh, g_p⟩``, so each batch
matches its training gradient to ``∇θh`` (a Hessian-vector product, by double backward) — plus
``direct`` times ``−g_val``, the plain one-step poisoning direction, when asked. The trigger itself
is crafted at trigger time to match ``−g_val``: learning it raises the validation loss. Every
gradient is of a whole batch (:mod:`attacks.gradient_matching`), none per sample.

``accumulate = false`` sends the trigger alone (nothing before it): the control that shows what
the accumulation adds. ``critic_weight > 0`` adds the defense's score to the crafting objective
(white-box: the deployed critic; black box: the shadow critic), as the paper's composed FGSM
steps up the critic before the classifier, so the poisons stay acceptable while they accumulate.

Knowledge: ``white-box`` (the learner's weights at every batch) or ``posteriors`` (shadows
distilled once, before the stream). The poison budget is the source's ``budget``; the phase length
is ``trigger_at − start``. Works on images and feature vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F

from attacks.gradient_matching import MATCHING_SHADOW, MatchingAttack, flat_grad, param_grads
from attacks.shadow import ShadowSettings
from streamsim import Batch, ConfigError, CraftContext, PluginError, SetupContext


class Accumulative(MatchingAttack):
    """True-label, ε-bounded poisons that prime the model for one trigger batch (Pang et al., 2021)."""

    knowledge = "white-box"

    def __init__(self, eps: float = 0.3, steps: int = 5, trigger_at: float = 50.0, trigger_size: int = 64,
                 trigger_eps: float | None = None, accumulate: bool = True, direct: float = 0.0, val_size: int = 256,
                 knowledge: Literal["white-box", "posteriors"] = "white-box", critic_weight: float = 0.0,
                 shadow: ShadowSettings | Mapping[str, Any] = MATCHING_SHADOW) -> None:
        if trigger_at < 0 or trigger_size < 1 or val_size < 1 or direct < 0:
            raise ConfigError("need trigger_at >= 0, trigger_size >= 1, val_size >= 1 and direct >= 0, "
                              f"got {trigger_at}, {trigger_size}, {val_size}, {direct}")
        if trigger_eps is not None and trigger_eps < 0:
            raise ConfigError(f"trigger_eps must be >= 0, got {trigger_eps}")
        self.trigger_at, self.trigger_size, self.trigger_eps = trigger_at, trigger_size, trigger_eps
        self.accumulate, self.direct, self.val_size = accumulate, direct, val_size
        self._set_up_matching(knowledge, eps, steps, critic_weight, shadow)
        self.val_: Batch | None = None
        self.trigger_: Batch | None = None
        self.triggered_ = False
        self.alignment_ = float("nan")  # cos(g_val, g_trig) at the last craft: −1 is a primed model

    def prepare(self, context: SetupContext) -> None:
        """Draw the validation and trigger samples from the attacker's own pool, then set up the model."""
        pool = context.pool
        if pool is None or len(pool) < 2:
            raise PluginError("accumulative needs an attacker pool of at least two samples")
        order = torch.from_numpy(context.rng().permutation(len(pool)))
        n_trig = min(self.trigger_size, len(pool) - 1)
        self.trigger_ = pool.subset(order[:n_trig])
        self.val_ = pool.subset(order[n_trig:n_trig + self.val_size])
        self._prepare_model(context)

    def craft(self, base: Batch, context: CraftContext) -> Batch:
        if self.val_ is None or self.trigger_ is None:
            raise PluginError("accumulative: call prepare() first")
        if self.triggered_:
            return base.subset(torch.zeros(0, dtype=torch.long))  # its work is done
        if context.time >= self.trigger_at:
            self.triggered_ = True
            return self._trigger(context)
        if not self.accumulate:
            return base.subset(torch.zeros(0, dtype=torch.long))  # the control: the trigger alone
        with self._crafting(context.view) as (logits, params):
            direction = self._priming_direction(logits, params)
            x = self._match(context.view, base.x, base.true_labels, direction, self.eps, logits, params)
        return base.with_(x=x, labels=base.true_labels)

    def _priming_direction(self, logits: Any, params: list[torch.Tensor]) -> torch.Tensor:
        """``∇θ⟨g_val, g_trig⟩`` (normalised), plus ``direct · (−g_val)``: where a poison step should point."""
        g_val = param_grads(logits, params, self.val_.x, self.val_.labels, create_graph=True)
        g_trig = param_grads(logits, params, self.trigger_.x, self.trigger_.labels, create_graph=True)
        h = sum((a * b).sum() for a, b in zip(g_val, g_trig, strict=True))
        grad_h = flat_grad(torch.autograd.grad(h, params))
        val, trig = flat_grad(g_val).detach(), flat_grad(g_trig).detach()
        self.alignment_ = float(F.cosine_similarity(val, trig, dim=0))
        direction = F.normalize(grad_h, dim=0)
        if self.direct > 0:
            direction = direction - self.direct * F.normalize(val, dim=0)
        return direction

    def _trigger(self, context: CraftContext) -> Batch:
        """The trigger batch, crafted now so that one step on it raises the validation loss."""
        eps = self.eps if self.trigger_eps is None else self.trigger_eps
        trigger = self.trigger_
        with self._crafting(context.view) as (logits, params):
            g_val = flat_grad(param_grads(logits, params, self.val_.x, self.val_.labels))
            x = self._match(context.view, trigger.x, trigger.true_labels, -g_val, eps, logits, params)
        return trigger.with_(x=x, labels=trigger.true_labels)

    def stats(self) -> dict[str, float]:
        """``alignment``: cos(validation gradient, trigger gradient) when last measured — the more
        negative, the more one step on the trigger raises the validation loss; ``triggered``: 1 once sent."""
        return {"alignment": self.alignment_, "triggered": float(self.triggered_), **self._stats()}

    def checkpoint_state(self) -> dict[str, Any]:
        return {"triggered": self.triggered_, "alignment": self.alignment_}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.triggered_ = bool(state["triggered"])
        self.alignment_ = float(state["alignment"])
