"""The data a run works on, as components see it: its sample shape, classes and feature ranges.

A run's samples are either images (``1×28×28`` pixels in ``[-1, 1]``) or feature vectors
(``d`` features, each scaled to ``[-1, 1]`` by the range it has on the pretrain split). A
:class:`DataSpace` says which, how many classes there are, and — per feature — the range a
sample may take and whether the feature is real, integer or binary. Learners, defenses and
attacks get it in their :class:`~streamsim.SetupContext` (and attacks in every
:class:`~streamsim.CraftContext`); :meth:`DataSpace.project` puts a perturbed sample back where
the data can be, which is what every perturbing attack ends with.

Components declare the kinds of data they handle in a class attribute ``accepts`` (``"images"``,
``"vectors"``); a run whose data a component does not accept is refused before it starts.

>>> import torch
>>> space = DataSpace.vectors(n_classes=2, kinds=("real", "integer", "binary"), steps=(0.0, 0.5, 2.0))
>>> space.project(torch.tensor([[0.33, 0.3, 0.2], [7.0, -0.8, -3.0]])).tolist()
[[0.33000001311302185, 0.5, 1.0], [1.0, -1.0, -1.0]]
>>> IMAGES.kind, IMAGES.shape, DataSpace.vectors(3, ("real",) * 4).shape
('images', (1, 28, 28), (4,))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

Kind = Literal["images", "vectors"]
IMAGE_SHAPE = (1, 28, 28)


@dataclass(frozen=True)
class DataSpace:
    """Shape of one sample, class count, and per feature its kind and range (in model units).

    ``lo``/``hi`` bound each feature (images: ``-1``/``1`` for every pixel); ``step`` is the grid an
    integer or binary feature lives on after scaling (0 for a real feature): a projected value is
    ``lo + k·step`` for a whole ``k``.
    """

    kind: Kind
    shape: tuple[int, ...]
    n_classes: int
    feature_names: tuple[str, ...] = ()
    feature_kinds: tuple[str, ...] = ()
    lo: torch.Tensor = field(default_factory=lambda: torch.tensor(-1.0))
    hi: torch.Tensor = field(default_factory=lambda: torch.tensor(1.0))
    step: torch.Tensor | None = None

    @classmethod
    def vectors(cls, n_classes: int, kinds: tuple[str, ...], names: tuple[str, ...] = (),
                steps: tuple[float, ...] | None = None, lo: torch.Tensor | None = None,
                hi: torch.Tensor | None = None) -> DataSpace:
        """Feature vectors of ``len(kinds)`` features, scaled to ``[-1, 1]`` unless ``lo``/``hi`` say otherwise."""
        d = len(kinds)
        return cls("vectors", (d,), n_classes, names or tuple(f"x{i}" for i in range(d)), tuple(kinds),
                   torch.full((d,), -1.0) if lo is None else lo, torch.full((d,), 1.0) if hi is None else hi,
                   None if steps is None or not any(steps) else torch.tensor(steps, dtype=torch.float32))

    @property
    def n_features(self) -> int:
        """Numbers per sample (784 for images)."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` clipped to every feature's range, integer and binary features snapped to their grid.

        On images it is exactly ``x.clamp(-1, 1)``.
        """
        if self.kind == "images":
            return x.clamp(-1, 1)
        x = torch.maximum(torch.minimum(x, self.hi), self.lo)
        if self.step is None:
            return x
        grid = self.step > 0
        snapped = self.lo + torch.round((x - self.lo) / torch.where(grid, self.step, 1.0)) * self.step
        return torch.where(grid, torch.minimum(snapped, self.hi), x)

    def contains(self, x: torch.Tensor, tol: float = 1e-4) -> bool:
        """Whether every sample of ``x`` lies in the space (ranges and grids, up to ``tol``)."""
        return bool(x.numel() == 0 or (self.project(x) - x).abs().max() <= tol)

    def describe(self) -> str:
        if self.kind == "images":
            return f"{'×'.join(map(str, self.shape[1:]))} images, {self.n_classes} classes"
        return f"feature vectors (d = {self.shape[0]}), {self.n_classes} classes"


IMAGES = DataSpace("images", IMAGE_SHAPE, 10)
"""The space of the MNIST-style datasets: 1×28×28 pixels in [-1, 1], ten classes."""


def accepted(component: object) -> tuple[str, ...]:
    """The data kinds a component (or its class) declares it handles; images only when it says nothing."""
    return tuple(getattr(component, "accepts", ("images",)))
