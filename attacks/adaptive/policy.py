"""How the online attacker picks ε, mode and rate for each batch: a discounted UCB bandit plus a back-off.

**Arms** are ``(ε, mode)`` pairs. After a batch's verdicts are known (observed or inferred), the
arm that crafted it is rewarded with the estimated damage that got through: the fraction of the
batch believed accepted *and* misclassified (by the target as queried before sending, under
``effects``; else by the attacker's surrogate classifier) — an estimate
of how much the batch lowers De-Pois accuracy (da), in ``[0, 1]``.

**Discounted UCB** (Garivier & Moulines, "On upper-confidence bound policies for switching bandit
problems", ALT 2011): every update multiplies all past counts and reward sums by ``discount``
before adding the new one, so the bandit forgets at rate ``1 − discount`` and follows a defense
whose boundary moves. It plays each arm once, then ``argmax mean_i + c·sqrt(log N / n_i)`` with
discounted ``n_i`` and ``N = Σ n_i``.

**Back-off** (stealth): the fraction of each base batch actually submitted, ``rate``, is halved
(down to ``min_rate``) when a batch's believed rejection rate jumps ``spike`` above its running
average, and grows back by ``recover`` per calm batch. Fewer submissions while the defense is
rejecting more both save the sample budget and draw less attention.

**Freezing**: when the attacker can no longer judge its batches (the query budget for inference
ran out), :meth:`Policy.freeze` keeps the last policy — the best arm so far, the current rate.

>>> policy = Policy([Arm(0.1, "classifier"), Arm(0.3, "classifier")], discount=0.9)
>>> for _ in range(20):
...     choice = policy.choose()
...     policy.feedback(choice.index, reward=0.8 if choice.arm.eps == 0.3 else 0.2, rejected=0.1)
>>> policy.best().arm.eps
0.3
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from streamsim import ConfigError


@dataclass(frozen=True)
class PolicySettings:
    """The ``adaptive`` attack's ``policy`` table: how its bandit forgets and explores, how it backs off.

    ``discount`` (in (0, 1]) and ``exploration`` (the UCB bonus's weight) drive the bandit;
    the rate is multiplied by ``backoff_factor`` (down to ``min_rate``) when the believed
    rejection rate jumps ``backoff_spike`` above its running average.
    """

    discount: float = 0.97
    exploration: float = 0.2
    backoff_spike: float = 0.3
    backoff_factor: float = 0.5
    min_rate: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.discount <= 1:
            raise ConfigError(f"discount must be in (0, 1], got {self.discount}")
        if self.exploration < 0 or self.backoff_spike < 0:
            raise ConfigError(f"exploration and backoff_spike must be >= 0, got {self.exploration} and {self.backoff_spike}")
        if not 0 < self.backoff_factor <= 1:
            raise ConfigError(f"backoff_factor must be in (0, 1], got {self.backoff_factor}")
        if not 0 < self.min_rate <= 1:
            raise ConfigError(f"min_rate must be in (0, 1], got {self.min_rate}")


@dataclass(frozen=True)
class Arm:
    eps: float
    mode: str
    probe: str = "none"  # the probe design sent along (:mod:`attacks.adaptive.probing`), or none


@dataclass(frozen=True)
class Choice:
    index: int
    arm: Arm
    rate: float


class DiscountedUCB:
    """UCB over arms with exponentially discounted statistics (for a non-stationary defense)."""

    def __init__(self, n_arms: int, discount: float = 0.9, exploration: float = 0.5) -> None:
        self.discount = discount
        self.exploration = exploration
        self.counts = torch.zeros(n_arms, dtype=torch.float64)
        self.sums = torch.zeros(n_arms, dtype=torch.float64)
        self.played = torch.zeros(n_arms, dtype=torch.bool)

    def means(self) -> torch.Tensor:
        return torch.where(self.counts > 0, self.sums / self.counts.clamp_min(1e-12), torch.zeros_like(self.sums))

    def choose(self) -> int:
        unplayed = torch.nonzero(~self.played).flatten()
        if len(unplayed):
            return int(unplayed[0])
        total = float(self.counts.sum())
        bonus = self.exploration * torch.sqrt(math.log(max(total, 1.0 + 1e-9)) / self.counts.clamp_min(1e-12))
        return int(torch.argmax(self.means() + bonus))

    def update(self, arm: int, reward: float) -> None:
        self.counts *= self.discount
        self.sums *= self.discount
        self.counts[arm] += 1.0
        self.sums[arm] += reward
        self.played[arm] = True

    def best(self) -> int:
        means = torch.where(self.played, self.means(), torch.full_like(self.sums, -math.inf))
        return int(torch.argmax(means))


class Backoff:
    """Submission rate that halves when rejections spike above their running average."""

    def __init__(self, spike: float = 0.3, factor: float = 0.5, min_rate: float = 0.25, recover: float = 1.25,
                 smoothing: float = 0.8) -> None:
        self.spike = spike
        self.factor = factor
        self.min_rate = min_rate
        self.recover = recover
        self.smoothing = smoothing
        self.rate = 1.0
        self.average: float | None = None
        self.backoffs = 0

    def update(self, rejected: float) -> None:
        if self.average is not None and rejected > self.average + self.spike:
            self.rate = max(self.min_rate, self.rate * self.factor)
            self.backoffs += 1
        else:
            self.rate = min(1.0, self.rate * self.recover)
        self.average = rejected if self.average is None else self.smoothing * self.average + (1 - self.smoothing) * rejected


class Policy:
    """Bandit over ``(ε, mode)`` arms plus the back-off on the rate; frozen when feedback stops."""

    def __init__(self, arms: list[Arm], discount: float = 0.9, exploration: float = 0.5, spike: float = 0.3,
                 factor: float = 0.5, min_rate: float = 0.25) -> None:
        self.arms = arms
        self.bandit = DiscountedUCB(len(arms), discount, exploration)
        self.backoff = Backoff(spike=spike, factor=factor, min_rate=min_rate)
        self.frozen = False
        self.last: Choice | None = None

    def choose(self) -> Choice:
        index = self.bandit.best() if self.frozen and bool(self.bandit.played.any()) else self.bandit.choose()
        self.last = Choice(index, self.arms[index], self.backoff.rate)
        return self.last

    def feedback(self, index: int, reward: float, rejected: float) -> None:
        if self.frozen:
            return
        self.bandit.update(index, reward)
        self.backoff.update(rejected)

    def freeze(self) -> None:
        self.frozen = True

    def best(self) -> Choice:
        index = self.bandit.best()
        return Choice(index, self.arms[index], self.backoff.rate)

    def checkpoint_state(self) -> dict[str, Any]:
        """What the policy learned so far, as tensors and numbers (run checkpoints)."""
        b = self.backoff
        return {"counts": self.bandit.counts.clone(), "sums": self.bandit.sums.clone(),
                "played": self.bandit.played.clone(), "rate": b.rate, "average": b.average, "backoffs": b.backoffs,
                "frozen": self.frozen, "last": None if self.last is None else [self.last.index, self.last.rate]}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.bandit.counts, self.bandit.sums = state["counts"].clone(), state["sums"].clone()
        self.bandit.played = state["played"].clone()
        self.backoff.rate, self.backoff.average = float(state["rate"]), state["average"]
        self.backoff.backoffs, self.frozen = int(state["backoffs"]), bool(state["frozen"])
        last = state["last"]
        self.last = None if last is None else Choice(int(last[0]), self.arms[int(last[0])], float(last[1]))
