"""Group designs: whether *anything* of a batch was learned, read exactly from whether the model changed.

The per-point movement of a learned poison is small against what the same learning step does to
every other point (docs/studies/adaptive.md). One bit is not small: if the learner took none
of the batch, it took no step, and every output of the deployed model is exactly what it was.
The attacker asks the group question — was any of these learned? — and answers it without noise,
then attributes per point (:func:`attribute`):

- none learned (no output changed): every point rejected, with certainty;
- something learned and the group is one point: that point accepted, with certainty;
- something learned in a larger group: each point's probability from its own movement
  (:mod:`.inference`), conditioned on at least one being learned.

Small groups make the answer sharp and cost samples: a group of ``g`` sends ``g`` of the base
batch's points, so the bandit, whose reward counts the damage per base-batch slot, weighs the
exact verdicts against the poison left unsent. The design assumes what this simulator's target
does — it learns each screened batch on its own, and nothing else moves it between the attacker's
before- and after-queries. A learner that also trains on other data in the same step (clean
traffic mixed in, a buffer learned long after) turns the bit into a magnitude or silences it
(``learner.update``; measured in docs/studies/update-regimes.md).

With probabilities, any change of any queried output is the signal (the attacker's poisons and
controls, queried anyway). With labels only, outputs rarely change, so the attacker queries
*detectors*: points bisected onto the model's boundary (:mod:`.boundary`), whose label flips on
almost any step that moves the boundary their way; a handful of them catch most steps.

>>> import torch
>>> conditional(torch.tensor([0.2, 0.2]), changed=True).tolist()  # one of two was surely learned
[0.5555555..., 0.5555555...]
>>> conditional(torch.tensor([0.9, 0.3]), changed=False).tolist()
[0.0, 0.0]
"""

from __future__ import annotations

import torch

from attacks.adaptive.boundary import boundary_probes
from streamsim import TargetView


def conditional(probability: torch.Tensor, changed: bool) -> torch.Tensor:
    """Per-point probabilities of having been learned, given whether anything was (independent points)."""
    if not changed:
        return torch.zeros_like(probability)
    if len(probability) == 1:
        return torch.ones_like(probability)
    any_learned = 1 - torch.prod(1 - probability.double())
    return (probability.double() / any_learned.clamp_min(1e-12)).clamp(max=1).float()


class ChangeDetector:
    """Label-only change detection: ``detectors`` boundary points, bisected ``steps`` times, queried after."""

    def __init__(self, detectors: int = 4, steps: int = 10) -> None:
        self.detectors = detectors
        self.steps = steps
        self.pending: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}

    def cost(self) -> int:
        """Queries per batch: building the detectors, then one query each before and after."""
        return self.detectors * (2 + self.steps + 2)

    def before(self, view: TargetView, time: float, pool_x: torch.Tensor, pool_y: torch.Tensor,
               generator: torch.Generator) -> None:
        pick = torch.randint(len(pool_x), (self.detectors,), generator=generator)
        x, _ = boundary_probes(pool_x[pick], pool_y[pick], pool_x, pool_y, view, generator, self.steps)
        self.pending[time] = (x, view.predict(x))

    def changed(self, view: TargetView, time: float) -> bool | None:
        """Whether any detector's label changed (``None`` if none were placed for this batch)."""
        placed = self.pending.pop(time, None)
        if placed is None:
            return None
        x, before = placed
        return bool((view.predict(x) != before).any())
