"""The gate: every batch is screened by the defense, then the learner learns what was accepted."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from streamsim.abilities import Bounded, has
from streamsim.base import Defense, Learner
from streamsim.batch import Batch
from streamsim.errors import PluginError
from streamsim.parts import component_state
from streamsim.records import Record, ScreenRecord


@dataclass(frozen=True)
class Screened:
    """A batch after the gate: its record, and the per-sample verdicts as tensors for the other parts."""

    record: ScreenRecord
    batch: Batch
    accept: torch.Tensor


class Gate:
    """Screen → learn. Holds the learner and the defense, and checkpoints them."""

    def __init__(self, learner: Learner, defense: Defense, run: str) -> None:
        self.learner = learner
        self.defense = defense
        self.run = run

    def screen(self, batch: Batch, source: str, kind: str, now: float) -> Screened | None:
        """Pass one batch through; ``None`` for an empty batch (nothing to screen or record)."""
        if len(batch) == 0:
            return None
        correct = self.learner.predict(batch.x) == batch.true_labels  # the model as the batch found it
        started = time.perf_counter()
        verdicts = self.defense.screen(batch)
        screen_seconds = time.perf_counter() - started  # wall time: summary only, never the tables
        if len(verdicts) != len(batch):
            raise PluginError(f"defense {type(self.defense).__name__}.screen returned {len(verdicts)} verdicts for {len(batch)} samples")
        accept = verdicts.accept
        accepted = batch.subset(accept)
        self.learner.learn(accepted.x, accepted.labels)
        self.defense.after_learn(accepted)
        poison = batch.is_poison
        record = ScreenRecord(
            run=self.run, time=now, source=source, kind=kind, n=len(batch),
            n_poison=int(poison.sum()), accepted=int(accept.sum()),
            rejected_poison=int((poison & ~accept).sum()), accepted_poison=int((poison & accept).sum()),
            accepted_poison_correct=int((poison & accept & correct).sum()),
            rejected_clean=int((~poison & ~accept).sum()),
            prequential_errors=int((~correct).sum()), boundary=self._boundary(),
            scores=verdicts.score.detach().numpy().astype(np.float32), is_poison=poison.numpy().copy(),
            accept=accept.numpy().copy(), correct=correct.numpy().copy(),
            labels=batch.labels.numpy().copy(), screen_seconds=screen_seconds,
        )
        return Screened(record, batch, accept)

    def _boundary(self) -> float | None:
        return float(self.defense.boundary) if has(self.defense, Bounded) else None

    def checkpoint_state(self) -> dict[str, Any]:
        return {"learner": component_state(self.learner, "learner"), "defense": component_state(self.defense, "defense")}

    def restore_state(self, state: dict[str, Any], records: Sequence[Record]) -> None:
        self.learner.restore_state(state["learner"])
        self.defense.restore_state(state["defense"])
