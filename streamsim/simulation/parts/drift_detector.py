"""The drift watch: ADWIN over the error stream of clean batches, raising :class:`DriftAlarm` records."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from streamsim.artifacts.checkpoint import CheckpointError
from streamsim.core.records import DriftAlarm, Record, ScreenRecord

#: river.drift.ADWIN's defaults, apart from delta
ADWIN_SETTINGS = {"clock": 32, "max_buckets": 5, "min_window_length": 5, "grace_period": 10}


class PublicWindow:
    """``river.drift.ADWIN`` (public) behind the three calls :class:`Adwin` makes of river's private window."""

    def __init__(self, **settings: Any) -> None:
        from river.drift import ADWIN

        self.adwin = ADWIN(**settings)

    def update(self, value: float) -> bool:
        self.adwin.update(value)
        return self.adwin.drift_detected

    def get_width(self) -> int:
        return self.adwin.width

    def get_total(self) -> float:
        return self.adwin.total


def adaptive_windowing() -> Callable[..., Any]:
    """river's ADWIN window itself, in Rust — a private module — or, where a river lacks it, :class:`PublicWindow`.

    ``river.drift.ADWIN`` is a thin Python wrapper around that window, but importing ``river.drift``
    imports river's datasets and with them scikit-learn and scipy (~1.5 s of a run's start-up), and
    its per-value ``update`` costs ~3 µs of Python against ~0.1 µs for the window. Both detect at the
    same values (tests/test_parts.py checks the two against ``river.drift.ADWIN``).
    """
    try:
        from river._river_rust.drift import AdaptiveWindowing
    except ImportError:
        return PublicWindow
    return AdaptiveWindowing


WINDOW = adaptive_windowing()


class Adwin:
    """ADWIN (Bifet & Gavaldà 2007) as ``river.drift.ADWIN`` runs it, fed a batch of values at a time.

    After a detection river's ADWIN starts over with an empty window; so does this one.

    >>> adwin = Adwin(delta=0.002)
    >>> list(adwin.detections([0.0] * 500 + [1.0] * 100))
    [511]
    >>> adwin.drift_detected, adwin.width
    (False, 88)
    """

    def __init__(self, delta: float) -> None:
        self.delta = delta
        self.window = WINDOW(delta=delta, **ADWIN_SETTINGS)
        self.drift_detected = False

    @property
    def width(self) -> int:
        return int(self.window.get_width())

    @property
    def total(self) -> float:
        return self.window.get_total()

    def detections(self, values: list[float]) -> Iterator[int]:
        """Feed ``values`` in order; yield the positions after which a drift was detected."""
        start = 0
        while start < len(values):
            if self.drift_detected:  # river's ADWIN.update: a detection resets the whole detector first
                self.window = WINDOW(delta=self.delta, **ADWIN_SETTINGS)
            hits = list(map(self.window.update, values[start:]))  # the window's own loop, no Python per value
            try:
                at = hits.index(True)
            except ValueError:
                self.drift_detected = False
                return
            # the values after the detection went into the old window, which a detection discards anyway
            self.drift_detected = True
            yield start + at
            start += at + 1


class DriftWatch:
    """ADWIN on the model's mistakes on clean batches (before it learns them).

    ADWIN cannot go into a checkpoint; its input can — it is in the clean
    :class:`ScreenRecord`\\ s' ``correct`` arrays. So the state holds only how many errors were
    seen, and a restore feeds the records' errors through a fresh ADWIN again.
    """

    def __init__(self, delta: float, run: str, sink: Callable[[Record], None]) -> None:
        self.delta = delta
        self.run = run
        self.sink = sink
        self.adwin = Adwin(delta)
        self.seen = 0

    def watch(self, correct: np.ndarray, now: float | None) -> None:
        """Feed one clean batch's errors; ``now=None`` replays them without raising alarms."""
        for _ in self.adwin.detections((~correct).astype(float).tolist()):
            if now is not None:
                self.sink(DriftAlarm(self.run, now))
        self.seen += len(correct)

    def checkpoint_state(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def restore_state(self, state: dict[str, Any], records: Sequence[Record]) -> None:
        self.adwin, self.seen = Adwin(self.delta), 0
        for r in records:
            if isinstance(r, ScreenRecord) and r.kind == "clean":
                self.watch(r.correct, None)
        if self.seen != int(state["seen"]):
            raise CheckpointError(f"the checkpoint's records hold {self.seen} clean samples, its drift watch saw {state['seen']}")
