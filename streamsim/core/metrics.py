"""Detection and damage metrics, from counts. Cumulative and windowed tallies fold records.

Definitions (poisons = samples sent by attacker sources):

- **ca** (critic accuracy) = rejected poisons / poisons
- **da** (De-Pois accuracy) = (rejected poisons + accepted poisons the current model classifies
  correctly by their true label) / poisons
- clean false-rejection rate = rejected clean / clean
- precision / recall / F1 of "reject" as the detector's positive call, over all screened samples
  (*poison-positive*: ``precision``, ``recall``, ``f1``), and of "accept" with *clean* as the
  positive class (``clean_precision``, ``clean_recall``, ``clean_f1``) — the convention of
  De-Pois's own code (``count_score``), which is how its paper's ">0.9" F1 was measured. With a
  boundary at ``mean − 1·std`` about 16 % of clean samples are rejected by construction, which caps
  poison-positive F1 well below 1 while clean-positive F1 can stay high; report both.

>>> t = Tally()
>>> t.add(n=10, n_poison=4, accepted=7, rejected_poison=2, accepted_poison=2, accepted_poison_correct=1, rejected_clean=1)
>>> m = t.metrics()
>>> m["ca"], m["da"], round(m["precision"], 3), m["recall"], round(m["clean_frr"], 3)
(0.5, 0.75, 0.667, 0.5, 0.167)
>>> round(m["clean_precision"], 3), round(m["clean_recall"], 3)  # accepted clean / accepted, / clean
(0.714, 0.833)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

NAN = float("nan")


def _ratio(num: float, den: float) -> float:
    return num / den if den else NAN


def _f1(precision: float, recall: float, defined: bool) -> float:
    return _ratio(2 * precision * recall, precision + recall) if defined else NAN


def detection_rates(n_poison: int, rejected_poison: int, n_clean: int, rejected_clean: int) -> dict[str, float]:
    """Precision, recall and F1 both ways: poison as the positive class (rejecting is the positive
    call: ``precision``, ``recall``, ``f1``) and clean as the positive class (accepting is:
    ``clean_precision``, ``clean_recall``, ``clean_f1``, as De-Pois's reference code counts). NaN
    where a ratio is undefined.

    >>> r = detection_rates(n_poison=30, rejected_poison=30, n_clean=70, rejected_clean=11)
    >>> round(r["f1"], 3), round(r["clean_f1"], 3)  # every poison caught, 16 % of clean lost
    (0.845, 0.915)
    """
    rejected = rejected_poison + rejected_clean
    accepted_clean, accepted = n_clean - rejected_clean, n_poison + n_clean - rejected
    precision, recall = _ratio(rejected_poison, rejected), _ratio(rejected_poison, n_poison)
    clean_precision, clean_recall = _ratio(accepted_clean, accepted), _ratio(accepted_clean, n_clean)
    return {
        "precision": precision, "recall": recall, "f1": _f1(precision, recall, bool(rejected and n_poison)),
        "clean_precision": clean_precision, "clean_recall": clean_recall,
        "clean_f1": _f1(clean_precision, clean_recall, bool(accepted and n_clean)),
    }


@dataclass
class Tally:
    """Counts folded from screened batches; :meth:`metrics` turns them into rates."""

    n: int = 0
    n_poison: int = 0
    accepted: int = 0
    rejected_poison: int = 0
    accepted_poison: int = 0
    accepted_poison_correct: int = 0
    rejected_clean: int = 0

    def add(self, **counts: int) -> None:
        for name, value in counts.items():
            setattr(self, name, getattr(self, name) + value)

    def add_record(self, record: object) -> None:
        self.add(**{f.name: getattr(record, f.name) for f in fields(self)})

    def metrics(self) -> dict[str, float | int]:
        """Rates as floats (NaN when undefined), counts (``poisons``, ...) as ints."""
        clean = self.n - self.n_poison
        rates = detection_rates(self.n_poison, self.rejected_poison, clean, self.rejected_clean)
        return {
            "ca": rates["recall"],
            "da": _ratio(self.rejected_poison + self.accepted_poison_correct, self.n_poison),
            "clean_frr": _ratio(self.rejected_clean, clean),
            **rates,
            "detection_accuracy": _ratio(self.rejected_poison + (clean - self.rejected_clean), self.n),
            "poisons": self.n_poison,
            "accepted_poisons": self.accepted_poison,
            "screened": self.n,
        }


class WindowedTally:
    """The same counts over the last ``window`` attacker batches only."""

    def __init__(self, window: int) -> None:
        self.batches: deque[Tally] = deque(maxlen=window)

    def add_record(self, record: object) -> None:
        t = Tally()
        t.add_record(record)
        self.batches.append(t)

    def metrics(self) -> dict[str, float | int]:
        total = Tally()
        for t in self.batches:
            total.add(**{f.name: getattr(t, f.name) for f in fields(t)})
        return total.metrics()


class Detection:
    """Detection metrics of one run, folded from its screen records: the one definition the
    collector (``timeline.csv``, ``summary.json``) and the live dashboard share.

    Cumulative counts cover every screened batch; ``ca_window`` / ``da_window`` the last
    ``window`` attacker batches (the scenario's ``metrics.window``).

    >>> from types import SimpleNamespace as Screen
    >>> d = Detection(window=1)
    >>> for caught in (0, 4):
    ...     d.add(Screen(kind="attack", n=4, n_poison=4, accepted=4 - caught, rejected_poison=caught,
    ...                  accepted_poison=4 - caught, accepted_poison_correct=0, rejected_clean=0))
    >>> m = d.metrics()
    >>> m["ca"], m["ca_window"], m["poisons"]
    (0.5, 1.0, 8)
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.tally = Tally()
        self.windowed = WindowedTally(window)

    def add(self, record: Any) -> None:
        """Fold in one :class:`~streamsim.core.records.ScreenRecord`."""
        self.tally.add_record(record)
        if record.kind == "attack":
            self.windowed.add_record(record)

    def metrics(self) -> dict[str, float | int]:
        win = self.windowed.metrics()
        return {**self.tally.metrics(), "ca_window": win["ca"], "da_window": win["da"]}


@dataclass(frozen=True)
class BeliefScore:
    """How well an attack's believed verdicts match the true ones.

    ``balanced`` is the mean of the accept and reject recalls (0.5 for any constant or random
    guess, whatever the acceptance rate); ``chance`` is the accuracy of always guessing the more
    common verdict — the bar a plain ``accuracy`` must clear to mean anything.
    """

    accuracy: float
    balanced: float
    chance: float
    n: int


def belief_accuracy(beliefs: Mapping[float, torch.Tensor], truth: Mapping[float, torch.Tensor],
                    window: int | None = None) -> BeliefScore:
    """Score believed verdicts against the true ones.

    Both map a batch's submission time to one bool per sample (a float belief may be NaN where the
    attack holds none; those samples are skipped). Batches believed but never screened (or of
    another length) are skipped; ``window`` keeps only the latest believed batches.

    >>> t = {1.0: torch.tensor([True, False]), 2.0: torch.tensor([True, True])}
    >>> belief_accuracy({1.0: torch.tensor([True, True]), 2.0: torch.tensor([True, True])}, t)
    BeliefScore(accuracy=0.75, balanced=0.5, chance=0.75, n=4)
    >>> belief_accuracy({1.0: torch.tensor([True, False]), 2.0: torch.tensor([True, True])}, t, window=1).accuracy
    1.0
    >>> belief_accuracy({1.0: torch.tensor([float("nan"), 0.0])}, t)
    BeliefScore(accuracy=1.0, balanced=1.0, chance=1.0, n=1)
    """
    times = sorted(t for t, b in beliefs.items() if t in truth and len(truth[t]) == len(b))
    if window is not None:
        times = times[-window:]
    if not times:
        return BeliefScore(NAN, NAN, NAN, 0)
    believed = torch.cat([beliefs[t].float() for t in times])
    true = torch.cat([truth[t].bool() for t in times])
    held = ~believed.isnan()  # a float belief may be NaN where the attack holds none (scored on the rest)
    believed, true = believed[held].bool(), true[held]
    if not len(true):
        return BeliefScore(NAN, NAN, NAN, 0)
    hits = believed == true
    recalls = [float(hits[true == v].float().mean()) for v in (True, False) if bool((true == v).any())]
    rate = float(true.float().mean())
    return BeliefScore(float(hits.float().mean()), sum(recalls) / len(recalls), max(rate, 1 - rate), len(true))
