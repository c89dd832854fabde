"""``examples.knn_defense:KNNDefense`` — a k-nearest-neighbour label-consistency filter.

Fitted on the trusted split, it rejects a sample unless at least ``threshold`` of its ``k``
nearest trusted neighbours (Euclidean, on pixels) carry the label the sample claims. It catches
label flips and is blind to clean-label poisons. Use it with ``streamsim run examples/knn-defense.toml``.
"""

from __future__ import annotations

from typing import Any

import torch

from streamsim import Batch, Defense, Learner, SetupContext, Verdicts


class KNNDefense(Defense):
    """Reject samples whose claimed label disagrees with most of their k nearest trusted neighbours."""

    def __init__(self, k: int = 5, threshold: float = 0.5) -> None:
        if k < 1 or not 0.0 < threshold <= 1.0:
            raise ValueError(f"need k >= 1 and 0 < threshold <= 1, got k={k}, threshold={threshold}")
        self.k = k
        self.threshold = threshold
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None

    def fit(self, trusted: Batch, learner: Learner, context: SetupContext) -> None:
        self.x, self.y = trusted.x.flatten(1), trusted.labels

    def agreement(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Share of the k nearest trusted neighbours labelled ``y``. Not differentiable, so not ``score``."""
        if self.x is None or self.y is None:
            raise RuntimeError("KNNDefense.screen before fit")
        nearest = torch.cdist(x.flatten(1), self.x).topk(min(self.k, len(self.x)), largest=False).indices
        return (self.y[nearest] == y[:, None]).float().mean(dim=1)

    @property
    def boundary(self) -> float:
        """Agreement under this is rejected (the dashboard and report draw it)."""
        return self.threshold

    def screen(self, batch: Batch) -> Verdicts:
        score = self.agreement(batch.x, batch.labels)
        return Verdicts(accept=score >= self.threshold, score=score)

    # Optional: lets `streamsim run --checkpoint-every` save and resume runs that use this defense.
    def checkpoint_state(self) -> dict[str, Any]:
        return {}  # screening changes nothing; fit rebuilds the neighbours from the trusted split

    def restore_state(self, state: dict[str, Any]) -> None:
        pass
