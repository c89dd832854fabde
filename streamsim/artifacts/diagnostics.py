"""Filter diagnostics every defense gets, folded from screen records by the core (not by the defense).

After Armory's poisoning filter metrics: which clean points a filter throws away matters as much
as how many. A defense that removes 5 % of the clean stream evenly costs some data; one that
removes 40 % of the 8s and nothing else biases the model it protects.

- ``clean_removed_by_class``: per class, the share of clean points of that class rejected
  (``null`` where the stream sent none);
- ``clean_removal_bias_p``: χ² goodness-of-fit p-value of the rejected clean points' class mix
  against the clean stream's class mix (small = the filter prefers some classes; ``null`` when
  no clean point was rejected or only one class was seen);
- ``screen_s_per_1k``: wall seconds ``defense.screen`` took per 1,000 screened points. Wall time
  differs between identical runs, so it goes into the summary only, never into the
  byte-compared tables (events, timeline, scores).

>>> seen, removed = np.array([100, 100, 100]), np.array([5, 5, 5])
>>> [round(v, 2) for v in removal_by_class(seen, removed)], class_bias_p(seen, removed)
([0.05, 0.05, 0.05], 1.0)
>>> class_bias_p(seen, np.array([30, 0, 0])) < 1e-6
True
>>> seconds_per_1k(0.5, 2000)
0.25
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import chdtrc

from streamsim.core.records import ScreenRecord

WALL_CLOCK_KEYS = ("wall_time_s", "screen_s_per_1k")
"""Summary keys that measure wall time: they differ between identical runs, so determinism checks skip them."""


def removal_by_class(seen: np.ndarray, removed: np.ndarray) -> list[float]:
    """Share of each class's clean points that were rejected (NaN for a class never seen)."""
    return [float(r / s) if s else math.nan for s, r in zip(seen, removed, strict=True)]


def class_bias_p(seen: np.ndarray, removed: np.ndarray) -> float:
    """χ² p-value of the removed clean class mix against the clean stream's (NaN when untestable)."""
    present = seen > 0
    total = removed[present].sum()
    if total == 0 or present.sum() < 2:
        return math.nan
    observed = removed[present].astype(np.float64)
    expected = total * seen[present] / seen[present].sum()
    # scipy.stats.chisquare's statistic and p-value, without importing scipy.stats (seconds at start-up)
    statistic = ((observed - expected) ** 2 / expected).sum()
    return float(chdtrc(present.sum() - 1, statistic))


def seconds_per_1k(seconds: float, points: int) -> float:
    """Screening cost in wall seconds per 1,000 points (NaN before anything was screened)."""
    return 1000.0 * seconds / points if points else math.nan


@dataclass
class FilterDiagnostics:
    """Running totals over the screen records of one run, whose data has ``n_classes`` classes.

    >>> FilterDiagnostics(n_classes=2).summary()["clean_removed_by_class"]  # nothing screened yet
    [nan, nan]
    """

    n_classes: int
    clean_seen: np.ndarray = field(init=False)
    clean_removed: np.ndarray = field(init=False)
    screened: int = 0
    screen_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.clean_seen = np.zeros(self.n_classes, dtype=np.int64)
        self.clean_removed = np.zeros(self.n_classes, dtype=np.int64)

    def add(self, record: ScreenRecord) -> None:
        self.screened += record.n
        self.screen_seconds += record.screen_seconds
        if record.labels is None:
            return
        clean = ~record.is_poison
        labels = record.labels[clean].astype(np.int64)
        k = self.n_classes
        self.clean_seen += np.bincount(labels, minlength=k)[:k]
        self.clean_removed += np.bincount(labels[~record.accept[clean]], minlength=k)[:k]

    def summary(self) -> dict[str, object]:
        return {
            "clean_removed_by_class": removal_by_class(self.clean_seen, self.clean_removed),
            "clean_removal_bias_p": class_bias_p(self.clean_seen, self.clean_removed),
            "screen_s_per_1k": seconds_per_1k(self.screen_seconds, self.screened),
        }
