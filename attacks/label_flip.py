"""``label-flip``: keep the image, claim a wrong label — random or a fixed target class.

Blind (knowledge ``none``): it needs nothing from the target.

>>> import numpy as np, torch
>>> from streamsim import Batch, CraftContext
>>> base = Batch.clean(torch.zeros(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]))
>>> ctx = CraftContext(time=0.0, rng=np.random.default_rng(0), generator=torch.Generator(), view=None)
>>> LabelFlip(target=7).craft(base, ctx).labels.tolist()
[7, 7, 7, 7]
>>> bool((LabelFlip().craft(base, ctx).labels != base.labels).all())
True
"""

from __future__ import annotations

import torch

from streamsim import N_CLASSES, Attack, Batch, CraftContext


class LabelFlip(Attack):
    """Flip labels: to a random other class, or to ``target`` (samples of that class are skipped)."""

    knowledge = "none"

    def __init__(self, target: int | None = None) -> None:
        if target is not None and not 0 <= target < N_CLASSES:
            raise ValueError(f"target must be a class 0..{N_CLASSES - 1}, got {target}")
        self.target = target

    def craft(self, base: Batch, context: CraftContext) -> Batch:
        if self.target is not None:
            # A sample already of the target class would not be a flip at all.
            base = base.subset(base.true_labels != self.target)
            return base.with_(labels=torch.full_like(base.labels, self.target))
        # A uniform offset in 1..9 gives a uniformly random *other* class.
        offset = torch.from_numpy(context.rng.integers(1, N_CLASSES, size=len(base)))
        return base.with_(labels=(base.true_labels + offset) % N_CLASSES)
