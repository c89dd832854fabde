"""The discrete-event core: sources → gate (screen, then learn) → records; an evaluator on a clock.

The simulator knows the protocols only — nothing about De-Pois or FGSM. It enforces the threat
model (attacks get the :class:`~streamsim.threat.TargetView` their knowledge allows) and delivers
each attacker's observations, delayed and noisy when the scenario says so.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy
import torch
from river.drift import ADWIN

from streamsim.base import Attack, Defense, Learner, Observation
from streamsim.batch import Batch
from streamsim.config import Scenario
from streamsim.errors import PluginError
from streamsim.metrics import belief_accuracy
from streamsim.records import AttackRecord, DriftAlarm, EvalRecord, Record, ScreenRecord
from streamsim.seeds import child_seed
from streamsim.sources import AttackerRuntime, CleanRuntime, SourceRuntime
from streamsim.threat import TargetView

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
        self.env = simpy.Environment()
        self.gate_queue: simpy.Store = simpy.Store(self.env)
        self.adwin = ADWIN(delta=scenario.metrics.adwin_delta)
        self.first_alarm: float | None = None
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

    # --- processes -------------------------------------------------------------------------
    def _evaluator(self) -> Generator[Any, Any, None]:
        every = self.scenario.eval_every
        k = 0
        while k * every <= self.scenario.duration + 1e-9:
            if k * every > self.env.now:
                yield self.env.timeout(k * every - self.env.now)
            for source in self.sources:
                if isinstance(source, AttackerRuntime):
                    self.sink(AttackRecord(self.run, self.env.now, source.name, self.attack_metrics(source.name)))
            correct = (self.learner.predict(self.test.x) == self.test.labels).float().mean().item()
            self.sink(EvalRecord(self.run, self.env.now, correct, len(self.test)))
            k += 1

    def _gate(self) -> Generator[Any, Any, None]:
        while True:
            batch, source = yield self.gate_queue.get()
            self.screen_and_learn(batch, source)

    def _deliver(self, delay: float, observation: Observation, attack: Attack) -> Generator[Any, Any, None]:
        yield self.env.timeout(delay)
        attack.observe(observation)

    # --- the gate --------------------------------------------------------------------------
    def screen_and_learn(self, batch: Batch, source: SourceRuntime) -> None:
        if len(batch) == 0:
            return
        predicted = self.learner.predict(batch.x)
        correct = predicted == batch.true_labels
        verdicts = self.defense.screen(batch)
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
            self.env.process(self._deliver(delay, observation, source.attack))
        else:
            source.attack.observe(observation)

    # --- attackers' own numbers -----------------------------------------------------------
    def attack_metrics(self, name: str) -> dict[str, float]:
        """An attacker source's stats, queries and samples spent, and the accuracy of its verdict beliefs."""
        source = next(s for s in self.sources if s.name == name and isinstance(s, AttackerRuntime))
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
    def run_to_end(self) -> None:
        self.env.process(self._evaluator())
        self.env.process(self._gate())
        for s in self.sources:
            self.env.process(s.process(self.env, lambda b, src: self.gate_queue.put((b, src))))
        self.env.run(until=self.scenario.duration + 1e-6)
