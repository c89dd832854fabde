"""The gate: every batch is screened by the defense, and what was accepted goes to the update policy,
which decides when the learner learns it (:mod:`streamsim.simulation.parts.updates`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from streamsim.core.abilities import Bounded, has
from streamsim.core.base import Defense, Learner
from streamsim.core.batch import Batch
from streamsim.core.errors import PluginError
from streamsim.core.records import Record, ScreenRecord, UpdateRecord
from streamsim.scenario.config import PerBatch
from streamsim.simulation.parts import component_state
from streamsim.simulation.parts.updates import PerBatchPolicy, Policy


@dataclass(frozen=True)
class Screened:
    """A batch after the gate: its record, the per-sample verdicts as tensors for the other parts, and
    the update it caused (``None``: the model did not change)."""

    record: ScreenRecord
    accept: torch.Tensor
    update: UpdateRecord | None = None


class Gate:
    """Screen → hand the accepted samples to the update policy. Holds the learner and the defense, and
    checkpoints them (the policy is a part of its own). Without ``updates``: learn every batch as it comes."""

    def __init__(self, learner: Learner, defense: Defense, run: str, updates: Policy | None = None) -> None:
        self.learner = learner
        self.defense = defense
        self.run = run
        self.updates = updates if updates is not None else PerBatchPolicy(PerBatch(), learner, 0, run)
        # a runtime-checkable protocol's isinstance walks its attributes: ask once, not per batch
        self._bounded = has(defense, Bounded)

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
        # an all-accepted batch is learned as is: the learner sees the very tensor it just predicted on
        accepted = batch if bool(accept.all()) else batch.subset(accept)
        update = self.updates.accepted(accepted.x, accepted.labels, now)
        # an online defense follows what the deployment accepted, whenever the learner gets to it
        self.defense.after_learn(accepted)
        # the counts in numpy: a handful of tiny tensors per batch, where torch's per-op cost dominates
        poison, ok, right = batch.is_poison.numpy(), accept.numpy(), correct.numpy()
        poison_ok = poison & ok
        record = ScreenRecord(
            run=self.run, time=now, source=source, kind=kind, n=len(batch),
            n_poison=int(np.count_nonzero(poison)), accepted=int(np.count_nonzero(ok)),
            rejected_poison=int(np.count_nonzero(poison & ~ok)), accepted_poison=int(np.count_nonzero(poison_ok)),
            accepted_poison_correct=int(np.count_nonzero(poison_ok & right)),
            rejected_clean=int(np.count_nonzero(~poison & ~ok)),
            prequential_errors=int(np.count_nonzero(~right)), boundary=self._boundary(),
            scores=verdicts.score.detach().numpy().astype(np.float32), is_poison=poison.copy(),
            accept=ok.copy(), correct=right.copy(),
            labels=batch.labels.numpy().copy(), screen_seconds=screen_seconds,
        )
        return Screened(record, accept, update)

    def _boundary(self) -> float | None:
        return float(self.defense.boundary) if self._bounded else None

    def checkpoint_state(self) -> dict[str, Any]:
        return {"learner": component_state(self.learner, "learner"), "defense": component_state(self.defense, "defense")}

    def restore_state(self, state: dict[str, Any], records: Sequence[Record]) -> None:
        self.learner.restore_state(state["learner"])
        self.defense.restore_state(state["defense"])
