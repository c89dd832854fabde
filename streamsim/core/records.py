"""The plain, frozen records the simulator yields. Writers, the dashboard and reports consume them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ScreenRecord:
    """One batch went through the gate: what arrived, what the defense decided, what was learned.

    ``accepted_poison_correct`` counts accepted poisons that the model (as it was when the batch
    arrived) classifies as their true label — the harmless ones, for De-Pois accuracy (da).
    ``scores``, ``is_poison`` and ``accept`` are per sample, for score histograms; ``correct`` is
    per sample too (the model's prediction before learning matched the true label): the drift
    watch's input, so a resumed run rebuilds it from the records. ``labels`` (the claimed labels,
    per sample) feed the per-class filter diagnostics. ``screen_seconds`` is the wall time of
    ``defense.screen`` — a measurement, not a result: it differs between identical runs.
    """

    run: str  # "attack" or "baseline"
    time: float
    source: str
    kind: str  # "clean" or "attack"
    n: int
    n_poison: int
    accepted: int
    rejected_poison: int
    accepted_poison: int
    accepted_poison_correct: int
    rejected_clean: int
    prequential_errors: int  # mistakes of the model on the batch's true labels, before learning it
    boundary: float | None
    scores: np.ndarray
    is_poison: np.ndarray
    accept: np.ndarray
    correct: np.ndarray
    labels: np.ndarray | None = None
    screen_seconds: float = 0.0

    @property
    def rejected(self) -> int:
        return self.n - self.accepted


@dataclass(frozen=True)
class EvalRecord:
    """Target accuracy on the held-out test split at a point in simulated time.

    ``per_class`` is the accuracy on each class's held-out samples (NaN for a class with none);
    ``probes`` the success rate of each harm probe the attacks define (``asr``,
    ``targeted_success``; :mod:`streamsim.core.probes`), measured in the baseline run too.
    """

    run: str
    time: float
    accuracy: float
    n: int
    per_class: tuple[float, ...] = ()
    probes: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftAlarm:
    """ADWIN detected a change in the error stream of clean batches."""

    run: str
    time: float
    detector: str = "adwin"


@dataclass(frozen=True)
class ConceptChange:
    """A clean source reached a change of concept of its ordered stream (a synthetic generator's own
    drift, at ``position`` samples into the stream split): natural drift, known to be there, not detected."""

    run: str
    time: float
    source: str
    position: int


@dataclass(frozen=True)
class PhaseRecord:
    """A stage of the run started (setup, baseline, attack) — lets a dashboard show where it is."""

    run: str
    phase: str
    time: float = 0.0
    duration: float = 0.0
    window: int = 0  # the scenario's metrics.window (on "start"): windowed ca/da count that many attacker batches


@dataclass(frozen=True)
class AttackRecord:
    """An attacker source as it stands at an evaluation: its own numbers and how good its beliefs are.

    ``values`` holds the attack's :meth:`~streamsim.core.base.Attack.stats`, ``queries_used`` and
    ``submitted``, and for each kind of verdict belief the attack exposes, ``<kind>_accuracy``
    (all believed batches so far), ``<kind>_accuracy_window`` (the last ``metrics.window`` of
    them), ``<kind>_balanced_accuracy`` (and ``_window``: mean of the accept and reject recalls,
    0.5 for guessing), ``<kind>_chance`` (accuracy of always guessing the commoner verdict) and
    ``<kind>_n`` (samples believed).
    """

    run: str
    time: float
    source: str
    values: dict[str, float]


@dataclass(frozen=True)
class ExampleRecord:
    """Poisons kept for the example grid of ``streamsim report`` (``examples.npz``), with the clean
    pool samples they were crafted from and the defense's verdicts; arrays are per kept sample."""

    run: str
    time: float
    source: str
    poison: np.ndarray
    original: np.ndarray
    label: np.ndarray
    true_label: np.ndarray
    id: np.ndarray
    accepted: np.ndarray


@dataclass(frozen=True)
class AttackerSummary:
    """An attacker source once its run is over: what goes into ``summary.json``'s ``attackers``.

    ``values`` holds everything of an :class:`AttackRecord` (at the end of the run) and what
    :meth:`~streamsim.core.base.Attack.assess` measured on the held-out split.
    """

    run: str
    source: str
    knowledge: str
    values: dict[str, float]


@dataclass(frozen=True)
class UpdateRecord:
    """The deployed model changed: the update policy (``learner.update``) made the learner learn.

    ``samples`` counts the accepted samples the update brought in (a retraining: the whole window),
    ``steps`` the learner's ``learn`` calls. Between two of these the model's outputs do not move.
    """

    run: str
    time: float
    samples: int
    steps: int


Record = ScreenRecord | EvalRecord | DriftAlarm | ConceptChange | PhaseRecord | AttackRecord | ExampleRecord | AttackerSummary | UpdateRecord
RECORD_TYPES: tuple[type, ...] = (ScreenRecord, EvalRecord, DriftAlarm, ConceptChange, PhaseRecord, AttackRecord,
                                  ExampleRecord, AttackerSummary, UpdateRecord)
