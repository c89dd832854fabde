"""Sources: SimPy processes that emit batches — clean ones (maybe drifting) and attacker ones.

A source knows when to send and what to send; it never screens or learns. Both kinds share the
arrival logic (fixed interval or Poisson, start/stop, sample budget).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy
import torch

from streamsim.core.base import Attack, CraftContext
from streamsim.core.batch import Batch
from streamsim.core.errors import PluginError
from streamsim.core.records import ConceptChange
from streamsim.core.space import IMAGES, DataSpace
from streamsim.data import drifting
from streamsim.scenario.config import AttackerSource, CleanSource
from streamsim.seeds import torch_generator
from streamsim.simulation.wakeups import Wakeups

if TYPE_CHECKING:  # annotations only: the simulator hands each attacker its view
    from streamsim.simulation.threat import TargetView

Submit = Callable[[Batch, "SourceRuntime"], None]


class SourceRuntime:
    """A running source: its settings, its RNG, and how many samples it has sent."""

    kind = "clean"

    def __init__(self, config: CleanSource | AttackerSource, pool: Batch, seed: int, duration: float) -> None:
        self.config = config
        self.name = config.name
        self.pool = pool
        self.rng = np.random.default_rng(seed)
        self.generator = torch_generator(seed)
        self.stop = min(config.stop if config.stop is not None else duration, duration)
        self.sent = 0

    def _gap(self) -> float:
        c = self.config
        return c.interval if c.arrival == "fixed" else float(self.rng.exponential(1.0 / c.rate))

    def _draw(self, n: int, weights: np.ndarray | None) -> Batch:
        idx = self.rng.choice(len(self.pool), size=n, replace=weights is not None or n > len(self.pool), p=weights)
        return self.pool.subset(torch.from_numpy(idx))

    def make_batch(self, env: simpy.Environment, n: int) -> Batch:
        raise NotImplementedError

    def process(self, env: simpy.Environment, submit: Submit, clock: Wakeups,
                resume_at: float | None = None) -> Generator[Any, Any, None]:
        """Emit batches until the stop time or the budget; ``resume_at``: continue a checkpointed run,
        whose next emission was due then."""
        key = f"source:{self.name}"
        if resume_at is not None:
            yield clock.sleep_until(key, resume_at)
        elif self.config.start > 0:
            yield clock.sleep(key, self.config.start)
        budget = self.config.budget
        while env.now < self.stop and (budget is None or self.sent < budget):
            n = self.config.batch_size if budget is None else min(self.config.batch_size, budget - self.sent)
            batch = self.make_batch(env, n)
            self.sent += len(batch)
            submit(batch, self)
            yield clock.sleep(key, self._gap())

    def checkpoint_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "generator": self.generator.get_state(), "sent": self.sent}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])
        self.sent = int(state["sent"])


class CleanRuntime(SourceRuntime):
    """Draws clean samples from the stream split — at random, or in order when the split is an ordered
    stream (a synthetic generator's output), cycling at its end and announcing its concept changes."""

    config: CleanSource

    def __init__(self, config: CleanSource, pool: Batch, seed: int, duration: float, ordered: bool = False,
                 changes: tuple[int, ...] = (), on_change: Callable[[ConceptChange], None] | None = None,
                 run: str = "attack") -> None:
        super().__init__(config, pool, seed, duration)
        self.ordered, self.on_change, self.run = ordered, on_change, run
        # Each lap passes every change again, and its wrap back to the start is a change of concept too.
        self._marks = sorted({*changes, *([0] if changes else [])})

    def _in_order(self, env: simpy.Environment, n: int) -> Batch:
        size = len(self.pool)
        start = self.sent
        idx = torch.arange(start, start + n) % size
        for p in self._marks:
            lap = -(-max(start - p, 0) // size)  # first position ≥ start that is p mod size
            at = p + lap * size
            if at < start + n and at > 0 and self.on_change is not None:
                self.on_change(ConceptChange(self.run, env.now, self.name, int(at)))
        return self.pool.subset(idx).with_(source=self.name)

    def make_batch(self, env: simpy.Environment, n: int) -> Batch:
        if self.ordered:
            return self._in_order(env, n)
        d = self.config.drift
        priors = d.prior_shift.priors if d.prior_shift is not None and env.now >= d.prior_shift.at else None
        batch = self._draw(n, drifting.sample_weights(self.pool.labels, priors))
        angle = drifting.rotation_at(env.now, d.rotation_per_time, d.max_rotation)
        return batch.with_(x=drifting.rotate(batch.x, angle), source=self.name)


class AttackerRuntime(SourceRuntime):
    """Draws base samples from its pool and hands them to the attack to poison."""

    kind = "attack"
    config: AttackerSource

    def __init__(self, config: AttackerSource, pool: Batch, seed: int, duration: float,
                 attack: Attack, view: TargetView, space: DataSpace = IMAGES) -> None:
        super().__init__(config, pool, seed, duration)
        self.attack = attack
        self.view = view
        self.space = space

    def make_batch(self, env: simpy.Environment, n: int) -> Batch:
        base = self._draw(n, None)
        context = CraftContext(time=env.now, rng=self.rng, generator=self.generator, view=self.view, space=self.space)
        poisoned = self.attack.craft(base, context)
        _check_crafted(poisoned, base, type(self.attack).__name__, self.space)
        # Provenance, not the attack's word, decides what counts as poison.
        return poisoned.with_(is_poison=torch.ones(len(poisoned), dtype=torch.bool), source=self.name)


def _check_crafted(poisoned: object, base: Batch, who: str, space: DataSpace = IMAGES) -> None:
    if not isinstance(poisoned, Batch):
        raise PluginError(f"attack {who}.craft returned {type(poisoned).__name__}, expected a Batch")
    if poisoned.x.shape[1:] != base.x.shape[1:] or poisoned.x.dtype != base.x.dtype:
        raise PluginError(f"attack {who}.craft changed the sample shape or dtype to {tuple(poisoned.x.shape)} {poisoned.x.dtype}")
    if space.kind == "images" and len(poisoned) and (poisoned.x.min() < -1.0001 or poisoned.x.max() > 1.0001):
        raise PluginError(f"attack {who}.craft produced pixels outside [-1, 1]")
    if space.kind == "vectors" and not space.contains(poisoned.x):
        raise PluginError(f"attack {who}.craft produced features outside their observed ranges or off an integer grid "
                          "(end crafting with context.space.project(x))")
    if len(poisoned) and (poisoned.labels.min() < 0 or poisoned.labels.max() >= space.n_classes):
        raise PluginError(f"attack {who}.craft produced labels outside 0..{space.n_classes - 1}")
