"""``knn``: k-nearest-neighbour label sanitization — reject a point its neighbours disagree with.

Peri et al., "Deep k-NN Defense against Clean-label Data Poisoning Attacks", ECCV workshops 2020
(after Papernot & McDaniel's deep k-NN). A sample is accepted when at least ``threshold`` of its
``k`` nearest reference points carry the label it claims. The reference set is the trusted split,
plus — when ``memory > 0`` — the last ``memory`` samples the learner accepted (which lets the
filter follow natural drift, and lets poisons that slipped in vouch for later ones).

``space = "input"`` measures Euclidean distance on pixels; ``"features"`` on the deployed
learner's penultimate features (:class:`streamsim.core.abilities.Features`), recomputed at every screen
because the learner keeps learning — a learner without features is refused at ``fit``.

Threat model: catches label flips and any poison whose claimed label is not its neighbours' (dirty
labels). Blind to clean-label poisons (correct label, perturbed pixels) that stay near their class,
which is what FGSM with the true label is. The agreement is a vote, not differentiable: the
defense has no ``score``, so white-box attacks skip their critic stage against it.

>>> import torch
>>> from streamsim import Batch, SetupContext
>>> x = torch.cat([torch.full((10, 1, 28, 28), -0.5), torch.full((10, 1, 28, 28), 0.5)])
>>> trusted = Batch.clean(x, torch.tensor([0] * 10 + [1] * 10))
>>> knn = KNNSanitizer(k=5)
>>> knn.fit(trusted, learner=None, context=SetupContext(seed=0))
>>> arriving = Batch.clean(x[[0, 15]], torch.tensor([0, 0]))  # the second claims 0 but looks like a 1
>>> knn.screen(arriving).accept.tolist()
[True, False]
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from streamsim import (
    Batch,
    ConfigError,
    Defense,
    Features,
    Learner,
    PluginError,
    SetupContext,
    Verdicts,
    require,
    require_trusted,
)

Space = Literal["input", "features"]


class KNNSanitizer(Defense):
    """Reject samples whose claimed label disagrees with most of their k nearest reference points."""

    accepts = ("images", "vectors")

    def __init__(self, k: int = 10, threshold: float = 0.5, space: Space = "input", memory: int = 0) -> None:
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
        if space not in ("input", "features"):
            raise ConfigError(f"space must be 'input' or 'features', got {space!r}")
        if memory < 0:
            raise ConfigError(f"memory must be >= 0, got {memory}")
        self.k = k
        self.threshold = threshold
        self.space = space
        self.memory = memory
        self.learner: Learner | None = None
        self.trusted_x: torch.Tensor | None = None
        self.trusted_y: torch.Tensor | None = None
        self.recent_x = torch.zeros(0, 1, 28, 28)
        self.recent_y = torch.zeros(0, dtype=torch.long)

    def fit(self, trusted: Batch, learner: Learner, context: SetupContext) -> None:
        require_trusted(trusted, "knn")
        if self.space == "features":
            require(learner, Features, "knn with space='features' (use space='input' otherwise): learner")
        self.learner = learner
        self.trusted_x, self.trusted_y = trusted.x, trusted.labels
        self.recent_x = trusted.x[:0]

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.space == "input":
            return x.flatten(1)
        return self.learner.features(x).flatten(1)

    def agreement(self, x: torch.Tensor, claimed: torch.Tensor) -> torch.Tensor:
        """Share of the k nearest reference points labelled as claimed (a vote: not differentiable)."""
        if self.trusted_x is None:
            raise PluginError("knn: screen before fit")
        ref_x = torch.cat([self.trusted_x, self.recent_x])
        ref_y = torch.cat([self.trusted_y, self.recent_y])
        with torch.no_grad():
            distances = torch.cdist(self._embed(x), self._embed(ref_x))
        nearest = distances.topk(min(self.k, len(ref_y)), largest=False).indices
        return (ref_y[nearest] == claimed[:, None]).float().mean(dim=1)

    @property
    def boundary(self) -> float:
        """Agreement under this is rejected."""
        return self.threshold

    def screen(self, batch: Batch) -> Verdicts:
        score = self.agreement(batch.x, batch.labels)
        return Verdicts(accept=score >= self.threshold, score=score)

    def after_learn(self, accepted: Batch) -> None:
        if self.memory and len(accepted):
            self.recent_x = torch.cat([self.recent_x, accepted.x])[-self.memory:]
            self.recent_y = torch.cat([self.recent_y, accepted.labels])[-self.memory:]

    def checkpoint_state(self) -> dict[str, Any]:
        return {"recent_x": self.recent_x.clone(), "recent_y": self.recent_y.clone()}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.recent_x, self.recent_y = torch.as_tensor(state["recent_x"]), torch.as_tensor(state["recent_y"])
