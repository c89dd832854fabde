"""Wake-ups a checkpoint can re-create: every process sleeps through here, which remembers when.

A SimPy process is a generator and cannot be saved. What can be saved is what each one waits for
— the time of its next wake-up — and the order in which those wake-ups were scheduled, which is
how SimPy breaks ties between events at the same time. A resumed run re-creates the processes in
that order, each sleeping until its saved time, so events fire in the same order as in the
uninterrupted run. A wake-up at an absolute time is a plain timeout where SimPy's API can
express it; :func:`timeout_at` isolates the one case where it cannot.

>>> import simpy
>>> env = simpy.Environment()
>>> clock = Wakeups(env)
>>> def nap(key, delay):
...     yield clock.sleep(key, delay)
>>> _ = env.process(nap("b", 0.3)), env.process(nap("a", 0.3)), env.process(nap("c", 0.1))
>>> env.run(until=0.05)
>>> clock.in_order()
[('c', 0.1), ('b', 0.3), ('a', 0.3)]
"""

from __future__ import annotations

import heapq
import itertools
import math

import simpy
from simpy.events import NORMAL


class Wakeups:
    """The pending wake-up of every sleeping process, by key, with SimPy's tie-breaking order."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.pending: dict[str, tuple[float, int]] = {}
        self._order = itertools.count()

    def sleep(self, key: str, delay: float) -> simpy.Event:
        """A timeout of ``delay``, remembered under ``key`` until it fires."""
        event = self.env.timeout(delay)
        self._track(key, self.env.now + delay, event)  # the time simpy.Timeout computes, to the bit
        return event

    def sleep_until(self, key: str, when: float) -> simpy.Event:
        """An event at the absolute time ``when`` (resuming a checkpoint)."""
        if when < self.env.now:
            raise ValueError(f"cannot wake {key} at {when}: the clock is already at {self.env.now}")
        event = timeout_at(self.env, when)
        self._track(key, when, event)
        return event

    def _track(self, key: str, when: float, event: simpy.Event) -> None:
        self.pending[key] = (when, next(self._order))
        event.callbacks.append(lambda _: self._fired(key, when))

    def _fired(self, key: str, when: float) -> None:
        if self.pending.get(key, (None,))[0] == when:
            del self.pending[key]

    def in_order(self) -> list[tuple[str, float]]:
        """``(key, time)`` of every pending wake-up, in the order they will fire."""
        return [(key, when) for key, (when, _) in sorted(self.pending.items(), key=lambda kv: kv[1])]


def timeout_at(env: simpy.Environment, when: float) -> simpy.Event:
    """An event that fires at the absolute time ``when``, with a timeout's priority and tie order.

    The one adapter around SimPy's internals in streamsim. SimPy's API only offers relative
    timeouts (``now + delay``), and rounding (ties to even) can make some times unreachable from
    ``now`` with any delay: from 5.9, no float delay lands on 25.8. So: a public
    ``env.timeout`` whenever a delay lands on ``when`` to the bit (neighbours of ``when − now``
    are tried), else the event is pushed on SimPy's queue exactly as ``Timeout`` would push it
    (same priority, next event id), at ``when``.

    >>> env = simpy.Environment(initial_time=5.9)
    >>> 5.9 + (25.8 - 5.9) == 25.8
    False
    >>> _ = timeout_at(env, 25.8); env.run(); env.now
    25.8
    """
    delay = when - env.now
    for _ in range(4):
        total = env.now + delay
        if total == when:
            return env.timeout(delay)
        delay = max(0.0, math.nextafter(delay, math.inf if total < when else -math.inf))
    event = simpy.Event(env)
    event._ok, event._value = True, None  # what Event.succeed sets, without scheduling it at `now`
    # SimPy's private queue and id counter: pyproject.toml bounds simpy below the next minor release for them
    heapq.heappush(env._queue, (when, NORMAL, next(env._eid), event))
    return event
