"""Update regimes: when the deployed learner learns, and on what (the scenario's ``learner.update``).

The gate screens each batch and hands what the defense accepted to the run's update policy; the
policy decides when the learner's low-level ``learn(x, y)`` is called and with which samples. One
small class per policy, all with the same two calls (:meth:`Policy.accepted` after every screened
batch, :meth:`Policy.tick` on the policy's clock) and each owning and checkpointing its buffer,
reservoir or window and its generator. Every call that changes the model is an *update*, reported
as an :class:`~streamsim.core.records.UpdateRecord`: the only moments an attacker's queries can see the
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
>>> from streamsim.scenario.config import Buffered
>>> class Counting:
...     calls = []
...     def learn(self, x, y): self.calls.append(len(x))
>>> updates = build_policy(Buffered(policy="buffered", every=4, steps=3, batch_size=2), Counting(), seed=0, run="attack")
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

from streamsim.core.abilities import Checkpointable, has
from streamsim.core.base import Learner
from streamsim.core.errors import ConfigError
from streamsim.core.records import Record, UpdateRecord
from streamsim.scenario.config import Buffered, PerBatch, PerSample, Replay, UpdatePolicy, WindowRetrain
from streamsim.seeds import child_seed, shuffled_batches, torch_generator
from streamsim.simulation.wakeups import Wakeups


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


class Policy:
    """What every update policy shares: the learner, a generator, the samples it holds, and the
    clock of the policies with an ``interval``. Subclasses define :meth:`accepted` (and :meth:`tick`).

    Both return an :class:`UpdateRecord` when the learner learned, ``None`` when the model did not change.
    """

    key = "updates"
    interval: float | None = None

    def __init__(self, config: Any, learner: Learner, seed: int, run: str) -> None:
        self.config = config
        self.learner = learner
        self.run = run
        self.generator = torch_generator(child_seed(seed, "updates"))
        self.next_tick = 1  # an interval policy's clock strikes at interval, 2·interval, ...
        self.x: list[torch.Tensor] = []  # the samples it holds: a buffer, a reservoir or a window
        self.y: list[torch.Tensor] = []
        self.seen = 0  # accepted samples ever offered to it

    def accepted(self, x: torch.Tensor, y: torch.Tensor, now: float) -> UpdateRecord | None:
        """The defense accepted ``x`` (labels ``y``) at ``now``: learn now, later, or never."""
        raise NotImplementedError

    def tick(self, now: float) -> UpdateRecord | None:
        """The policy's clock struck (``interval`` policies only)."""
        raise NotImplementedError

    def process(self, clock: Wakeups, sink: Callable[[Record], None],
                resume_at: float | None = None) -> Generator[Any, Any, None]:
        """The clock of an ``interval`` policy, as a SimPy process; ``resume_at``: continue a restored run."""
        assert self.interval is not None
        if resume_at is not None:
            yield clock.sleep_until(self.key, resume_at)
        else:
            yield clock.sleep(self.key, self.next_tick * self.interval - clock.env.now)
        while True:
            self.next_tick += 1
            record = self.tick(clock.env.now)
            if record is not None:
                sink(record)
            yield clock.sleep(self.key, self.next_tick * self.interval - clock.env.now)

    def _record(self, now: float, samples: int, steps: int) -> UpdateRecord:
        return UpdateRecord(self.run, now, samples, steps)

    def _held(self) -> int:
        return sum(int(x.shape[0]) for x in self.x)

    def _hold(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x.append(x)
        self.y.append(y)
        self.seen += int(x.shape[0])

    def checkpoint_state(self) -> dict[str, Any]:
        held = bool(self.x)
        return {"generator": self.generator.get_state(), "next_tick": self.next_tick, "seen": self.seen,
                "x": torch.cat(self.x) if held else None, "y": torch.cat(self.y) if held else None}

    def restore_state(self, state: dict[str, Any], records: Sequence[Record]) -> None:
        self.generator.set_state(state["generator"])
        self.next_tick, self.seen = int(state["next_tick"]), int(state["seen"])
        self.x, self.y = ([state["x"]], [state["y"]]) if state["x"] is not None else ([], [])


class PerBatchPolicy(Policy):
    """One ``learn`` call on each batch's accepted samples (the behaviour before policies existed)."""

    def accepted(self, x: torch.Tensor, y: torch.Tensor, now: float) -> UpdateRecord | None:
        self.learner.learn(x, y)  # the very tensors, empty ones too (river caches rows by tensor identity)
        return self._record(now, int(x.shape[0]), 1) if x.shape[0] else None


class PerSamplePolicy(Policy):
    """One ``learn`` call per accepted sample, in arrival order."""

    def accepted(self, x: torch.Tensor, y: torch.Tensor, now: float) -> UpdateRecord | None:
        n = int(x.shape[0])
        for i in range(n):  # the regime itself is one step per sample: nothing to batch
            self.learner.learn(x[i:i + 1], y[i:i + 1])
        return self._record(now, n, n) if n else None


class BufferedPolicy(Policy):
    """Hold the accepted samples; when ``every`` are held (or the ``interval`` clock strikes with any
    held), take ``steps`` steps on shuffled mini-batches of them and empty the buffer."""

    config: Buffered

    def __init__(self, config: Buffered, learner: Learner, seed: int, run: str) -> None:
        super().__init__(config, learner, seed, run)
        self.interval = config.interval

    def accepted(self, x: torch.Tensor, y: torch.Tensor, now: float) -> UpdateRecord | None:
        if x.shape[0] == 0:
            return None
        self._hold(x, y)
        every = self.config.every
        return self._flush(now) if every is not None and self._held() >= every else None

    def tick(self, now: float) -> UpdateRecord | None:
        return self._flush(now) if self.x else None

    def _flush(self, now: float) -> UpdateRecord:
        c = self.config
        x, y = torch.cat(self.x), torch.cat(self.y)
        self.x, self.y = [], []
        n, size = int(x.shape[0]), min(c.batch_size, int(x.shape[0]))
        # `steps` mini-batches from reshuffled passes over the buffer
        order = torch.cat([torch.randperm(n, generator=self.generator) for _ in range(-(-c.steps * size // n))])
        for s in range(c.steps):
            idx = order[s * size:(s + 1) * size]
            self.learner.learn(x[idx], y[idx])
        return self._record(now, n, c.steps)


class ReplayPolicy(Policy):
    """One step on each accepted batch mixed with samples from a reservoir of earlier accepted ones.

    The reservoir follows Vitter's algorithm R, so it stays a uniform sample of everything accepted
    so far; ``mix`` is the share of the step's batch it supplies (as far as it holds enough).
    """

    config: Replay

    def accepted(self, x: torch.Tensor, y: torch.Tensor, now: float) -> UpdateRecord | None:
        n = int(x.shape[0])
        if n == 0:
            return None  # nothing accepted, no step: the reservoir is learned only beside new data
        held = self._held()
        k = min(held, round(n * self.config.mix / (1 - self.config.mix)))
        if k:
            pick = torch.randperm(held, generator=self.generator)[:k]
            self.learner.learn(torch.cat([x, self.x[0][pick]]), torch.cat([y, self.y[0][pick]]))
        else:
            self.learner.learn(x, y)
        self._offer(x, y)
        return self._record(now, n, 1)

    def _offer(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Algorithm R over the accepted samples, a batch at a time."""
        capacity, n = self.config.capacity, int(x.shape[0])
        rx, ry = (self.x[0], self.y[0]) if self.x else (x[:0], y[:0])
        room = min(n, max(0, capacity - int(rx.shape[0])))
        rx, ry = torch.cat([rx, x[:room]]), torch.cat([ry, y[:room]])
        rest = n - room
        if rest:
            # the t-th sample offered replaces slot r ~ U{0..t-1} when r < capacity
            t = torch.arange(self.seen + room + 1, self.seen + n + 1, dtype=torch.float64)
            r = (torch.rand(rest, generator=self.generator, dtype=torch.float64) * t).long().numpy()
            src = np.arange(room, n)
            hit = r < capacity
            # a slot drawn twice in one batch keeps the later sample, as the sequential algorithm would
            slots, last = np.unique(r[hit][::-1], return_index=True)
            chosen = torch.from_numpy(src[hit][::-1][last].copy())
            rx[torch.from_numpy(slots)], ry[torch.from_numpy(slots)] = x[chosen], y[chosen]
        self.x, self.y = [rx], [ry]
        self.seen += n


class WindowRetrainPolicy(Policy):
    """Keep the last ``window`` accepted samples; every ``interval``, reset the learner to its
    pretrained state and retrain it on them for ``epochs`` shuffled epochs."""

    config: WindowRetrain

    def __init__(self, config: WindowRetrain, learner: Learner, seed: int, run: str) -> None:
        super().__init__(config, learner, seed, run)
        self.interval = config.interval
        # every retraining starts from here: the learner as handed over, pretrained (not run state:
        # a resumed run's policy is built over the same pretrained learner)
        self.pretrained = learner.checkpoint_state()

    def accepted(self, x: torch.Tensor, y: torch.Tensor, now: float) -> UpdateRecord | None:
        if x.shape[0]:
            self._hold(x, y)
            window = self.config.window
            self.x, self.y = [torch.cat(self.x)[-window:]], [torch.cat(self.y)[-window:]]
        return None

    def tick(self, now: float) -> UpdateRecord | None:
        if not self.x:
            return None
        c, x, y = self.config, self.x[0], self.y[0]
        # a copy: torch's optimizer adopts the tensors it is loaded with, and Adam updates them in place
        self.learner.restore_state(copy.deepcopy(self.pretrained))
        steps = 0
        for idx in shuffled_batches(int(x.shape[0]), c.batch_size, c.epochs, self.generator):
            self.learner.learn(x[idx], y[idx])
            steps += 1
        return self._record(now, int(x.shape[0]), steps)


POLICIES: dict[type, type[Policy]] = {PerBatch: PerBatchPolicy, PerSample: PerSamplePolicy, Buffered: BufferedPolicy,
                                      Replay: ReplayPolicy, WindowRetrain: WindowRetrainPolicy}


def build_policy(config: UpdatePolicy, learner: Learner, seed: int, run: str) -> Policy:
    """The policy part that ``learner.update`` names, over ``learner``, seeded from the run's ``seed``."""
    return POLICIES[type(config)](config, learner, seed, run)
