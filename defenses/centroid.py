"""``centroid``: class-centroid sphere and slab filters — reject what lies too far from its class.

Steinhardt, Koh & Liang, "Certified Defenses for Data Poisoning Attacks", NeurIPS 2017 (sphere and
slab oracle defenses); online, with running statistics, as in Wang & Chaudhuri, "Data Poisoning
Attacks against Online Learning", 2018. From the trusted split the filter learns each class's
centroid μ_y (pixels) and a radius: the ``quantile`` of the trusted points' distances.

- ``shape = "sphere"``: distance ``‖x − μ_y‖`` to the claimed class's centroid.
- ``shape = "slab"``: distance along the line between μ_y and the mean of the other centroids,
  ``|⟨x − μ_y, w_y⟩|`` with ``w_y`` that unit direction — only the class-separating direction counts.

The score is ``1 − distance / radius`` (higher = more trusted, boundary 0), differentiable in
``x``: white-box attacks can step their poisons into the sphere. With ``follow > 0`` every accepted
sample pulls its class's centroid by that weight (an exponential running mean), so the filter
tracks natural drift — and poisons accepted near the edge drag it, as De-Pois's refresh can be.

Threat model: catches far-out points (noise, large perturbations, gross label flips between
classes that sit apart). Blind to poisons inside the sphere, e.g. small-ε perturbations of real
images with their true labels; the radius quantile trades that against clean false rejections.

>>> import torch
>>> from streamsim import Batch, SetupContext
>>> g = torch.Generator().manual_seed(0)
>>> trusted = Batch.clean(torch.randn(100, 1, 28, 28, generator=g) * 0.1, torch.arange(100) % 2)
>>> sphere = CentroidFilter(quantile=0.99)
>>> sphere.fit(trusted, learner=None, context=SetupContext(seed=0))
>>> far = torch.ones(1, 1, 28, 28)
>>> sphere.screen(Batch.clean(torch.cat([trusted.x[:1], far]), torch.tensor([0, 0]))).accept.tolist()
[True, False]
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from streamsim import (
    N_CLASSES,
    Batch,
    ConfigError,
    Defense,
    Learner,
    PluginError,
    SetupContext,
    Verdicts,
    require_trusted,
)

Shape = Literal["sphere", "slab"]


class CentroidFilter(Defense):
    """Reject samples farther from their claimed class's centroid than the trusted ``quantile``."""

    accepts = ("images", "vectors")

    def __init__(self, shape: Shape = "sphere", quantile: float = 0.95, follow: float = 0.0) -> None:
        if shape not in ("sphere", "slab"):
            raise ConfigError(f"shape must be 'sphere' or 'slab', got {shape!r}")
        if not 0.0 < quantile <= 1.0:
            raise ConfigError(f"quantile must be in (0, 1], got {quantile}")
        if not 0.0 <= follow < 1.0:
            raise ConfigError(f"follow must be in [0, 1), got {follow}")
        self.shape = shape
        self.quantile = quantile
        self.follow = follow
        self.centroids: torch.Tensor | None = None  # N_CLASSES × D
        self.radii: torch.Tensor | None = None  # N_CLASSES; inf for a class the trusted split lacks
        self.n_classes = N_CLASSES  # the data's, from fit

    def fit(self, trusted: Batch, learner: Learner, context: SetupContext) -> None:
        require_trusted(trusted, "centroid")
        self.n_classes = k = context.space.n_classes
        x, y = trusted.x.flatten(1), trusted.labels
        counts = torch.bincount(y, minlength=k).float()
        sums = torch.zeros(k, x.shape[1]).index_add_(0, y, x)
        self.centroids = sums / counts.clamp(min=1)[:, None]
        self.radii = torch.full((k,), float("inf"))
        distances = self._distance(x, y)
        for c in torch.unique(y).tolist():  # one quantile per class present (≤ 10 iterations)
            self.radii[c] = torch.quantile(distances[y == c], self.quantile).clamp(min=1e-6)

    def _distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        offset = x - self.centroids[y]
        if self.shape == "sphere":
            return offset.norm(dim=1)
        others = (self.centroids.sum(0, keepdim=True) - self.centroids) / (self.n_classes - 1)
        direction = torch.nn.functional.normalize(self.centroids - others, dim=1)
        return (offset * direction[y]).sum(1).abs()

    def score(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``1 − distance / radius`` of the claimed class (differentiable in ``x``)."""
        if self.centroids is None:
            raise PluginError("centroid: screen before fit")
        return 1.0 - self._distance(x.flatten(1), y) / self.radii[y]

    @property
    def boundary(self) -> float:
        return 0.0

    def screen(self, batch: Batch) -> Verdicts:
        with torch.no_grad():
            score = self.score(batch.x, batch.labels)
        return Verdicts(accept=score >= 0.0, score=score)

    def after_learn(self, accepted: Batch) -> None:
        """With ``follow``: each accepted sample moves its class's centroid by ``follow`` of the way."""
        if not self.follow or len(accepted) == 0:
            return
        y = accepted.labels
        counts = torch.bincount(y, minlength=self.n_classes).float()
        means = torch.zeros_like(self.centroids).index_add_(0, y, accepted.x.flatten(1)) / counts.clamp(min=1)[:, None]
        pull = 1.0 - (1.0 - self.follow) ** counts  # n samples of weight `follow`, as one step
        self.centroids = self.centroids + pull[:, None] * (means - self.centroids)

    def checkpoint_state(self) -> dict[str, Any]:
        return {"centroids": self.centroids.clone()}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.centroids = torch.as_tensor(state["centroids"])
