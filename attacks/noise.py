"""``noise``: add Gaussian, uniform or random-sign noise to the sample, keep the true label, project back into the data.

On images the projection clips to [-1, 1]; on feature vectors each feature is clipped to its
observed range and integer and binary features are rounded back onto their grid.

Blind (knowledge ``none``). A crude availability attack, and a sanity check for detectors.
``kind = "sign"`` moves every feature by exactly ``±scale`` (each sign a fair coin): FGSM's
budget with a random direction, the control that tells a detector reacting to an attack's
direction from one reacting to its size.

>>> import numpy as np, torch
>>> from streamsim import Batch, CraftContext
>>> base = Batch.clean(torch.zeros(8, 1, 28, 28), torch.arange(8))
>>> ctx = CraftContext(time=0.0, rng=np.random.default_rng(0), generator=torch.Generator().manual_seed(0), view=None)
>>> out = Noise(kind="uniform", scale=2.0).craft(base, ctx)
>>> float(out.x.abs().max()) <= 1.0, out.labels.tolist() == base.labels.tolist()
(True, True)
>>> moved = Noise(kind="sign", scale=0.25).craft(base, ctx).x - base.x
>>> sorted(moved.unique().tolist())
[-0.25, 0.25]
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from streamsim import Attack, Batch, CraftContext


class Noise(Attack):
    """Perturb images with Gaussian (std ``scale``), uniform (±``scale``) or random-sign (exactly ±``scale``) noise."""

    knowledge = "none"
    accepts = ("images", "vectors")

    def __init__(self, kind: Literal["gaussian", "uniform", "sign"] = "gaussian", scale: float = 0.5) -> None:
        if kind not in ("gaussian", "uniform", "sign"):
            raise ValueError(f"kind must be 'gaussian', 'uniform' or 'sign', got {kind!r}")
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        self.kind = kind
        self.scale = scale

    def craft(self, base: Batch, context: CraftContext) -> Batch:
        g = context.generator
        if self.kind == "gaussian":
            noise = torch.randn(base.x.shape, generator=g) * self.scale
        elif self.kind == "uniform":
            noise = (torch.rand(base.x.shape, generator=g) * 2 - 1) * self.scale
        else:
            noise = (torch.randint(0, 2, base.x.shape, generator=g) * 2 - 1).to(base.x.dtype) * self.scale
        return base.with_(x=context.space.project(base.x + noise))

    def checkpoint_state(self) -> dict[str, Any]:
        return {}  # nothing changes once set up: crafting only reads the context's generators

    def restore_state(self, state: dict[str, Any]) -> None:
        pass
