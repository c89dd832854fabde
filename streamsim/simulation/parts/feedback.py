"""The feedback channel: what each attacker hears back after its batches went through the gate."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from streamsim.core.base import Observation
from streamsim.core.batch import Batch
from streamsim.core.records import Record
from streamsim.seeds import child_seed
from streamsim.simulation.parts import component_state
from streamsim.simulation.threat import hears_processed, restore_queries
from streamsim.simulation.wakeups import Wakeups

if TYPE_CHECKING:  # annotations only: the runtime comes from the simulator
    from streamsim.simulation.sources import AttackerRuntime


class FeedbackChannel:
    """Observations to the attacks, each delivered ``feedback_delay`` after its batch was screened
    (held in flight until then): verdicts when the knowledge allows, flipped with probability
    ``feedback_flip``; otherwise only the news that the batch was processed — withheld when the
    source sets ``announce_processed = false`` (see :mod:`streamsim.simulation.threat`).

    Owns the attacker side of a checkpoint: the flip RNGs, observations in flight, the queries
    each view spent, and the attacks' own states.
    """

    def __init__(self, attackers: Sequence[AttackerRuntime], seed: int) -> None:
        self.attackers = {a.name: a for a in attackers}
        self.rng = {name: np.random.default_rng(child_seed(seed, f"feedback:{name}")) for name in self.attackers}
        self.in_flight: dict[str, tuple[Observation, str]] = {}  # delayed observations, by wake-up key
        self.sent = 0  # delayed observations ever sent: names the next one's wake-up key

    def send(self, batch: Batch, accept: torch.Tensor, source: str, clock: Wakeups) -> None:
        """Tell ``source`` how its batch fared — now, or through a delivery process when delayed."""
        attacker = self.attackers[source]
        now = clock.env.now
        seen: torch.Tensor | None = None
        if attacker.view.sees_verdicts:
            seen = accept.clone()
            if attacker.config.feedback_flip > 0:
                seen ^= torch.from_numpy(self.rng[source].random(len(batch)) < attacker.config.feedback_flip)
        elif not hears_processed(attacker.view.knowledge, attacker.config.announce_processed):
            return  # the deployment does not say when it processed a submission
        delay = attacker.config.feedback_delay
        observation = Observation(time=now + delay, submitted_at=now, batch=batch, accepted=seen)
        if delay <= 0:
            attacker.attack.observe(observation)
            return
        key = f"deliver:{self.sent}"
        self.sent += 1
        self.in_flight[key] = (observation, source)
        clock.env.process(self.deliver(clock, key, delay=delay))

    def deliver(self, clock: Wakeups, key: str, delay: float = 0.0,
                resume_at: float | None = None) -> Generator[Any, Any, None]:
        """A delivery process: sleep ``delay`` (or until ``resume_at``), then hand the observation over."""
        yield clock.sleep(key, delay) if resume_at is None else clock.sleep_until(key, resume_at)
        observation, source = self.in_flight.pop(key)
        self.attackers[source].attack.observe(observation)

    def resumers(self, clock: Wakeups) -> dict[str, Callable[..., Generator[Any, Any, None]]]:
        """The delivery processes a restored channel must re-create, by wake-up key (call with ``resume_at``)."""
        return {key: partial(self.deliver, clock, key) for key in self.in_flight}

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "rng": {name: rng.bit_generator.state for name, rng in self.rng.items()},
            "queries_used": {name: a.view.queries_used for name, a in self.attackers.items()},
            "in_flight": {key: {"source": name, "time": o.time, "submitted_at": o.submitted_at,
                                "batch": o.batch.checkpoint_state(), "accepted": o.accepted}
                          for key, (o, name) in self.in_flight.items()},
            "sent": self.sent,
            "attacks": {name: component_state(a.attack, f"attack of {name}") for name, a in self.attackers.items()},
        }

    def restore_state(self, state: dict[str, Any], records: Sequence[Record]) -> None:
        for name, attacker in self.attackers.items():
            self.rng[name].bit_generator.state = state["rng"][name]
            restore_queries(attacker.view, int(state["queries_used"][name]))
            attacker.attack.restore_state(state["attacks"][name])
        self.in_flight = {key: (Observation(float(o["time"]), float(o["submitted_at"]), Batch.from_state(o["batch"]),
                                            o["accepted"]), str(o["source"])) for key, o in state["in_flight"].items()}
        self.sent = int(state["sent"])
