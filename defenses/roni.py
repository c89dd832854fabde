"""``roni``: batch-level Reject On Negative Impact — learn the batch on a copy, keep it only if that did no harm.

Nelson et al., "Exploiting Machine Learning to Subvert Your Spam Filter", LEET 2008 (RONI);
Barreno et al., "The security of machine learning", Machine Learning 81, 2010. Per arriving batch
the defense copies the deployed learner, lets the copy learn the batch (``groups = 1``) or each of
``groups`` equal parts of it on its own copy, and measures a held-out part of the trusted split
(``metric``: minus the cross-entropy, or the accuracy — coarse on a small held-out set). One
learning step moves a held-out measure by about as much as the noise between batches, clean ones
included, so with ``calibrate`` (default) the yardstick is not "no change" but the change a
trusted part of the same size makes to the same model *now*. A part that does worse than that by
more than ``delta`` is rejected whole. The per-sample score is its part's difference (higher = more
trusted; boundary ``−delta``). The held-out part is ``holdout_size`` trusted points (at most half
of them when calibrating: the rest are the reference).

**Cost**: per batch, ``groups`` (+1 with ``calibrate``) deep copies of the learner, each learning
once and evaluated once on the held-out part — about ``(groups + 1) × (1 + holdout / batch)``
times the work of learning the batch, and the memory of one more learner (≈ 8 s per 1,000
points for the small CNN in the leaderboard (docs/studies/leaderboard.md), on a shared 2-core machine, against ≈ 0.5 s
for ``knn``). ``groups``
buys finer verdicts (a poisoned part does not sink the clean ones) at that price.

Threat model: catches batches that measurably hurt the model *now* — label flips, heavy noise,
gradient-sign poison aimed at the classifier — whatever they look like, so it needs no model of
the poison. Blind to poisons whose harm is below the held-out noise (a few poisons in a large
batch, slow poisoning over many batches, backdoors that leave clean accuracy intact). Verdicts
come from learning, not from a formula: the defense has no differentiable score.

>>> import torch
>>> from torch import nn
>>> from streamsim import Batch, Learner, SetupContext
>>> class Linear(Learner):  # a one-step SGD learner on 2 classes
...     def __init__(self): self.model = nn.Linear(784, 2)
...     def learn(self, x, y):
...         loss = nn.functional.cross_entropy(self.model(x.flatten(1)), y)
...         grads = torch.autograd.grad(loss, list(self.model.parameters()))
...         with torch.no_grad():
...             for p, g in zip(self.model.parameters(), grads): p -= 5.0 * g
...     def predict_proba(self, x):
...         with torch.no_grad(): return self.model(x.flatten(1)).softmax(1)
>>> x = torch.cat([torch.full((20, 1, 28, 28), -0.1), torch.full((20, 1, 28, 28), 0.1)])
>>> y = torch.tensor([0] * 20 + [1] * 20)
>>> net = Linear(); net.learn(x, y)
>>> roni = RONI(delta=0.05, metric="accuracy", holdout_size=30)
>>> roni.fit(Batch.clean(x, y), net, SetupContext(seed=0))
>>> roni.screen(Batch.clean(x[:8], y[:8])).accept.all().item()       # true labels: no harm
True
>>> roni.screen(Batch.clean(x[:8], 1 - y[:8])).accept.any().item()   # flipped: accuracy falls
False
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
import torch.nn.functional as F

from streamsim import Batch, ConfigError, Defense, Learner, PluginError, SetupContext, Verdicts, require_trusted

Metric = Literal["accuracy", "loss"]


class RONI(Defense):
    """Reject a batch (or a part of it) when learning it on a copy of the learner hurts held-out data."""

    accepts = ("images", "vectors")

    def __init__(self, delta: float = 0.005, holdout_size: int = 200, groups: int = 1,
                 metric: Metric = "loss", calibrate: bool = True) -> None:
        if delta < 0:
            raise ConfigError(f"delta must be >= 0, got {delta}")
        if holdout_size < 1:
            raise ConfigError(f"holdout_size must be >= 1, got {holdout_size}")
        if groups < 1:
            raise ConfigError(f"groups must be >= 1, got {groups}")
        if metric not in ("accuracy", "loss"):
            raise ConfigError(f"metric must be 'accuracy' or 'loss', got {metric!r}")
        self.delta = delta
        self.holdout_size = holdout_size
        self.groups = groups
        self.metric = metric
        self.calibrate = calibrate
        self.reference: Batch | None = None
        self.learner: Learner | None = None
        self.holdout: Batch | None = None

    def fit(self, trusted: Batch, learner: Learner, context: SetupContext) -> None:
        require_trusted(trusted, "roni")
        if self.calibrate and len(trusted) < 2:
            raise PluginError("roni: calibrate needs at least 2 trusted points (a held-out one and a reference one)")
        order = torch.as_tensor(context.rng().permutation(len(trusted)))
        held = min(self.holdout_size, len(trusted) // 2 if self.calibrate else len(trusted))  # calibrating: keep half
        self.learner, self.holdout = learner, trusted.subset(order[:held])
        self.reference = trusted.subset(order[held:]) if self.calibrate else None

    def quality(self, learner: Learner) -> float:
        """Held-out accuracy, or minus the held-out cross-entropy: higher is better either way."""
        p = learner.predict_proba(self.holdout.x)
        if self.metric == "accuracy":
            return float((p.argmax(1) == self.holdout.labels).float().mean())
        return -float(F.nll_loss(p.clamp(min=1e-12).log(), self.holdout.labels))

    @property
    def boundary(self) -> float:
        return -self.delta

    def screen(self, batch: Batch) -> Verdicts:
        if self.learner is None:
            raise PluginError("roni: screen before fit")
        parts = torch.arange(len(batch)).tensor_split(min(self.groups, len(batch)))  # ≤ groups copies
        expected = self.quality(self.learner)
        if self.reference is not None:  # what learning a trusted part of the same size does to the model now
            size = min(len(parts[0]), len(self.reference))
            expected = self.impact(self.reference.x[:size], self.reference.labels[:size])
        score = torch.empty(len(batch))
        for part in parts:
            score[part] = self.impact(batch.x[part], batch.labels[part]) - expected
        return Verdicts(accept=score >= -self.delta, score=score)

    def impact(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Held-out quality after a copy of the live learner learned ``(x, y)``."""
        trial = copy.deepcopy(self.learner)
        trial.learn(x, y)
        return self.quality(trial)

    def checkpoint_state(self) -> dict[str, Any]:
        return {}  # the held-out part is drawn again from the seed in fit; screening changes nothing

    def restore_state(self, state: dict[str, Any]) -> None:
        pass
