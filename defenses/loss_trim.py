"""``loss-trim``: loss trimming on the live model — reject what the current learner finds too surprising.

Trimmed-loss training: Jagielski et al., "Manipulating Machine Learning: Poisoning Attacks and
Countermeasures for Regression Learning" (TRIM), IEEE S&P 2018; Shen & Sanghavi, "Learning with
Bad Training Data via Iterative Trimmed Loss Minimization", ICML 2019. Online: a sample is
rejected when its cross-entropy under the *deployed* learner, for the label it claims, exceeds
the ``quantile`` of the same learner's losses on a reference part of the trusted split. The
threshold is recomputed after every learned batch, so the verdict rule moves as the model learns
(confidence trimming — reject when p(claimed) is low — is the same rule: the loss is −log p).

The score is ``−loss`` (higher = more trusted; boundary ``−threshold``), differentiable through
``learner.logits``: a white-box attack can lower its poisons' loss. A learner without ``logits``
still gets verdicts (from ``predict_proba``), but then :meth:`LossTrimming.score` raises
``NotImplementedError`` and white-box attacks skip their critic stage.

Threat model: catches label flips and perturbations the current model already misclassifies.
Blind to poisons the model fits well — clean-label poisons, and poisons crafted to lower the
loss — and it learns to accept a flipped class once enough of it got in (the model drifts toward
the poison and the threshold with it).

>>> import torch
>>> from torch import nn
>>> from streamsim import Batch, Learner, SetupContext
>>> class Linear(Learner):
...     def __init__(self): self.model = nn.Linear(784, 10)
...     def logits(self, x): return self.model(x.flatten(1))
...     def predict_proba(self, x): return self.logits(x).softmax(1).detach()
>>> net = Linear()
>>> _ = net.model.bias.data.zero_(); _ = net.model.weight.data.zero_(); net.model.weight.data[1] = 0.05
>>> x = torch.ones(4, 1, 28, 28)                    # the model is sure these are 1s
>>> trim = LossTrimming(quantile=0.9)
>>> trim.fit(Batch.clean(x, torch.ones(4, dtype=torch.long)), net, SetupContext(seed=0))
>>> trim.screen(Batch.clean(x[:2], torch.tensor([1, 7]))).accept.tolist()
[True, False]
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from streamsim import (
    Batch,
    ConfigError,
    Defense,
    Differentiable,
    Learner,
    PluginError,
    SetupContext,
    Verdicts,
    has,
    require_trusted,
)


class LossTrimming(Defense):
    """Reject samples whose loss under the live learner exceeds a trusted-set quantile."""

    accepts = ("images", "vectors")

    def __init__(self, quantile: float = 0.95, reference_size: int = 500) -> None:
        if not 0.0 < quantile <= 1.0:
            raise ConfigError(f"quantile must be in (0, 1], got {quantile}")
        if reference_size < 1:
            raise ConfigError(f"reference_size must be >= 1, got {reference_size}")
        self.quantile = quantile
        self.reference_size = reference_size
        self.learner: Learner | None = None
        self.reference: Batch | None = None
        self.threshold: float | None = None

    def fit(self, trusted: Batch, learner: Learner, context: SetupContext) -> None:
        require_trusted(trusted, "loss-trim")
        pick = torch.as_tensor(context.rng().permutation(len(trusted))[: self.reference_size])
        self.learner, self.reference = learner, trusted.subset(pick)
        self.threshold = self._threshold()

    def loss(self, x: torch.Tensor, claimed: torch.Tensor) -> torch.Tensor:
        """Per-sample cross-entropy of the claimed labels under the live learner (no gradient)."""
        if self.learner is None:
            raise PluginError("loss-trim: screen before fit")
        p = self.learner.predict_proba(x).gather(1, claimed[:, None]).squeeze(1)
        return -p.clamp(min=1e-12).log()

    def _threshold(self) -> float:
        return float(torch.quantile(self.loss(self.reference.x, self.reference.labels), self.quantile))

    def score(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``−CE(logits(x), y)``, differentiable in ``x`` when the learner has ``logits``."""
        if self.learner is None:
            raise PluginError("loss-trim: score before fit")
        if not has(self.learner, Differentiable):
            raise NotImplementedError(f"loss-trim: {type(self.learner).__name__} has no logits, so no differentiable score")
        return -F.cross_entropy(self.learner.logits(x), y, reduction="none")

    @property
    def boundary(self) -> float:
        if self.threshold is None:
            raise PluginError("loss-trim: boundary before fit")
        return -self.threshold

    def screen(self, batch: Batch) -> Verdicts:
        loss = self.loss(batch.x, batch.labels)
        return Verdicts(accept=loss <= self.threshold, score=-loss)

    def after_learn(self, accepted: Batch) -> None:
        """The learner just changed: move the threshold with it."""
        if len(accepted):
            self.threshold = self._threshold()

    def checkpoint_state(self) -> dict[str, Any]:
        return {"threshold": self.threshold}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.threshold = float(state["threshold"])
