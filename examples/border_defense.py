"""``examples.border_defense:BorderInk`` — reject images with ink in the border, where digits never are.

MNIST digits sit in the centre 20×20 of the 28×28 frame; the border stays background (99 % of
mnist-5k digits put under 0.035 of ink there). A 4×4 trigger stamped in a corner
(``examples/backdoor_attack.py``) adds 0.042. The score is minus the mean
ink of the border band — differentiable, so white-box attacks can take gradients through it.
Use it with ``python -m streamsim run examples/border-defense.toml -p examples``.

>>> import torch
>>> from streamsim import Batch
>>> x = torch.full((2, 1, 28, 28), -1.0)
>>> x[1, :, -4:, -4:] = 1.0                         # a bright corner patch
>>> BorderInk().screen(Batch.clean(x, torch.tensor([0, 0]))).accept.tolist()
[True, False]
"""

from __future__ import annotations

from typing import Any

import torch

from streamsim import Batch, ConfigError, Defense, Verdicts


class BorderInk(Defense):
    """Reject samples whose border band (``margin`` pixels wide) holds more than ``max_ink`` ink."""

    def __init__(self, margin: int = 4, max_ink: float = 0.035) -> None:
        if not 1 <= margin < 14:
            raise ConfigError(f"margin must be in 1..13, got {margin}")
        if not 0.0 <= max_ink < 1.0:
            raise ConfigError(f"max_ink must be in [0, 1), got {max_ink}")
        self.margin = margin
        self.max_ink = max_ink

    def score(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Minus the border's mean ink (pixels in [-1, 1] mapped to [0, 1]); needs no fitting."""
        border = torch.ones(28, 28, dtype=torch.bool)
        border[self.margin:-self.margin, self.margin:-self.margin] = False
        return -((x[:, 0, border] + 1) / 2).mean(dim=1)

    @property
    def boundary(self) -> float:
        return -self.max_ink  # the dashboard and `streamsim report` draw it

    def screen(self, batch: Batch) -> Verdicts:
        with torch.no_grad():
            score = self.score(batch.x, batch.labels)
        return Verdicts(accept=score >= self.boundary, score=score)

    # Optional: lets `streamsim run --checkpoint-every` save and resume runs that use this defense.
    def checkpoint_state(self) -> dict[str, Any]:
        return {}  # nothing is learned

    def restore_state(self, state: dict[str, Any]) -> None:
        pass
