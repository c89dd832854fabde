"""Verdict inference: which of my submitted points did the model learn, judged only from its outputs.

An ``effects`` attacker gets no verdicts. It may query the deployed model's predicted labels (or
probabilities, if the scenario allows) on points of its choice, each point one query. The method:

1. **Before/after.** Right before a batch goes out, query the model on its ``n`` poisons and on
   ``m`` *controls* — poisons crafted the same way from other pool samples and never submitted.
   When the attacker hears the batch went through the gate (its observation, ``accepted=None``),
   query the same ``n + m`` points again: ``2(n + m)`` queries per batch.
2. **Movement.** A point the learner trained on moves the model's output towards its claimed
   label more than a point it did not. With probabilities the movement is the change of the
   claimed label's log-odds (log-odds, not log-probability, so confident points still move);
   with labels only it is ``1[pred_after = y] − 1[pred_before = y]``. The batch's median control
   movement — what the batch's other learning did to points that were *not* learned — is
   subtracted.
3. **Two-group model.** Over a rolling history, the controls' movements sample the *unlearned*
   distribution ``f₀``; the submitted points' movements sample the mixture
   ``f = π₀ f₀ + (1 − π₀) f₁``. ``π₀`` is estimated as in Storey's method: below the controls'
   median almost no learned point falls, so ``π₀ ≈ F(q) / F₀(q)`` at that median ``q``. Each point's
   probability of having been learned is then ``1 − π₀ f₀(Δ) / f(Δ)`` (Efron's local false
   discovery rate), with both densities from Gaussian kernel estimates. Nothing is tuned to a
   particular defense or learner.

Assumptions: the learner trains on accepted samples with their claimed labels, soon after
screening (the after-query follows the observation); learning a point moves its own output more
than an unlearned point of the same kind; controls crafted like the poisons move like unlearned
poisons. With labels only most movements are 0 for learned and unlearned points alike, so the
groups cannot be told apart and the inference falls back towards "not learned": expect
near-chance balanced accuracy there (docs/studies/adaptive.md reports it).

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> controls = torch.randn(400, generator=g)
>>> submitted = torch.cat([torch.randn(100, generator=g), torch.randn(300, generator=g) + 4])
>>> p = learned_probability(submitted, controls, submitted)
>>> round(unlearned_fraction(submitted, controls), 1), bool((p[:100] < 0.5).float().mean() > 0.85), bool((p[100:] > 0.5).float().mean() > 0.9)
(0.3, True, True)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import torch
from scipy.stats import norm

from streamsim import TargetView

TINY = 1e-6


def movement(before: torch.Tensor, after: torch.Tensor, claimed: torch.Tensor) -> torch.Tensor:
    """How far each point's output moved towards its claimed label (probabilities ``N×C`` or labels ``N``)."""
    if before.dim() == 2:
        rows = torch.arange(len(claimed))

        def log_odds(p: torch.Tensor) -> torch.Tensor:
            p = p[rows, claimed].double().clamp(TINY, 1 - TINY)
            return (p / (1 - p)).log()

        return (log_odds(after) - log_odds(before)).float()
    return (after == claimed).float() - (before == claimed).float()


def unlearned_fraction(submitted: torch.Tensor, controls: torch.Tensor) -> float:
    """Storey-style estimate of the unlearned share ``π₀`` of the submitted points' movements."""
    q = controls.median()
    below_controls = float((controls <= q).float().mean())
    below_submitted = float((submitted <= q).float().mean())
    return min(1.0, max(TINY, below_submitted / max(below_controls, TINY)))


def _density(at: torch.Tensor, sample: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Gaussian kernel density of ``sample`` at the points ``at``, with a fixed (absolute) bandwidth.

    ``scipy.stats.gaussian_kde`` scales its bandwidth by the sample's own spread, which is zero when
    every movement is the same (labels only, most movements 0); one bandwidth from the pooled
    sample keeps both densities on the same footing, so the kernel is summed here directly.
    """
    kernels = norm.pdf(at.double().numpy()[:, None], loc=sample.double().numpy()[None, :], scale=bandwidth)
    return torch.from_numpy(kernels.mean(1))


def learned_probability(at: torch.Tensor, controls: torch.Tensor, submitted: torch.Tensor) -> torch.Tensor:
    """``P(learned | movement)`` for each movement in ``at``: one minus the local false discovery rate."""
    pooled = torch.cat([controls, submitted]).double()
    spread = float(pooled.std()) if len(pooled) > 1 else 0.0
    bandwidth = max(1.06 * spread * len(pooled) ** -0.2, 1e-3)  # Silverman's rule of thumb
    null, mixture = _density(at, controls, bandwidth), _density(at, submitted, bandwidth)
    lfdr = unlearned_fraction(submitted, controls) * null / mixture.clamp_min(1e-300)
    return (1 - lfdr.clamp(0, 1)).float()


@dataclass
class _Probe:
    x: torch.Tensor
    claimed: torch.Tensor
    before: torch.Tensor
    n_submitted: int


class EffectsInference:
    """Before/after queries on submissions and controls; per-point probabilities of having been learned."""

    def __init__(self, controls: int = 8, history: int = 2048) -> None:
        self.controls = controls
        self.submitted_moves: deque[float] = deque(maxlen=history)
        self.control_moves: deque[float] = deque(maxlen=history)
        self.pending: dict[float, _Probe] = {}
        self.unlearned = math.nan  # the latest π₀ estimate
        self.last_changed: bool | None = None  # whether the latest after-query saw any output change

    def cost(self, n_submitted: int) -> int:
        """Queries one batch of ``n_submitted`` poisons costs (before and after, with the controls)."""
        return 2 * (n_submitted + self.controls)

    def _ask(self, view: TargetView, x: torch.Tensor) -> torch.Tensor:
        return view.predict_proba(x) if view.effects_proba else view.predict(x)

    def before(self, view: TargetView, time: float, x: torch.Tensor, claimed: torch.Tensor, n_submitted: int) -> bool:
        """Query the points (submitted first, then controls) now, if the budget covers both rounds."""
        if view.queries_left < 2 * len(x):  # cost(n_submitted) with this call's own controls
            return False
        self.pending[time] = _Probe(x, claimed, self._ask(view, x), n_submitted)
        return True

    def misclassified(self, time: float) -> torch.Tensor:
        """Whether the deployed model misclassified each submitted point before it went out: what a
        successful poison looks like, known from the before-query at no extra cost."""
        probe = self.pending[time]
        predicted = probe.before.argmax(1) if probe.before.dim() == 2 else probe.before
        return (predicted != probe.claimed)[: probe.n_submitted]

    def after(self, view: TargetView, time: float) -> torch.Tensor | None:
        """Query again; ``P(learned)`` for each submitted point, or ``None`` if the batch was not probed."""
        probe = self.pending.pop(time, None)
        if probe is None or view.queries_left < len(probe.x):
            return None
        after = self._ask(view, probe.x)
        self.last_changed = not torch.equal(probe.before, after)  # with probabilities: did the model move at all
        moves = movement(probe.before, after, probe.claimed)
        n = probe.n_submitted
        if len(moves) > n:
            moves = moves - moves[n:].median()
        self.submitted_moves.extend(moves[:n].tolist())
        self.control_moves.extend(moves[n:].tolist())
        if not self.control_moves:
            return None
        controls, submitted = torch.tensor(list(self.control_moves)), torch.tensor(list(self.submitted_moves))
        self.unlearned = unlearned_fraction(submitted, controls)
        return learned_probability(moves[:n], controls, submitted)

    def checkpoint_state(self) -> dict[str, Any]:
        """Movement histories and the probes awaiting their after-query (run checkpoints)."""
        return {"submitted_moves": torch.tensor(list(self.submitted_moves)),
                "control_moves": torch.tensor(list(self.control_moves)), "unlearned": self.unlearned,
                "pending": [{"time": t, "x": p.x, "claimed": p.claimed, "before": p.before, "n": p.n_submitted}
                            for t, p in self.pending.items()]}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.submitted_moves.clear()
        self.submitted_moves.extend(state["submitted_moves"].tolist())
        self.control_moves.clear()
        self.control_moves.extend(state["control_moves"].tolist())
        self.unlearned = float(state["unlearned"])
        self.pending = {float(p["time"]): _Probe(p["x"], p["claimed"], p["before"], int(p["n"]))
                        for p in state["pending"]}
