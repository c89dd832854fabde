"""The discrete-event core: sources → gate (screen, then learn) → records; an evaluator on a clock.

The simulator knows the protocols only — nothing about De-Pois or FGSM. It enforces the threat
model (attacks get the :class:`~streamsim.simulation.threat.TargetView` their knowledge allows) and delivers
each attacker's observations, delayed and noisy when the scenario says so. The work is done by
:mod:`streamsim.simulation.parts`, each owning its state; this class wires them to SimPy processes, and its
checkpoint is the dict of their states.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from functools import partial
from typing import Any

import simpy

from streamsim.artifacts.checkpoint import CheckpointError
from streamsim.core.abilities import HarmProbes, has
from streamsim.core.base import Attack, Defense, Learner
from streamsim.core.batch import Batch
from streamsim.core.errors import ConfigError
from streamsim.core.probes import Probe
from streamsim.core.records import AttackerSummary, Record
from streamsim.core.space import DataSpace
from streamsim.data.splits import CutData
from streamsim.scenario.config import Scenario
from streamsim.seeds import child_seed
from streamsim.simulation.parts import Part
from streamsim.simulation.parts.beliefs import BeliefScorer
from streamsim.simulation.parts.drift_detector import DriftWatch
from streamsim.simulation.parts.evaluator import Evaluator, held_out
from streamsim.simulation.parts.feedback import FeedbackChannel
from streamsim.simulation.parts.gate import Gate
from streamsim.simulation.parts.kept_examples import KeptExamples
from streamsim.simulation.parts.updates import build_policy
from streamsim.simulation.sources import AttackerRuntime, CleanRuntime, SourceRuntime
from streamsim.simulation.threat import TargetView
from streamsim.simulation.wakeups import Wakeups

Sink = Callable[[Record], None]


def harm_probes(attacks: dict[str, Attack], test: Batch, space: DataSpace) -> dict[str, dict[str, Probe]]:
    """The harm probes each attacker source defines (:class:`~streamsim.core.abilities.HarmProbes`) on
    the held-out evaluation split ``test``, by source then name."""
    return {source: attack.harm_probes(test, space) for source, attack in attacks.items() if has(attack, HarmProbes)}


def merge_probes(by_source: dict[str, dict[str, Probe]]) -> dict[str, Probe]:
    """One table of probes by name: a name is one metric of the run, so two sources defining it are refused."""
    probes: dict[str, Probe] = {}
    owner: dict[str, str] = {}
    for source, mine in by_source.items():
        for name, probe in mine.items():
            if name in probes:
                raise ConfigError(f"attackers {owner[name]!r} and {source!r} both define the harm probe {name!r}; "
                                  "a run measures each probe once")
            probes[name], owner[name] = probe, source
    return probes


class Simulation:
    """One run of a scenario over already-fitted components.

    ``attacks`` maps attacker-source names to prepared attacks with their views; pass an empty
    dict for the no-attack baseline (clean sources are seeded by name, so they repeat exactly).
    ``probes`` are the harm probes the evaluator measures (default: those of ``attacks``, see
    :func:`harm_probes`); the baseline is handed the attacked run's, so it measures the very same.
    """

    def __init__(self, scenario: Scenario, splits: dict[str, Batch], learner: Learner, defense: Defense,
                 attacks: dict[str, tuple[Attack, TargetView]], sink: Sink, run: str = "attack",
                 data: CutData | None = None, probes: dict[str, dict[str, Probe]] | None = None) -> None:
        self.scenario, self.sink, self.run, seed = scenario, sink, run, scenario.seed
        data = data or CutData(splits)
        self.sources: list[SourceRuntime] = [
            CleanRuntime(c, splits["stream"], child_seed(seed, f"source:{c.name}"), scenario.duration, data.ordered,
                         data.stream_changes, sink, run) for c in scenario.clean]
        self.sources += [AttackerRuntime(a, splits[a.pool], child_seed(seed, f"attack:{a.name}"), scenario.duration,
                                         *attacks[a.name], data.space)
                         for a in scenario.attackers if a.name in attacks]
        self.attackers = [s for s in self.sources if isinstance(s, AttackerRuntime)]
        self.updates = build_policy(scenario.learner.update, learner, seed, run)
        self.gate = Gate(learner, defense, run, self.updates)
        self.feedback = FeedbackChannel(self.attackers, seed)
        self.beliefs = BeliefScorer(scenario.metrics.window)
        self.drift = DriftWatch(scenario.metrics.adwin_delta, run, sink)
        self.examples = KeptExamples(run, sink)
        test = held_out(splits["test"], scenario.data.eval_size, seed)
        if probes is None:
            probes = harm_probes({name: a for name, (a, _) in attacks.items()}, test, data.space)
        self.evaluator = Evaluator(test, learner, scenario.eval_every, scenario.duration, run, sink,
                                   self.attacker_numbers, merge_probes(probes), data.space.n_classes)
        self.clock = Wakeups(simpy.Environment())
        self._resume: list[tuple[str, float]] | None = None  # pending wake-ups of a restored run

    @property
    def parts(self) -> dict[str, Part]:
        return {"gate": self.gate, "updates": self.updates, "feedback": self.feedback, "evaluator": self.evaluator,
                "drift": self.drift, "beliefs": self.beliefs, "examples": self.examples}

    def attacker_numbers(self) -> dict[str, dict[str, float]]:
        """Each attacker source's queries and samples spent, its stats, and how good its verdict beliefs are."""
        return {a.name: {"queries_used": a.view.queries_used, "submitted": a.sent, **a.attack.stats(),
                         **self.beliefs.score(a.name, a.attack)} for a in self.attackers}

    def _screen(self, batch: Batch, source: SourceRuntime) -> None:
        now = self.clock.env.now
        screened = self.gate.screen(batch, source.name, source.kind, now)
        if screened is None:
            return
        self.sink(screened.record)
        if screened.update is not None:
            self.sink(screened.update)
        if isinstance(source, AttackerRuntime):
            self.examples.keep(batch, screened.accept, source.pool, now)
            self.beliefs.note(source.name, now, screened.accept)
            self.feedback.send(batch, screened.accept, source.name, self.clock)
        else:
            self.drift.watch(screened.record.correct, now)

    def _gate(self, queue: simpy.Store) -> Generator[Any, Any, None]:
        while True:
            batch, source = yield queue.get()
            self._screen(batch, source)

    def _start(self) -> None:
        env = self.clock.env
        self.queue = simpy.Store(env)
        submit = lambda b, src: self.queue.put((b, src))  # noqa: E731
        starts = {self.evaluator.key: partial(self.evaluator.process, self.clock),
                  **{f"source:{s.name}": partial(s.process, env, submit, self.clock) for s in self.sources}}
        timed = self.updates.interval is not None
        if timed:
            starts[self.updates.key] = partial(self.updates.process, self.clock, self.sink)
        if self._resume is None:  # a fresh run: the evaluator, the update clock, the gate, then the sources
            env.process(starts.pop(self.evaluator.key)())
            if timed:
                env.process(starts.pop(self.updates.key)())
            env.process(self._gate(self.queue))
            for start in starts.values():
                env.process(start())
            return
        # Resuming: the gate waits on its queue; every other process is re-created in the order its
        # pending wake-up was scheduled, so same-time events keep their order.
        env.process(self._gate(self.queue))
        starts.update(self.feedback.resumers(self.clock))
        for key, when in self._resume:
            if key not in starts:
                raise CheckpointError(f"checkpoint names an unknown process {key!r}")
            env.process(starts[key](resume_at=when))
        self._resume = None

    def run_to_end(self, checkpoint_every: float | None = None,
                   on_checkpoint: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Run to the scenario's end; with ``checkpoint_every``, hand :meth:`checkpoint_state` to
        ``on_checkpoint`` at every multiple of it (the state just before that time)."""
        self._start()
        env, end = self.clock.env, self.scenario.duration + 1e-6
        if checkpoint_every is not None and on_checkpoint is not None:
            k = math.floor(env.now / checkpoint_every) + 1
            while k * checkpoint_every < end:
                if k * checkpoint_every > env.now:
                    env.run(until=k * checkpoint_every)
                    on_checkpoint(self.checkpoint_state())
                k += 1
        env.run(until=end)

    def finish(self) -> None:
        """Emit each attacker's :class:`AttackerSummary`: its final numbers and what ``assess`` measures on the held-out split."""
        numbers, test = self.attacker_numbers(), self.evaluator.test
        for a in self.attackers:
            assessed = a.attack.assess(test.x, test.labels, self.gate.learner, self.gate.defense)
            self.sink(AttackerSummary(self.run, a.name, a.attack.knowledge, {**numbers[a.name], **assessed}))

    def checkpoint_state(self) -> dict[str, Any]:
        """The whole simulation between two events, as a state tree (see :mod:`streamsim.artifacts.checkpoint`)."""
        if self.queue.items:
            raise CheckpointError("a checkpoint was taken with batches waiting at the gate")
        return {"time": self.clock.env.now, "wakes": [[key, when] for key, when in self.clock.in_order()],
                "sources": {s.name: s.checkpoint_state() for s in self.sources},
                **{name: part.checkpoint_state() for name, part in self.parts.items()}}

    def restore_state(self, state: dict[str, Any], records: Sequence[Record] = ()) -> None:
        """Continue from :meth:`checkpoint_state` and the records emitted up to it: call before
        :meth:`run_to_end`, on a simulation built from the same scenario over components set up as at the start."""
        try:
            self.clock = Wakeups(simpy.Environment(initial_time=float(state["time"])))
            self._resume = [(str(key), float(when)) for key, when in state["wakes"]]
            for s in self.sources:
                s.restore_state(state["sources"][s.name])
            mine = [r for r in records if r.run == self.run]
            for name, part in self.parts.items():
                part.restore_state(state[name], mine)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
            raise CheckpointError(f"the checkpoint does not fit this scenario's simulation ({type(e).__name__}: {e})") from None
