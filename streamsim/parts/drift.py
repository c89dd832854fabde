"""The drift watch: ADWIN over the error stream of clean batches, raising :class:`DriftAlarm` records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from river.drift import ADWIN

from streamsim.checkpoint import CheckpointError
from streamsim.records import DriftAlarm, Record, ScreenRecord


class DriftWatch:
    """ADWIN on the model's mistakes on clean batches (before it learns them).

    ADWIN is a Python object that cannot go into a checkpoint; its input can — it is in the
    clean :class:`ScreenRecord`\\ s' ``correct`` arrays. So the state holds only how many errors
    were seen, and a restore feeds the records' errors through a fresh ADWIN again.
    """

    def __init__(self, delta: float, run: str, sink: Callable[[Record], None]) -> None:
        self.delta = delta
        self.run = run
        self.sink = sink
        self.adwin = ADWIN(delta=delta)
        self.seen = 0

    def watch(self, correct: np.ndarray, now: float | None) -> None:
        """Feed one clean batch's errors; ``now=None`` replays them without raising alarms."""
        adwin = self.adwin
        for error in (~correct).astype(float).tolist():  # ADWIN is sequential by nature: each error in order
            adwin.update(error)
            if adwin.drift_detected and now is not None:
                self.sink(DriftAlarm(self.run, now))
        self.seen += len(correct)

    def checkpoint_state(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def restore_state(self, state: dict[str, Any], records: Sequence[Record]) -> None:
        self.adwin, self.seen = ADWIN(delta=self.delta), 0
        for r in records:
            if isinstance(r, ScreenRecord) and r.kind == "clean":
                self.watch(r.correct, None)
        if self.seen != int(state["seen"]):
            raise CheckpointError(f"the checkpoint's records hold {self.seen} clean samples, its drift watch saw {state['seen']}")
