"""Verdict inference: which of my submitted points did the model learn, judged only from its outputs.

An ``effects`` attacker gets no verdicts. It may query the deployed model's predicted labels (or
probabilities, if the scenario allows) on points of its choice, each point one query. The method:

1. **Before/after.** Right before a batch goes out, query the model on its ``n`` poisons and on
   ``m`` *controls* — poisons crafted the same way from other pool samples and never submitted.
   When the attacker hears the batch went through the gate (its observation, ``accepted=None``),
   query the same ``n + m`` points again: ``2(n + m)`` queries per batch.
2. **Movement.** A point the learner trained on moves the model's output towards its claimed
   label more than a point it did not: ``Δᵢ = log p_after(yᵢ | xᵢ) − log p_before(yᵢ | xᵢ)``
   with probabilities, or ``1[pred_after = yᵢ] − 1[pred_before = yᵢ]`` with labels only.
   The median movement of the controls — what the batch's other learning (clean batches, the
   accepted siblings) did to points that were *not* learned — is subtracted.
3. **Threshold from the data.** Over a rolling history of movements, a two-cluster split (Otsu's
   threshold: the cut that maximises the between-cluster variance) separates learned from
   unlearned; it is floored at the ``control_quantile`` of the controls' movements, so that
   when nothing was learned the split cannot fall inside the unlearned cluster. The fraction of
   controls above the threshold estimates the test's error rate.
4. **Denoising.** A per-point test is noisy, but the defense's rule is a function of ``(x, y)``.
   :func:`combine` adds the evidence, weighted by its estimated reliability, to the online shadow
   critic's forecast (log-odds), so the belief about a point tends to the shadow's once the shadow
   is confident — the same combination serves noisy observed verdicts (``verdicts``).

Assumptions: the learner trains on accepted samples with their claimed labels, soon after
screening (the after-query follows the observation); one update changes a learned point's own
output more than its neighbours' (true of small steps on a network, weakly so for one Adam step
— expect a per-point accuracy well short of observed verdicts); controls crafted like the
poisons move like unlearned poisons; the test's false-negative rate is about its false-positive
rate (used only for the evidence weight). With labels only the movement is a coarse flip count:
points whose prediction does not change carry no evidence.

>>> import torch
>>> round(two_cluster_threshold(torch.tensor([0.0, 0.1, 0.05, 1.0, 1.1, 0.9])), 3)
0.1
>>> combine(torch.tensor([3.0, 0.0]), torch.tensor([False, True]), error_rate=0.2).tolist()
[True, True]
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import torch

from streamsim.threat import TargetView

TINY = 1e-6


def two_cluster_threshold(values: torch.Tensor) -> float:
    """Otsu's threshold of 1-d values: the cut (``value ≤ cut`` vs ``> cut``) with the largest between-class variance."""
    v = values.double().sort().values
    n = len(v)
    if n < 2:
        return float(v[0]) if n else 0.0
    left_n = torch.arange(1, n, dtype=torch.float64)
    left_sum = v.cumsum(0)[:-1]
    left_mean, right_mean = left_sum / left_n, (v.sum() - left_sum) / (n - left_n)
    between = left_n * (n - left_n) * (left_mean - right_mean) ** 2
    return float(v[int(torch.argmax(between))])


def combine(forecast_logit: torch.Tensor, evidence: torch.Tensor, error_rate: float) -> torch.Tensor:
    """Posterior accept call: prior log-odds plus ``±log((1 − e)/e)`` for evidence of error rate ``e``."""
    e = min(max(error_rate, 0.01), 0.49)
    weight = math.log((1 - e) / e)
    return forecast_logit + weight * (2 * evidence.float() - 1) > 0


def movement(before: torch.Tensor, after: torch.Tensor, claimed: torch.Tensor) -> torch.Tensor:
    """How far each point's output moved towards its claimed label (probabilities ``N×C`` or labels ``N``)."""
    if before.dim() == 2:
        rows = torch.arange(len(claimed))
        return (after[rows, claimed].clamp_min(TINY).log() - before[rows, claimed].clamp_min(TINY).log()).float()
    return (after == claimed).float() - (before == claimed).float()


@dataclass
class _Probe:
    x: torch.Tensor
    claimed: torch.Tensor
    before: torch.Tensor
    n_submitted: int


class EffectsInference:
    """Before/after queries on submissions and controls; inferred verdicts from the movements."""

    def __init__(self, controls: int = 8, control_quantile: float = 0.8, history: int = 1024) -> None:
        self.controls = controls
        self.control_quantile = control_quantile
        self.submitted_moves: deque[float] = deque(maxlen=history)
        self.control_moves: deque[float] = deque(maxlen=history)
        self.pending: dict[float, _Probe] = {}
        self.error_rate = 0.5
        self.threshold = math.nan

    def cost(self, n_submitted: int) -> int:
        """Queries one batch of ``n_submitted`` poisons costs (before and after, with the controls)."""
        return 2 * (n_submitted + self.controls)

    def _ask(self, view: TargetView, x: torch.Tensor) -> torch.Tensor:
        return view.predict_proba(x) if view.effects_proba else view.predict(x)

    def before(self, view: TargetView, time: float, x: torch.Tensor, claimed: torch.Tensor, n_submitted: int) -> bool:
        """Query the points (submitted first, then controls) now, if the budget covers both rounds."""
        if view.queries_left < self.cost(n_submitted):
            return False
        self.pending[time] = _Probe(x, claimed, self._ask(view, x), n_submitted)
        return True

    def after(self, view: TargetView, time: float) -> torch.Tensor | None:
        """Query again and return the inferred verdicts of the submitted points (``None`` if not probed)."""
        probe = self.pending.pop(time, None)
        if probe is None or view.queries_left < len(probe.x):
            return None
        moves = movement(probe.before, self._ask(view, probe.x), probe.claimed)
        n = probe.n_submitted
        if len(moves) > n:
            moves = moves - moves[n:].median()
        self.submitted_moves.extend(moves[:n].tolist())
        self.control_moves.extend(moves[n:].tolist())
        controls = torch.tensor(list(self.control_moves))
        split = two_cluster_threshold(torch.tensor([*self.submitted_moves, *self.control_moves]))
        floor = float(controls.quantile(self.control_quantile)) if len(controls) else -math.inf
        self.threshold = max(split, floor)
        if len(controls):
            self.error_rate = float((controls > self.threshold).float().mean())
        return moves[:n] > self.threshold
