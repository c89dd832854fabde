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

``random`` flips are weak against a majority of clean data (the true class still wins the
argmax); ``permutation`` — every class mapped to one fixed other class, drawn from the seed — is
consistent and does real damage; ``target`` sends everything to one class.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from streamsim import Attack, Batch, ConfigError, CraftContext, SetupContext


def derangement(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random permutation with no fixed point: every class goes to another one."""
    while True:
        p = rng.permutation(n)
        if (p != np.arange(n)).all():
            return p


class LabelFlip(Attack):
    """Flip labels: random other class, a fixed class permutation, or everything to ``target``."""

    knowledge = "none"
    accepts = ("images", "vectors")

    def __init__(self, mode: Literal["random", "permutation", "target"] = "random", target: int | None = None) -> None:
        if target is not None and target < 0:
            raise ValueError(f"target must be a class >= 0, got {target}")
        if mode == "target" and target is None:
            raise ValueError("mode 'target' needs a target class")
        self.mode = "target" if target is not None else mode
        self.target = target
        self.mapping: torch.Tensor | None = None

    def check_classes(self, n_classes: int) -> None:
        """``target`` is a class of the data: checked before the run starts (``streamsim validate``)."""
        if self.target is not None and self.target >= n_classes:
            raise ConfigError(f"target must be a class 0..{n_classes - 1}, got {self.target}")

    def prepare(self, context: SetupContext) -> None:
        k = context.space.n_classes
        self.check_classes(k)
        self.mapping = torch.from_numpy(derangement(context.rng(), k))

    def craft(self, base: Batch, context: CraftContext) -> Batch:
        k = context.space.n_classes
        if self.mode == "permutation":
            if self.mapping is None:
                self.mapping = torch.from_numpy(derangement(context.rng, k))
            return base.with_(labels=self.mapping[base.true_labels])
        if self.mode == "target":
            # A sample already of the target class would not be a flip at all.
            base = base.subset(base.true_labels != self.target)
            return base.with_(labels=torch.full_like(base.labels, self.target))
        # A uniform offset in 1..k-1 gives a uniformly random *other* class.
        offset = torch.from_numpy(context.rng.integers(1, k, size=len(base)))
        return base.with_(labels=(base.true_labels + offset) % k)

    def checkpoint_state(self) -> dict[str, Any]:
        return {"mapping": self.mapping}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.mapping = state["mapping"]
