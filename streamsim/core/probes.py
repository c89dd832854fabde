"""Harm probes: fixed held-out inputs with the label an attack wants the model to give them.

An attack that aims at a specific behaviour (a backdoor, a targeted poison) declares how to
measure its success with ``harm_probes`` (the :class:`~streamsim.core.abilities.HarmProbes` ability):
named :class:`Probe` sets built once from the held-out evaluation split. The evaluator measures
every probe at every evaluation, in the attacked run *and* in the no-attack baseline, so a
success rate always has the rate the same inputs reach without any poison next to it.

- ``asr`` (attack success rate, backdoors): held-out inputs not of the target class, trigger
  stamped on them, wanted label the target;
- ``targeted_success`` (targeted poisoning): the chosen target inputs, wanted label the class the
  attacker wants them to take.

>>> import torch
>>> probe = Probe(x=torch.zeros(4, 2), wanted=torch.tensor([1, 1, 0, 1]))
>>> success_rate(probe, torch.tensor([1, 0, 0, 1]))
0.75
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Probe:
    """Inputs and the label an attack wants each of them classified as."""

    x: torch.Tensor
    wanted: torch.Tensor

    def __post_init__(self) -> None:
        if self.wanted.shape != (self.x.shape[0],):
            raise ValueError(f"Probe.wanted has shape {tuple(self.wanted.shape)}, expected ({self.x.shape[0]},)")

    def __len__(self) -> int:
        return self.x.shape[0]


def success_rate(probe: Probe, predicted: torch.Tensor) -> float:
    """Share of the probe's inputs predicted as wanted; NaN for an empty probe."""
    if len(probe) == 0:
        return float("nan")
    return float((predicted == probe.wanted).float().mean())
