"""The discrete-event core: sources → gate (screen, then learn) → records; an evaluator on a clock.

The simulator knows the protocols only — nothing about De-Pois or FGSM. It enforces the threat
model (attacks get the :class:`~streamsim.threat.TargetView` their knowledge allows) and delivers
each attacker's observations, delayed and noisy when the scenario says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy
import torch
from river.drift import ADWIN

from streamsim.base import Attack, Defense, Learner, Observation
from streamsim.batch import Batch
from streamsim.checkpoint import CheckpointError
from streamsim.config import Scenario
from streamsim.errors import PluginError
from streamsim.metrics import belief_accuracy
from streamsim.records import AttackRecord, DriftAlarm, EvalRecord, Record, ScreenRecord
from streamsim.seeds import child_seed
from streamsim.sources import AttackerRuntime, CleanRuntime, SourceRuntime
from streamsim.threat import TargetView
from streamsim.wakeups import Wakeups

Sink = Callable[[Record], None]
EXAMPLES_KEPT = 16  # poisons kept with their verdicts, for the example grid of `streamsim report`


class Simulation:
    """One run of a scenario over already-fitted components.

    ``attacks`` maps attacker-source names to prepared attacks with their views; pass an empty
    dict for the no-attack baseline (clean sources are seeded by name, so they repeat exactly).
    """

    def __init__(self, scenario: Scenario, splits: dict[str, Batch], learner: Learner, defense: Defense,
                 attacks: dict[str, tuple[Attack, TargetView]], sink: Sink, run: str = "attack") -> None:
        self.scenario = scenario
        self.learner = learner
        self.defense = defense
        self.sink = sink
        self.run = run
        self._new_clock(0.0)
        self.adwin = ADWIN(delta=scenario.metrics.adwin_delta)
        self.clean_errors: list[int] = []  # every clean error ADWIN saw, so a resumed run can rebuild it
        self.first_alarm: float | None = None
        self.next_eval = 0  # index of the evaluator's next tick
        self.in_flight: dict[str, tuple[Observation, str]] = {}  # delayed observations, by wake-up key
        self._delivered = 0
        self._resume_wakes: list[tuple[str, float]] | None = None
        self.examples: list[tuple[Batch, torch.Tensor]] = []  # the first poisons and their verdicts
        self.seed = scenario.seed
        test = splits["test"]
        if scenario.data.eval_size and scenario.data.eval_size < len(test):
            pick = np.random.default_rng(child_seed(self.seed, "eval")).choice(len(test), scenario.data.eval_size, replace=False)
            test = test.subset(torch.from_numpy(np.sort(pick)))
        self.test = test
        self.sources: list[SourceRuntime] = [
            CleanRuntime(c, splits["stream"], child_seed(self.seed, f"source:{c.name}"), scenario.duration)
            for c in scenario.clean
        ]
        self.feedback_rng: dict[str, np.random.Generator] = {}
        # The true verdicts on each attacker's batches, by submission time: for scoring what the
        # attack believes (Attack.verdict_beliefs). Never handed to the attack.
        self.truth: dict[str, dict[float, torch.Tensor]] = {}
        for a in scenario.attackers:
            if a.name not in attacks:
                continue
            attack, view = attacks[a.name]
            self.sources.append(AttackerRuntime(a, splits[a.pool], child_seed(self.seed, f"attack:{a.name}"),
                                                scenario.duration, attack, view))
            self.feedback_rng[a.name] = np.random.default_rng(child_seed(self.seed, f"feedback:{a.name}"))

    def _new_clock(self, now: float) -> None:
        self.env = simpy.Environment(initial_time=now)
        self.gate_queue: simpy.Store = simpy.Store(self.env)
        self.clock = Wakeups(self.env)

    # --- processes -------------------------------------------------------------------------
    def _evaluator(self, resume_at: float | None = None) -> Generator[Any, Any, None]:
        every = self.scenario.eval_every
        if resume_at is not None:
            yield self.clock.sleep_until("eval", resume_at)
            self._evaluate()
        while self.next_eval * every <= self.scenario.duration + 1e-9:
            if self.next_eval * every > self.env.now:
                yield self.clock.sleep("eval", self.next_eval * every - self.env.now)
            self._evaluate()

    def _evaluate(self) -> None:
        for source in self.sources:
            if isinstance(source, AttackerRuntime):
                self.sink(AttackRecord(self.run, self.env.now, source.name, self.attack_metrics(source.name)))
        correct = (self.learner.predict(self.test.x) == self.test.labels).float().mean().item()
        self.sink(EvalRecord(self.run, self.env.now, correct, len(self.test)))
        self.next_eval += 1

    def _gate(self) -> Generator[Any, Any, None]:
        while True:
            batch, source = yield self.gate_queue.get()
            self.screen_and_learn(batch, source)

    def _deliver(self, key: str, delay: float | None = None, at: float | None = None) -> Generator[Any, Any, None]:
        yield self.clock.sleep(key, delay) if at is None else self.clock.sleep_until(key, at)
        observation, name = self.in_flight.pop(key)
        self._attacker(name).attack.observe(observation)

    def _attacker(self, name: str) -> AttackerRuntime:
        return next(s for s in self._attackers() if s.name == name)

    # --- the gate --------------------------------------------------------------------------
    def screen_and_learn(self, batch: Batch, source: SourceRuntime) -> None:
        if len(batch) == 0:
            return
        predicted = self.learner.predict(batch.x)
        correct = predicted == batch.true_labels
        started = time.perf_counter()
        verdicts = self.defense.screen(batch)
        screen_seconds = time.perf_counter() - started
        if len(verdicts) != len(batch):
            raise PluginError(f"defense {type(self.defense).__name__}.screen returned {len(verdicts)} verdicts for {len(batch)} samples")
        accept = verdicts.accept
        accepted = batch.subset(accept)
        self.learner.learn(accepted.x, accepted.labels)
        self.defense.after_learn(accepted)

        poison = batch.is_poison
        try:
            boundary: float | None = float(self.defense.boundary)
        except NotImplementedError:
            boundary = None
        record = ScreenRecord(
            run=self.run, time=self.env.now, source=source.name, kind=source.kind, n=len(batch),
            n_poison=int(poison.sum()), accepted=int(accept.sum()),
            rejected_poison=int((poison & ~accept).sum()), accepted_poison=int((poison & accept).sum()),
            accepted_poison_correct=int((poison & accept & correct).sum()),
            rejected_clean=int((~poison & ~accept).sum()),
            prequential_errors=int((~correct).sum()), boundary=boundary,
            scores=verdicts.score.detach().numpy().astype(np.float32), is_poison=poison.numpy().copy(), accept=accept.numpy().copy(),
            labels=batch.labels.numpy().copy(), screen_seconds=screen_seconds,
        )
        self.sink(record)
        kept = sum(len(b) for b, _ in self.examples)
        if record.n_poison and kept < EXAMPLES_KEPT:
            pick = torch.nonzero(poison).flatten()[: EXAMPLES_KEPT - kept]
            self.examples.append((batch.subset(pick), accept[pick].clone()))
        if source.kind == "clean":
            self._watch_drift(~correct)
        else:
            self.truth.setdefault(source.name, {})[self.env.now] = accept.clone()
            self._send_observation(batch, accept, source)

    def _watch_drift(self, errors: torch.Tensor) -> None:
        # ADWIN is sequential by nature: it must see each error in order.
        for e in errors.tolist():
            self.clean_errors.append(int(e))
            self.adwin.update(float(e))
            if self.adwin.drift_detected:
                if self.first_alarm is None:
                    self.first_alarm = self.env.now
                self.sink(DriftAlarm(self.run, self.env.now))

    def _send_observation(self, batch: Batch, accept: torch.Tensor, source: SourceRuntime) -> None:
        assert isinstance(source, AttackerRuntime)
        cfg = source.config
        seen: torch.Tensor | None = None
        delay = 0.0
        if source.view.sees_verdicts:
            seen = accept.clone()
            if cfg.feedback_flip > 0:
                flips = self.feedback_rng[source.name].random(len(batch)) < cfg.feedback_flip
                seen ^= torch.from_numpy(flips)
            delay = cfg.feedback_delay
        observation = Observation(time=self.env.now + delay, submitted_at=self.env.now, batch=batch, accepted=seen)
        if delay > 0:
            key = f"deliver:{self._delivered}"
            self._delivered += 1
            self.in_flight[key] = (observation, source.name)
            self.env.process(self._deliver(key, delay))
        else:
            source.attack.observe(observation)

    # --- attackers' own numbers -----------------------------------------------------------
    def attack_metrics(self, name: str) -> dict[str, float]:
        """An attacker source's stats, queries and samples spent, and the accuracy of its verdict beliefs."""
        source = self._attacker(name)
        values = {"queries_used": float(source.view.queries_used), "submitted": float(source.sent),
                  **source.attack.stats()}
        try:
            beliefs = source.attack.verdict_beliefs()
        except NotImplementedError:
            return values
        truth = self.truth.get(name, {})
        for kind, believed in beliefs.items():
            whole, recent = belief_accuracy(believed, truth), belief_accuracy(believed, truth, self.scenario.metrics.window)
            values.update({f"{kind}_accuracy": whole.accuracy, f"{kind}_balanced_accuracy": whole.balanced,
                           f"{kind}_chance": whole.chance, f"{kind}_n": whole.n,
                           f"{kind}_accuracy_window": recent.accuracy, f"{kind}_balanced_accuracy_window": recent.balanced})
        return values

    # --- running ---------------------------------------------------------------------------
    def _start(self) -> None:
        submit = lambda b, src: self.gate_queue.put((b, src))  # noqa: E731
        if self._resume_wakes is None:
            self.env.process(self._evaluator())
            self.env.process(self._gate())
            for s in self.sources:
                self.env.process(s.process(self.env, submit, self.clock))
            return
        # Resuming: the gate waits on its queue; every other process is re-created in the order its
        # pending wake-up was scheduled, so same-time events keep their order.
        self.env.process(self._gate())
        sources = {f"source:{s.name}": s for s in self.sources}
        for key, when in self._resume_wakes:
            if key == "eval":
                self.env.process(self._evaluator(resume_at=when))
            elif key in sources:
                self.env.process(sources[key].process(self.env, submit, self.clock, resume_at=when))
            elif key in self.in_flight:
                self.env.process(self._deliver(key, at=when))
            else:
                raise CheckpointError(f"checkpoint names an unknown process {key!r}")
        self._resume_wakes = None

    def run_to_end(self, checkpoint_every: float | None = None,
                   on_checkpoint: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Run to the scenario's end; with ``checkpoint_every``, hand :meth:`checkpoint_state` to
        ``on_checkpoint`` at every multiple of it (the state just before that time)."""
        self._start()
        end = self.scenario.duration + 1e-6
        if checkpoint_every is not None and on_checkpoint is not None:
            k = math.floor(self.env.now / checkpoint_every) + 1
            while k * checkpoint_every < end:
                if k * checkpoint_every > self.env.now:
                    self.env.run(until=k * checkpoint_every)
                    on_checkpoint(self.checkpoint_state())
                k += 1
        self.env.run(until=end)

    # --- checkpoints -----------------------------------------------------------------------
    def _attackers(self) -> list[AttackerRuntime]:
        return [s for s in self.sources if isinstance(s, AttackerRuntime)]

    def checkpoint_state(self) -> dict[str, Any]:
        """The whole simulation between two events, as a state tree (see :mod:`streamsim.checkpoint`)."""
        if self.gate_queue.items:
            raise CheckpointError("a checkpoint was taken with batches waiting at the gate")
        return {
            "time": self.env.now,
            "wakes": [[key, when] for key, when in self.clock.in_order()],
            "next_eval": self.next_eval,
            "sources": {s.name: s.checkpoint_state() for s in self.sources},
            "feedback_rng": {name: rng.bit_generator.state for name, rng in self.feedback_rng.items()},
            "queries_used": {s.name: s.view.queries_used for s in self._attackers()},
            "in_flight": {key: {"source": name, "time": o.time, "submitted_at": o.submitted_at,
                                "batch": o.batch.checkpoint_state(), "accepted": o.accepted}
                          for key, (o, name) in self.in_flight.items()},
            "delivered": self._delivered,
            "truth": {name: [{"time": t, "accept": a} for t, a in by_time.items()] for name, by_time in self.truth.items()},
            "examples": [{"batch": b.checkpoint_state(), "accept": a} for b, a in self.examples],
            "clean_errors": torch.tensor(self.clean_errors, dtype=torch.uint8),
            "first_alarm": self.first_alarm,
            "learner": _component_state(self.learner, "learner"),
            "defense": _component_state(self.defense, "defense"),
            "attacks": {s.name: _component_state(s.attack, f"attack of {s.name}") for s in self._attackers()},
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`checkpoint_state`: call before :meth:`run_to_end`, on a simulation built
        from the same scenario over components set up as at the start."""
        try:
            self._new_clock(float(state["time"]))
            self._resume_wakes = [(str(key), float(when)) for key, when in state["wakes"]]
            self.next_eval = int(state["next_eval"])
            for s in self.sources:
                s.restore_state(state["sources"][s.name])
            for name, rng_state in state["feedback_rng"].items():
                self.feedback_rng[name].bit_generator.state = rng_state
            for s in self._attackers():
                s.view.queries_used = int(state["queries_used"][s.name])
            self.in_flight = {key: (Observation(float(o["time"]), float(o["submitted_at"]), Batch.from_state(o["batch"]),
                                                o["accepted"]), o["source"]) for key, o in state["in_flight"].items()}
            self._delivered = int(state["delivered"])
            self.truth = {name: {float(e["time"]): e["accept"] for e in entries} for name, entries in state["truth"].items()}
            self.examples = [(Batch.from_state(e["batch"]), e["accept"]) for e in state["examples"]]
            self.clean_errors = [int(e) for e in state["clean_errors"].tolist()]
            self.adwin = ADWIN(delta=self.scenario.metrics.adwin_delta)
            for e in self.clean_errors:  # ADWIN is a Python object: rebuilt from the errors it saw
                self.adwin.update(float(e))
            self.first_alarm = state["first_alarm"]
            self.learner.restore_state(state["learner"])
            self.defense.restore_state(state["defense"])
            for s in self._attackers():
                s.attack.restore_state(state["attacks"][s.name])
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
            raise CheckpointError(f"the checkpoint does not fit this scenario's simulation ({type(e).__name__}: {e})") from None


def _component_state(component: Any, role: str) -> dict[str, Any]:
    try:
        return component.checkpoint_state()
    except NotImplementedError as e:
        raise PluginError(f"{role} {type(component).__name__} cannot be checkpointed: {e}") from None
