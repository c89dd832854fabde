"""Update regimes: when the deployed learner learns, and on what (the scenario's ``learner.update``).

The gate screens each batch and hands what the defense accepted to the run's update policy; the
policy decides when the learner's low-level ``learn(x, y)`` is called and with which samples. Each
policy is a small part that owns its buffer, reservoir or window and its generator, and saves and
restores them. Every call that changes the model is an *update*, reported as an
:class:`~streamsim.records.UpdateRecord`: the only moments an attacker's queries can see the
model move.

==================  ==============================================================================
``policy``          when the learner learns, and on what
==================  ==============================================================================
``per-batch``       each batch's accepted samples, alone, as they arrive (the default)
``per-sample``      one ``learn`` call per accepted sample, in arrival order
``buffered``        accepted samples wait; every ``every`` samples and/or every ``interval`` time
                    units, ``steps`` calls on shuffled mini-batches of ``batch_size`` from the
                    buffer, which is then emptied
``replay``          each accepted batch mixed with samples replayed from a reservoir (Vitter's
                    algorithm R: a uniform sample of ``capacity`` of everything accepted before);
                    ``mix`` is the replayed share of the step's batch
``window-retrain``  every ``interval``: back to the pretrained weights, then ``epochs`` shuffled
                    epochs of ``batch_size`` on the last ``window`` accepted samples
==================  ==============================================================================

A "step" here is one ``learn`` call: for the torch learners, ``steps_per_batch`` Adam steps (one by
default). river learners take ``per-batch`` (one ``learn_many`` call, or ``learn_one`` per sample
with ``api = "one"``) and ``per-sample``; the mini-batch policies are refused for them before a
run starts (:func:`check_policy`), as is ``window-retrain`` for a learner that cannot be reset.

>>> import torch
>>> from streamsim.config import Buffered
>>> class Counting:
...     calls = []
...     def learn(self, x, y): self.calls.append(len(x))
>>> updates = Updates(Buffered(policy="buffered", every=4, steps=3, batch_size=2), Counting(), seed=0, run="attack")
>>> updates.accepted(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), now=1.0) is None  # 3 < 4 buffered
True
>>> updates.accepted(torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), now=2.0)
UpdateRecord(run='attack', time=2.0, samples=5, steps=3)
>>> Counting.calls
[2, 2, 2]
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import torch

from streamsim.abilities import Checkpointable, has
from streamsim.base import Learner
from streamsim.config import Buffered, PerBatch, PerSample, Replay, UpdatePolicy, WindowRetrain
from streamsim.errors import ConfigError
from streamsim.records import Record, UpdateRecord
from streamsim.seeds import child_seed, shuffled_batches, torch_generator
from streamsim.wakeups import Wakeups

#: policies that draw mini-batches themselves: they need a learner that takes a step on any batch
MINI_BATCH = ("buffered", "replay", "window-retrain")


def check_policy(policy: UpdatePolicy, learner: Learner) -> None:
    """Refuse a policy the learner cannot run, in one line naming ``learner.update``.

    A learner lists the policies it runs in ``update_policies`` (``None``: all of them).
    """
    allowed = getattr(learner, "update_policies", None)
    name = type(learner).__name__
    if allowed is not None and policy.policy not in allowed:
        raise ConfigError(f"learner.update: {name} does not run policy {policy.policy!r} (it learns per sample or per "
                          f"learn_many batch); use {' or '.join(repr(p) for p in allowed)}")
    if policy.policy == "window-retrain" and not has(learner, Checkpointable):
        raise ConfigError(f"learner.update: 'window-retrain' resets the learner to its pretrained state, but {name} "
                          "has no checkpoint_state / restore_state")


class Updates:
    """The run's update policy: :meth:`accepted` after every screened batch, :meth:`process` on the
    clock for the policies with an ``interval``. Both return an :class:`UpdateRecord` when the
    learner learned, ``None`` when the model did not change."""

    key = "updates"

    def __init__(self, config: UpdatePolicy, learner: Learner, seed: int, run: str) -> None:
        self.config = config
        self.learner = learner
        self.run = run
        self.generator = torch_generator(child_seed(seed, "updates"))
        self.interval: float | None = getattr(config, "interval", None)
        self.next_tick = 1  # the policy's clock ticks at interval, 2·interval, ...
        # The buffer (buffered), the reservoir (replay) or the window (window-retrain), and how many
        # samples were ever offered to the reservoir.
        self.x: list[torch.Tensor] = []
        self.y: list[torch.Tensor] = []
        self.seen = 0
        # window-retrain starts every retraining from here: the learner as handed over, pretrained
        self.pretrained = learner.checkpoint_state() if isinstance(config, WindowRetrain) else None

    # --- what the gate and the clock call -----------------------------------------------------------
    def accepted(self, x: torch.Tensor, y: torch.Tensor, now: float) -> UpdateRecord | None:
        """The defense accepted ``x`` (labels ``y``) at ``now``: learn now, later, or never."""
        c = self.config
        n = int(x.shape[0])
        if isinstance(c, PerBatch):
            self.learner.learn(x, y)  # the very tensors, as before policies existed (river caches by identity)
            return self._record(now, n, 1) if n else None
        if n == 0:
            return None
        if isinstance(c, PerSample):
            for i in range(n):  # the regime itself is one step per sample: no batching possible
                self.learner.learn(x[i:i + 1], y[i:i + 1])
            return self._record(now, n, n)
        if isinstance(c, Replay):
            return self._replay(x, y, now)
        self.x.append(x)
        self.y.append(y)
        if isinstance(c, WindowRetrain):
            self._trim(c.window)
            return None
        assert isinstance(c, Buffered)
        if c.every is not None and self._buffered() >= c.every:
            return self._flush(now)
        return None

    def tick(self, now: float) -> UpdateRecord | None:
        """The policy's clock struck (``interval`` policies only)."""
        self.next_tick += 1
        if isinstance(self.config, Buffered):
            return self._flush(now) if self._buffered() else None
        assert isinstance(self.config, WindowRetrain)
        return self._retrain(now) if self._buffered() else None

    def process(self, clock: Wakeups, sink: Callable[[Record], None],
                resume_at: float | None = None) -> Generator[Any, Any, None]:
        """The clock of an ``interval`` policy, as a SimPy process; ``resume_at``: continue a restored run."""
        assert self.interval is not None
        if resume_at is not None:
            yield clock.sleep_until(self.key, resume_at)
        else:
            yield clock.sleep(self.key, self.next_tick * self.interval - clock.env.now)
        while True:
            record = self.tick(clock.env.now)
            if record is not None:
                sink(record)
            yield clock.sleep(self.key, self.next_tick * self.interval - clock.env.now)

    # --- the policies -------------------------------------------------------------------------------
    def _record(self, now: float, samples: int, steps: int) -> UpdateRecord:
        return UpdateRecord(self.run, now, samples, steps)

    def _buffered(self) -> int:
        return sum(int(x.shape[0]) for x in self.x)

    def _flush(self, now: float) -> UpdateRecord:
        c = self.config
        assert isinstance(c, Buffered)
        x, y = torch.cat(self.x), torch.cat(self.y)
        self.x, self.y = [], []
        n, size = int(x.shape[0]), min(c.batch_size, int(x.shape[0]))
        # `steps` mini-batches from reshuffled passes over the buffer
        order = torch.cat([torch.randperm(n, generator=self.generator) for _ in range(-(-c.steps * size // n))])
        for s in range(c.steps):
            idx = order[s * size:(s + 1) * size]
            self.learner.learn(x[idx], y[idx])
        return self._record(now, n, c.steps)

    def _replay(self, x: torch.Tensor, y: torch.Tensor, now: float) -> UpdateRecord:
        c = self.config
        assert isinstance(c, Replay)
        n = int(x.shape[0])
        held = self._buffered()
        k = min(held, round(n * c.mix / (1 - c.mix)))
        if k:
            pick = torch.randperm(held, generator=self.generator)[:k]
            x, y = torch.cat([x, self.x[0][pick]]), torch.cat([y, self.y[0][pick]])
        self.learner.learn(x, y)
        self._reservoir(x[:n], y[:n])
        return self._record(now, n, 1)

    def _reservoir(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Algorithm R over the accepted samples: the reservoir stays a uniform sample of all of them."""
        c = self.config
        assert isinstance(c, Replay)
        if not self.x:
            self.x, self.y = [x[:0].clone()], [y[:0].clone()]
        rx, ry = self.x[0], self.y[0]
        room = max(0, c.capacity - int(rx.shape[0]))
        rx, ry = torch.cat([rx, x[:room]]), torch.cat([ry, y[:room]])
        rest = int(x.shape[0]) - min(room, int(x.shape[0]))
        if rest:
            # the t-th sample offered replaces slot r ~ U{0..t-1} when r < capacity
            t = torch.arange(self.seen + room + 1, self.seen + room + rest + 1, dtype=torch.float64)
            r = (torch.rand(rest, generator=self.generator, dtype=torch.float64) * t).long().numpy()
            src = np.arange(room, room + rest)
            hit = r < c.capacity
            # a slot drawn twice in one batch keeps the later sample, as the sequential algorithm would
            slots, last = np.unique(r[hit][::-1], return_index=True)
            chosen = torch.from_numpy(src[hit][::-1][last].copy())
            rx, ry = rx.clone(), ry.clone()
            rx[torch.from_numpy(slots)], ry[torch.from_numpy(slots)] = x[chosen], y[chosen]
        self.x, self.y = [rx], [ry]
        self.seen += int(x.shape[0])

    def _trim(self, window: int) -> None:
        x, y = torch.cat(self.x), torch.cat(self.y)
        self.x, self.y = [x[-window:]], [y[-window:]]

    def _retrain(self, now: float) -> UpdateRecord:
        c = self.config
        assert isinstance(c, WindowRetrain) and self.pretrained is not None
        x, y = self.x[0], self.y[0]
        # a copy: torch's optimizer adopts the tensors it is loaded with, and Adam updates them in place
        self.learner.restore_state(copy.deepcopy(self.pretrained))
        steps = 0
        for idx in shuffled_batches(int(x.shape[0]), c.batch_size, c.epochs, self.generator):
            self.learner.learn(x[idx], y[idx])
            steps += 1
        return self._record(now, int(x.shape[0]), steps)

    # --- checkpoints ----------------------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        held = self.x and self.y
        return {"generator": self.generator.get_state(), "next_tick": self.next_tick, "seen": self.seen,
                "x": torch.cat(self.x) if held else None, "y": torch.cat(self.y) if held else None}

    def restore_state(self, state: dict[str, Any], records: Sequence[Record]) -> None:
        self.generator.set_state(state["generator"])
        self.next_tick, self.seen = int(state["next_tick"]), int(state["seen"])
        self.x, self.y = ([state["x"]], [state["y"]]) if state["x"] is not None else ([], [])
