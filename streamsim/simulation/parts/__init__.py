"""The parts a :class:`~streamsim.simulation.simulator.Simulation` is wired from, each owning its state.

- :class:`~streamsim.simulation.parts.gate.Gate`: screen a batch, hand what was accepted to the update
  policy, say so in a :class:`~streamsim.core.records.ScreenRecord`; holds the learner and the defense.
- :mod:`~streamsim.simulation.parts.updates`: the update policy (``learner.update``): when the learner
  learns, and on what; an :class:`~streamsim.core.records.UpdateRecord` each time the model changes.
- :class:`~streamsim.simulation.parts.feedback.FeedbackChannel`: what each attacker hears back about its
  batches (delayed, flipped, or only that they were processed), the queries it spent, and the
  attacks themselves.
- :class:`~streamsim.simulation.parts.evaluator.Evaluator`: accuracy on the held-out split on a clock, and
  the attackers' numbers polled at the same ticks.
- :class:`~streamsim.simulation.parts.drift_detector.DriftWatch`: ADWIN over the clean batches' errors.
- :class:`~streamsim.simulation.parts.beliefs.BeliefScorer`: the true verdicts on attacker batches, to score
  what each attack believes the defense decided.
- :class:`~streamsim.simulation.parts.kept_examples.KeptExamples`: the first poisons, for the report's example grid.

Every part can save and restore itself (:class:`Part`); a simulation's checkpoint is the dict of
its parts' states. Parts whose state is a fold of the records the run already emitted (the drift
watch, the belief scorer) rebuild it from those records on restore, so the checkpoint stays the
same size however long the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from streamsim.core.abilities import Checkpointable, require
from streamsim.core.records import Record


class Part(Protocol):
    """A piece of a running simulation that saves and restores its own state."""

    def checkpoint_state(self) -> dict[str, Any]:
        """The part's state between two events, as a state tree (see :mod:`streamsim.artifacts.checkpoint`)."""
        ...

    def restore_state(self, state: dict[str, Any], records: Sequence[Record]) -> None:
        """Continue from :meth:`checkpoint_state`; ``records`` are those the run emitted so far."""
        ...


def component_state(component: Any, role: str) -> dict[str, Any]:
    """A plugin's ``checkpoint_state()``, or a :class:`PluginError` naming it when it has none."""
    require(component, Checkpointable, role)
    return component.checkpoint_state()
