"""``pgd``: iterated gradient-sign poison (Madry et al. 2018), the multi-step form of :mod:`attacks.fgsm`.

Same stages, modes, threat models and shadows as ``fgsm`` (Oschart et al., arXiv 2204.01090):
every ``fgsm`` setting, the ``shadow`` table included, is a ``pgd`` setting too. Each stage
instead takes ``steps`` signed steps of ``step_size`` (default ``2.5·ε / steps``), projecting after each onto the L∞ ball of radius ε around the stage's starting image and into
``[−1, 1]``. With ``random_start`` a stage first jumps to a uniform point of that ball (drawn
from the craft context's generator, so seeded runs repeat). Composed modes chain stages as
``fgsm`` does — each stage has its own ε ball — so a two-stage poison moves at most 2ε from the
clean image, the same budget as the composed FGSM it generalises.

>>> import numpy as np, torch
>>> from torch import nn
>>> from streamsim import Batch, CraftContext, Defense, Learner, TargetView
>>> class Net(Learner):
...     def __init__(self): self.model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
...     def logits(self, x): return self.model(x)
...     def predict_proba(self, x): return self.model(x).softmax(1)
>>> view = TargetView("white-box", Net(), Defense())
>>> ctx = CraftContext(time=0.0, rng=np.random.default_rng(0), generator=torch.Generator().manual_seed(0), view=view)
>>> base = Batch.clean(torch.zeros(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]))
>>> poison = PGD(eps=0.1, steps=5, mode="classifier").craft(base, ctx)
>>> bool((poison.x - base.x).abs().max() <= 0.1 + 1e-6)
True
"""

from __future__ import annotations

from typing import Any

import torch

from attacks.fgsm import FGSM, Direction
from streamsim import ConfigError, CraftContext


def pgd(x: torch.Tensor, direction: Direction, eps: float, steps: int, step_size: float,
        start: torch.Tensor | None = None) -> torch.Tensor:
    """``steps`` signed steps from ``start`` (default ``x``), kept within ε of ``x`` (L∞) and in [−1, 1]."""
    lo, hi = (x - eps).clamp_(min=-1.0), (x + eps).clamp_(max=1.0)
    adv = x.clone() if start is None else torch.max(torch.min(start, hi), lo)
    for _ in range(steps):
        adv = torch.max(torch.min(adv + step_size * direction(adv).sign(), hi), lo)
    return adv


class PGD(FGSM):
    """Projected gradient-sign poison against De-Pois's critic and/or the classifier."""

    labels = {}  # named pgd, not by FGSM's labels

    def __init__(self, steps: int = 10, step_size: float | None = None, random_start: bool = True,
                 **fgsm: Any) -> None:
        """``steps``, ``step_size`` and ``random_start``; every other setting is FGSM's (passed on as it is)."""
        super().__init__(**fgsm)
        if steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        if step_size is not None and step_size <= 0:
            raise ConfigError(f"step_size must be > 0, got {step_size}")
        self.steps = steps
        self.step_size = step_size
        self.random_start = random_start

    def __repr__(self) -> str:
        return (f"PGD(eps={self.eps}, steps={self.steps}, mode={self.mode!r}, knowledge={self.knowledge!r})")

    def craft_steps(self) -> int:
        """Gradient steps crafting one poison takes: ``steps`` per stage."""
        return self.steps * len(self.stages)

    def perturb(self, x: torch.Tensor, directions: dict[str, Direction | None], context: CraftContext) -> torch.Tensor:
        step_size = self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps
        for stage in self.stages:
            if directions[stage] is None:
                continue
            start = None
            if self.random_start:
                noise = torch.rand(x.shape, generator=context.generator, dtype=x.dtype) * 2 - 1
                start = x + self.eps * noise.to(x.device)
            x = pgd(x, directions[stage], self.eps, self.steps, step_size, start)
        return x
