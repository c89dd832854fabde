"""``mlp``: a small torch multilayer perceptron on feature vectors, for differentiable attacks.

The tabular counterpart of ``small-cnn``: ``hidden`` ReLU layers (64, 64 by default) to the
data's classes, ``steps_per_batch`` Adam steps per accepted batch, pretrained for
``pretrain_epochs`` shuffled epochs (cached like the CNNs). It has ``logits`` (white-box FGSM/PGD
differentiate through it), ``features`` (the last hidden layer, for feature-space defenses) and
checkpoints. Sized from the run's data space, so it also runs on images (flattened pixels).

>>> import torch
>>> from streamsim.core.base import SetupContext
>>> from streamsim.core.space import DataSpace
>>> space = DataSpace.vectors(3, ("real",) * 5)
>>> learner = MLPLearner(pretrain_epochs=2)
>>> x, y = torch.rand(64, 5) * 2 - 1, torch.arange(64) % 3
>>> learner.pretrain(x, y, SetupContext(seed=0, space=space))
>>> learner.predict_proba(x[:4]).shape, learner.features(x[:4]).shape
(torch.Size([4, 3]), torch.Size([4, 64]))
"""

from __future__ import annotations

import torch
from torch import nn

from streamsim.core.base import SetupContext
from streamsim.learners.torch_cnn import TorchLearner
from streamsim.nn import mlp

MAX_WIDTH = 16_384  # units in one hidden layer
MAX_LAYERS = 64
MAX_HIDDEN_WEIGHTS = 16_777_216  # between hidden layers (64 MiB of float32, four times that with Adam's moments)


class MLPLearner(TorchLearner):
    """A small torch MLP (differentiable, with features) sized to the data: the tabular default for white-box attacks."""

    accepts = ("images", "vectors")

    def __init__(self, hidden: list[int] | None = None, lr: float = 0.01, steps_per_batch: int = 1,
                 pretrain_epochs: int = 20, pretrain_batch_size: int = 32, update: bool = True) -> None:
        super().__init__(lr=lr, steps_per_batch=steps_per_batch, pretrain_epochs=pretrain_epochs,
                         pretrain_batch_size=pretrain_batch_size, update=update)
        self.hidden = list(hidden) if hidden is not None else [64, 64]
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be positive layer widths, got {self.hidden}")
        # bounded by cost, not by count alone: the network must fit in memory before it is built
        if max(self.hidden) > MAX_WIDTH or len(self.hidden) > MAX_LAYERS:
            raise ValueError(f"hidden: at most {MAX_LAYERS} layers of at most {MAX_WIDTH:,} units, got {len(self.hidden)} "
                             f"layers of up to {max(self.hidden):,}")
        weights = sum(a * b for a, b in zip(self.hidden, self.hidden[1:], strict=False))
        if weights > MAX_HIDDEN_WEIGHTS:
            raise ValueError(f"hidden: {weights:,} weights between the hidden layers, more than the limit of "
                             f"{MAX_HIDDEN_WEIGHTS:,}")

    def build(self) -> nn.Module:
        return mlp(self.space.n_features, self.space.n_classes, self.hidden)

    def _cache_key(self, x: torch.Tensor, y: torch.Tensor, context: SetupContext) -> dict[str, object]:
        key = super()._cache_key(x, y, context)
        key["settings"] = {**key["settings"], "hidden": self.hidden, "n_classes": context.space.n_classes}  # type: ignore[dict-item]
        return key
