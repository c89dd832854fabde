"""Folds the record stream of a run into its timeline, events, per-sample scores and summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from streamsim.artifacts.diagnostics import FilterDiagnostics
from streamsim.core.metrics import Detection
from streamsim.core.records import (
    AttackerSummary,
    AttackRecord,
    ConceptChange,
    DriftAlarm,
    EvalRecord,
    ExampleRecord,
    Record,
    ScreenRecord,
    UpdateRecord,
)
from streamsim.scenario.config import Scenario


@dataclass
class Result:
    """What :func:`streamsim.run` returns: the summary and the tables, as written to ``run_dir``."""

    summary: dict[str, Any]
    timeline: pd.DataFrame
    events: pd.DataFrame
    scores: pd.DataFrame
    scenario: Scenario
    run_dir: Path | None = None


@dataclass
class _RunState:
    detection: Detection
    clean_errors: int = 0
    clean_seen: int = 0
    evals: list[EvalRecord] = field(default_factory=list)
    alarms: list[float] = field(default_factory=list)
    concept_changes: list[float] = field(default_factory=list)


TIMELINE_DETECTION = ("ca", "da", "clean_frr", "precision", "recall", "f1", "clean_precision", "clean_recall",
                      "clean_f1", "poisons", "accepted_poisons", "ca_window", "da_window")


class Collector:
    """A record sink that folds everything the outputs need. The attacked run is ``"attack"``.

    It alone builds ``summary.json``, ``timeline.csv``, ``events.csv``, ``scores.csv`` and
    ``examples.npz`` (:meth:`tables`, :meth:`summary`, :meth:`examples`), from records only.
    ``window`` is the scenario's ``metrics.window``; ``n_classes`` the data space's class count.
    """

    def __init__(self, window: int, n_classes: int) -> None:
        self.runs: dict[str, _RunState] = {run: _RunState(Detection(window)) for run in ("attack", "baseline")}
        self.timeline: list[dict[str, float]] = []
        self.events: list[dict[str, Any]] = []
        self.score_parts: list[pd.DataFrame] = []
        self.attack_columns: dict[str, float] = {}  # latest attacker numbers, as attack:<source>:<key>
        self.kept: list[ExampleRecord] = []
        self.attackers: dict[str, dict[str, Any]] = {}  # from AttackerSummary records
        self.diagnostics = FilterDiagnostics(n_classes)  # of the attacked run; summary only (wall time inside)
        self.updates: list[float] = []  # times the attacked run's model changed (UpdateRecord)

    def __call__(self, record: Record) -> None:
        if isinstance(record, ScreenRecord):
            self._screen(record)
        elif isinstance(record, EvalRecord):
            self.runs[record.run].evals.append(record)
            if record.run == "attack":
                self._snapshot(record)
        elif isinstance(record, DriftAlarm):
            self.runs[record.run].alarms.append(record.time)
        elif isinstance(record, ConceptChange):
            self.runs[record.run].concept_changes.append(record.time)
        elif record.run != "attack":
            return
        elif isinstance(record, AttackRecord):
            self.attack_columns.update({f"attack:{record.source}:{k}": v for k, v in record.values.items()})
        elif isinstance(record, ExampleRecord):
            self.kept.append(record)
        elif isinstance(record, AttackerSummary):
            self.attackers[record.source] = {"knowledge": record.knowledge, **record.values}
        elif isinstance(record, UpdateRecord):
            self.updates.append(record.time)

    def _screen(self, r: ScreenRecord) -> None:
        state = self.runs[r.run]
        state.detection.add(r)
        if r.kind == "clean":
            state.clean_errors += r.prequential_errors
            state.clean_seen += r.n
        if r.run != "attack":
            return
        self.diagnostics.add(r)
        self.events.append({
            "time": r.time, "source": r.source, "kind": r.kind, "n": r.n, "n_poison": r.n_poison,
            "accepted": r.accepted, "rejected": r.rejected, "rejected_poison": r.rejected_poison,
            "accepted_poison": r.accepted_poison, "accepted_poison_correct": r.accepted_poison_correct,
            "rejected_clean": r.rejected_clean, "prequential_errors": r.prequential_errors,
            "score_mean": float(r.scores.mean()) if r.n else math.nan,
            "boundary": r.boundary if r.boundary is not None else math.nan,
        })
        self.score_parts.append(pd.DataFrame({
            "time": r.time, "source": r.source, "is_poison": r.is_poison, "accepted": r.accept, "score": r.scores,
        }))

    def _snapshot(self, e: EvalRecord) -> None:
        m = self.runs["attack"].detection.metrics()
        self.timeline.append({"time": e.time, "accuracy": e.accuracy, **{k: m[k] for k in TIMELINE_DETECTION},
                              "model_updates": len(self.updates), **e.probes, **per_class_columns(e.per_class),
                              **self.attack_columns})

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        timeline = pd.DataFrame(self.timeline)
        base = self.runs["baseline"].evals
        if base and not timeline.empty:
            b = pd.DataFrame({"time": [e.time for e in base], "baseline_accuracy": [e.accuracy for e in base],
                              **{f"baseline_{name}": [e.probes.get(name, math.nan) for e in base]
                                 for name in base[-1].probes}})
            timeline = timeline.merge(b, on="time", how="left")
            timeline["accuracy_drop"] = timeline["baseline_accuracy"] - timeline["accuracy"]
        events = pd.DataFrame(self.events)
        scores = pd.concat(self.score_parts, ignore_index=True) if self.score_parts else pd.DataFrame(
            columns=["time", "source", "is_poison", "accepted", "score"])
        return timeline, events, scores

    def summary(self, timeline: pd.DataFrame, info: dict[str, Any] | None = None) -> dict[str, Any]:
        """The run's summary (JSON-safe), from the folded records and ``timeline``; ``info`` (scenario
        name, seed, versions, ...) is added as is."""
        attack, baseline = self.runs["attack"], self.runs["baseline"]
        out: dict[str, Any] = dict(attack.detection.metrics())
        out["final_accuracy"] = attack.evals[-1].accuracy if attack.evals else math.nan
        out["initial_accuracy"] = attack.evals[0].accuracy if attack.evals else math.nan
        out["clean_prequential_error"] = attack.clean_errors / attack.clean_seen if attack.clean_seen else math.nan
        out.update(harm_summary(attack.evals, baseline.evals, out["accepted_poisons"]))
        out["first_drift_alarm"] = attack.alarms[0] if attack.alarms else None
        out["drift_alarms"] = len(attack.alarms)
        out["drift_alarm_times"] = list(attack.alarms)
        if attack.concept_changes:  # only ordered synthetic streams have them
            out["concept_change_times"] = list(attack.concept_changes)
        out.update(self.diagnostics.summary())
        out["model_updates"] = len(self.updates)
        out["last_model_update"] = self.updates[-1] if self.updates else None
        if baseline.evals:
            out["baseline_final_accuracy"] = baseline.evals[-1].accuracy
            out["accuracy_drop"] = out["baseline_final_accuracy"] - out["final_accuracy"]
            out["mean_accuracy_drop"] = float(timeline["accuracy_drop"].mean())
            out["max_accuracy_drop"] = float(timeline["accuracy_drop"].max())
            out["baseline_clean_frr"] = baseline.detection.metrics()["clean_frr"]
            out["baseline_first_drift_alarm"] = baseline.alarms[0] if baseline.alarms else None
            out["baseline_drift_alarm_times"] = list(baseline.alarms)
        out["attackers"] = dict(self.attackers)
        return json_safe({**out, **(info or {})})

    def examples(self) -> dict[str, np.ndarray] | None:
        """``examples.npz``: the kept poisons next to the pool samples they were crafted from; ``None`` without any."""
        if not self.kept:
            return None
        joined = {name: np.concatenate([getattr(e, name) for e in self.kept])
                  for name in ("poison", "original", "label", "true_label", "id", "accepted")}
        return {**joined, "source": np.array([e.source for e in self.kept for _ in range(len(e.id))])}


def per_class_columns(per_class: tuple[float, ...]) -> dict[str, float]:
    """Timeline columns ``accuracy_class_<k>``."""
    return {f"accuracy_class_{k}": v for k, v in enumerate(per_class)}


def harm_summary(attack: list[EvalRecord], baseline: list[EvalRecord], accepted_poisons: int) -> dict[str, Any]:
    """What the poisons did to the model, from the last evaluation of each run.

    Every harm probe's final success rate (``asr``, ...) with its baseline's (``baseline_asr``)
    and its largest value over the run (``max_asr``); accuracy per class and the class that lost
    most against the baseline (``worst_class``, ``worst_class_drop``); and the accuracy drop per
    1,000 accepted poisons (``harm_per_1k_accepted``: NaN when none were accepted).

    >>> a = [EvalRecord("attack", 0.0, 0.9, 10, (0.9, 0.9), {"asr": 0.1}), EvalRecord("attack", 5.0, 0.7, 10, (0.9, 0.5), {"asr": 0.8})]
    >>> b = [EvalRecord("baseline", 5.0, 0.9, 10, (0.9, 0.9), {"asr": 0.05})]
    >>> h = harm_summary(a, b, accepted_poisons=100)
    >>> h["asr"], h["baseline_asr"], h["max_asr"], h["worst_class"], round(h["worst_class_drop"], 3), round(h["harm_per_1k_accepted"], 3)
    (0.8, 0.05, 0.8, 1, 0.4, 2.0)
    """
    out: dict[str, Any] = {}
    if not attack:
        return out
    last = attack[-1]
    for name, value in last.probes.items():
        out[name] = value
        out[f"max_{name}"] = max(e.probes.get(name, math.nan) for e in attack)
    out["per_class_accuracy"] = list(last.per_class)
    if not baseline:
        return out
    base = baseline[-1]
    for name in last.probes:
        out[f"baseline_{name}"] = base.probes.get(name, math.nan)
    out["baseline_per_class_accuracy"] = list(base.per_class)
    drops = np.array(base.per_class, dtype=float) - np.array(last.per_class, dtype=float)
    if drops.size and not np.isnan(drops).all():
        worst = int(np.nanargmax(drops))
        out["worst_class"], out["worst_class_drop"] = worst, float(drops[worst])
    drop = base.accuracy - last.accuracy
    out["harm_per_1k_accepted"] = 1000.0 * drop / accepted_poisons if accepted_poisons else math.nan
    return out


def json_safe(value: Any) -> Any:
    """NaN and inf are not JSON: write them as null. numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
