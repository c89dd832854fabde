"""The evaluator: target accuracy on the held-out split on a fixed clock, and the attackers' numbers."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import torch

from streamsim.core.base import Learner
from streamsim.core.batch import Batch
from streamsim.core.probes import Probe, success_rate
from streamsim.core.records import AttackRecord, EvalRecord, Record
from streamsim.seeds import child_seed
from streamsim.simulation.wakeups import Wakeups


def held_out(test: Batch, eval_size: int | None, seed: int) -> Batch:
    """The fixed evaluation subset of the test split (all of it without ``eval_size``); never seen by attackers."""
    if not eval_size or eval_size >= len(test):
        return test
    pick = np.random.default_rng(child_seed(seed, "eval")).choice(len(test), eval_size, replace=False)
    return test.subset(torch.from_numpy(np.sort(pick)))


def per_class_accuracy(predicted: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[float, ...]:
    """Accuracy on each class's samples, NaN for a class without any (one batched count, no loop).

    >>> per_class_accuracy(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 4)
    (1.0, 1.0, 0.5, nan)
    """
    total = torch.bincount(labels, minlength=n_classes).double()
    right = torch.bincount(labels[predicted == labels], minlength=n_classes).double()
    return tuple(float(v) for v in torch.where(total > 0, right / total.clamp(min=1), float("nan")))


class Evaluator:
    """Every ``every`` time units from 0 to ``duration``: an :class:`AttackRecord` per attacker
    (``attacker_numbers`` polled at that tick), then an :class:`EvalRecord` with the accuracy
    overall and per class, and the success rate of every harm probe. Its state is the index of
    the next tick."""

    key = "eval"

    def __init__(self, test: Batch, learner: Learner, every: float, duration: float, run: str,
                 sink: Callable[[Record], None], attacker_numbers: Callable[[], dict[str, dict[str, float]]],
                 probes: dict[str, Probe] | None = None, n_classes: int = 10) -> None:
        self.test = test
        self.probes = dict(probes or {})
        self.n_classes = n_classes
        self.learner = learner
        self.every = every
        self.duration = duration
        self.run = run
        self.sink = sink
        self.attacker_numbers = attacker_numbers
        self.next_tick = 0

    def process(self, clock: Wakeups, resume_at: float | None = None) -> Generator[Any, Any, None]:
        """The evaluator's SimPy process; ``resume_at``: the restored run's next tick was due then."""
        if resume_at is not None:
            yield clock.sleep_until(self.key, resume_at)
            self.evaluate(clock.env.now)
        while self.next_tick * self.every <= self.duration + 1e-9:
            if self.next_tick * self.every > clock.env.now:
                yield clock.sleep(self.key, self.next_tick * self.every - clock.env.now)
            self.evaluate(clock.env.now)

    def evaluate(self, now: float) -> None:
        for source, values in self.attacker_numbers().items():
            self.sink(AttackRecord(self.run, now, source, values))
        predicted = self.learner.predict(self.test.x)
        correct = (predicted == self.test.labels).float().mean().item()
        rates = {name: success_rate(p, self.learner.predict(p.x)) for name, p in self.probes.items()}
        self.sink(EvalRecord(self.run, now, correct, len(self.test),
                             per_class_accuracy(predicted, self.test.labels, self.n_classes), rates))
        self.next_tick += 1

    def checkpoint_state(self) -> dict[str, Any]:
        return {"next_tick": self.next_tick}

    def restore_state(self, state: dict[str, Any], records: Sequence[Record]) -> None:
        self.next_tick = int(state["next_tick"])
