"""Active probing: a few points per batch that the attacker sends *to learn the verdicts*, not to harm.

A passive ``effects`` attacker reads acceptance from how its poisons move when learned, and a
poison that keeps its true label barely moves (docs/studies/adaptive.md). A probe is chosen
so that learning it leaves a mark: a label-inconsistent canary (:mod:`.canary`) or a point on the
model's decision boundary (:mod:`.boundary`). Each batch, a :class:`Prober` turns the last
``share`` of the base batch into probes, builds as many never-submitted *twins* the same way from
the attacker's pool (the controls), queries all of them before the batch goes out and after it
was learned, and reads per-probe probabilities of having been learned with the same two-group
model as the poisons (:class:`~attacks.adaptive.inference.EffectsInference`, its own history).
Those probabilities train the shadow critic exactly like the poisons' (soft targets).

What a probe costs, all of it counted: samples (a probe takes a poison's place in the batch),
queries (building it — 1 per canary, ``2 + steps`` per boundary probe — for it and its twin, then
``2`` before/after rounds for both) and exposure (probes look unlike poison and can be rejected or
spotted). The bandit weighs the sample cost: the probe design is part of its arms, rewarded like
any other by the damage the batch is believed to have done.

>>> import torch
>>> from streamsim import ConfigError, TargetView
>>> class Zero:
...     def predict(self, x): return torch.zeros(len(x), dtype=torch.long)
>>> prober = Prober("canary")
>>> prober.cost(4), prober.count(16, 0.25)
(24, 4)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attacks.adaptive.boundary import boundary_probes
from attacks.adaptive.canary import label_inconsistent
from attacks.adaptive.inference import EffectsInference
from streamsim import ConfigError, TargetView

DESIGNS = ("none", "canary", "boundary", "group")  # group: :mod:`attacks.adaptive.group`


@dataclass(frozen=True)
class ProbingSettings:
    """The ``adaptive`` attack's ``probing`` table: how an ``effects`` attacker queries the model to infer its verdicts.

    ``controls`` never-submitted pool points are queried with every batch (the movement of
    unlearned points); probes take the last ``share`` of a batch, a boundary probe is bisected
    ``bisection_steps`` times; a group design cuts the batch to ``group_size`` points and reads
    whether the model changed from ``detectors`` boundary points bisected ``detector_steps`` times
    (:mod:`.group`).
    """

    controls: int = 8
    share: float = 0.25
    bisection_steps: int = 5
    group_size: int = 1
    detectors: int = 4
    detector_steps: int = 10

    def __post_init__(self) -> None:
        if self.controls < 0:
            raise ConfigError(f"controls must be >= 0, got {self.controls}")
        if not 0 < self.share < 1:
            raise ConfigError(f"share must be in (0, 1), got {self.share}")
        if min(self.bisection_steps, self.group_size, self.detectors, self.detector_steps) < 1:
            raise ConfigError("bisection_steps, group_size, detectors and detector_steps must be >= 1, got "
                              f"{self.bisection_steps}, {self.group_size}, {self.detectors}, {self.detector_steps}")


class Prober:
    """Builds one design's probes and twins, and infers from their movement whether each was learned."""

    def __init__(self, design: str, bisection_steps: int = 5) -> None:
        self.design = design
        self.bisection_steps = bisection_steps
        self.inference = EffectsInference()

    def count(self, n: int, share: float) -> int:
        """Probes in a batch of ``n``: ``share`` of it, at least one, leaving at least one poison."""
        return min(n - 1, max(1, round(share * n)))

    def build_queries(self, k: int) -> int:
        """Queries to build ``k`` probes and their ``k`` twins."""
        per_point = 1 if self.design == "canary" else 2 + self.bisection_steps
        return 2 * k * per_point

    def cost(self, k: int) -> int:
        """Every query ``k`` probes cost: building them and their twins, then before and after."""
        return self.build_queries(k) + 2 * (2 * k)

    def make(self, x: torch.Tensor, y: torch.Tensor, pool_x: torch.Tensor, pool_y: torch.Tensor,
             view: TargetView, generator: torch.Generator, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Probe versions of ``x`` (true labels ``y``, of ``n_classes`` classes): the points to send, and the
        labels to claim."""
        if self.design == "canary":
            return x, label_inconsistent(x, view, generator, n_classes)
        return boundary_probes(x, y, pool_x, pool_y, view, generator, self.bisection_steps)
