"""``examples.backdoor_attack:Backdoor`` — stamp a trigger patch and claim the target label.

A small bright square in a corner of each base image, labelled ``target``: a model that learns
enough of these associates the patch with the target class (Gu et al., BadNets, 2017). Blind
(knowledge ``none``). Use it with ``streamsim run examples/backdoor.toml``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch

from streamsim import N_CLASSES, Attack, Batch, CraftContext

Corner = Literal["bottom-right", "bottom-left", "top-right", "top-left"]


class Backdoor(Attack):
    """Stamp a bright ``size``×``size`` square in a corner and relabel the sample as ``target``."""

    knowledge: ClassVar[str] = "none"

    def __init__(self, target: int = 0, size: int = 4, corner: Corner = "bottom-right", value: float = 1.0) -> None:
        if not 0 <= target < N_CLASSES or not 1 <= size <= 28 or not -1.0 <= value <= 1.0:
            raise ValueError(f"need target in 0..{N_CLASSES - 1}, size in 1..28, value in [-1, 1]")
        self.target, self.size, self.corner, self.value = target, size, corner, value

    def patch_mask(self, shape: torch.Size) -> torch.Tensor:
        """Where the trigger goes, as a boolean mask over one image (``C×H×W``)."""
        mask = torch.zeros(shape, dtype=torch.bool)
        rows = slice(-self.size, None) if self.corner.startswith("bottom") else slice(0, self.size)
        cols = slice(-self.size, None) if self.corner.endswith("right") else slice(0, self.size)
        mask[..., rows, cols] = True
        return mask

    def craft(self, base: Batch, context: CraftContext) -> Batch:
        base = base.subset(base.true_labels != self.target)  # a target-class sample would teach nothing
        x = base.x.masked_fill(self.patch_mask(base.x.shape[1:]), self.value)
        return base.with_(x=x, labels=torch.full_like(base.labels, self.target))

    # Optional: lets `streamsim run --checkpoint-every` save and resume runs that use this attack.
    def checkpoint_state(self) -> dict[str, Any]:
        return {}  # stateless: the patch depends on the settings only

    def restore_state(self, state: dict[str, Any]) -> None:
        pass
