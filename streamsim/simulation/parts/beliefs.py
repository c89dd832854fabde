"""The belief scorer: the true verdicts on attacker batches, to score :meth:`Attack.verdict_beliefs`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from streamsim.artifacts.checkpoint import CheckpointError
from streamsim.core.abilities import VerdictBeliefs, has
from streamsim.core.base import Attack
from streamsim.core.metrics import belief_accuracy
from streamsim.core.records import Record, ScreenRecord


class BeliefScorer:
    """Holds the truth an attack never sees: per attacker source, ``{submitted_at: accept}``.

    The truth is the attacker screen records' ``accept`` arrays, so a restore rebuilds it from
    the records and the state only counts the batches.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.truth: dict[str, dict[float, torch.Tensor]] = {}

    def note(self, source: str, time: float, accept: torch.Tensor) -> None:
        self.truth.setdefault(source, {})[time] = accept.clone()

    def score(self, source: str, attack: Attack) -> dict[str, float]:
        """``<kind>_accuracy`` and friends for each kind of belief the attack exposes (none if it has none)."""
        if not has(attack, VerdictBeliefs):
            return {}
        beliefs = attack.verdict_beliefs()
        truth = self.truth.get(source, {})
        values: dict[str, float] = {}
        for kind, believed in beliefs.items():
            whole, recent = belief_accuracy(believed, truth), belief_accuracy(believed, truth, self.window)
            values.update({f"{kind}_accuracy": whole.accuracy, f"{kind}_balanced_accuracy": whole.balanced,
                           f"{kind}_chance": whole.chance, f"{kind}_n": whole.n,
                           f"{kind}_accuracy_window": recent.accuracy, f"{kind}_balanced_accuracy_window": recent.balanced})
        return values

    def checkpoint_state(self) -> dict[str, Any]:
        return {"batches": sum(len(by_time) for by_time in self.truth.values())}

    def restore_state(self, state: dict[str, Any], records: Sequence[Record]) -> None:
        self.truth = {}
        for r in records:
            if isinstance(r, ScreenRecord) and r.kind == "attack":
                self.note(r.source, r.time, torch.from_numpy(r.accept.copy()))
        # Same-time batches of one source overwrite each other, as in the live run: count kept entries.
        if sum(len(v) for v in self.truth.values()) != int(state["batches"]):
            raise CheckpointError(f"the checkpoint's records hold other attacker batches than its belief scorer ({state['batches']})")
