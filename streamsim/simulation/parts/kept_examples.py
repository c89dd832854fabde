"""The kept examples: the run's first poisons with their originals and verdicts, as records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from streamsim.core.batch import Batch
from streamsim.core.records import ExampleRecord, Record

EXAMPLES_KEPT = 16  # poisons kept with their verdicts, for the example grid of `streamsim report`


class KeptExamples:
    """Emits an :class:`ExampleRecord` for poisons until ``limit`` are kept; its state is the count."""

    def __init__(self, run: str, sink: Callable[[Record], None], limit: int = EXAMPLES_KEPT) -> None:
        self.run = run
        self.sink = sink
        self.limit = limit
        self.kept = 0

    def keep(self, batch: Batch, accept: torch.Tensor, pool: Batch, now: float) -> None:
        """Keep the batch's first poisons while room is left; ``pool`` holds the samples they were crafted from."""
        if self.kept >= self.limit or not bool(batch.is_poison.any()):
            return
        pick = torch.nonzero(batch.is_poison).flatten()[: self.limit - self.kept]
        poison = batch.subset(pick)
        # Crafted samples keep their base sample's id; ids are dataset indices, not positions in the pool.
        where = (pool.ids[None, :] == poison.ids[:, None]).int().argmax(dim=1)
        self.sink(ExampleRecord(
            run=self.run, time=now, source=str(poison.source), poison=poison.x.numpy(), original=pool.x[where].numpy(),
            label=poison.labels.numpy(), true_label=poison.true_labels.numpy(), id=poison.ids.numpy(),
            accepted=accept[pick].numpy()))
        self.kept += len(pick)

    def checkpoint_state(self) -> dict[str, Any]:
        return {"kept": self.kept}

    def restore_state(self, state: dict[str, Any], records: Sequence[Record]) -> None:
        self.kept = int(state["kept"])
