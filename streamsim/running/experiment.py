"""Runs a scenario end to end: data → components → baseline run → attacked run → outputs.

>>> result = run("tiny", out=None, duration=2, eval_every=1, defense__name="oracle")
>>> result.summary["ca"], result.timeline["time"].tolist()
(1.0, [0.0, 1.0, 2.0])
"""

from __future__ import annotations

import copy
import hashlib
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import river
import torch

import streamsim
from streamsim.artifacts.checkpoint import CheckpointError, RecordLog, find_checkpoint, load_checkpoint, save_checkpoint
from streamsim.artifacts.results import Collector, Result
from streamsim.artifacts.rundir import (
    CHECKPOINT,
    RESUMABLE,
    read_resumable,
    release_run_dir,
    reserve_run_dir,
    start_resumable,
    write_run_dir,
)
from streamsim.core.abilities import Checkpointable, HoldoutBoundary, has, require
from streamsim.core.base import Attack, Defense, Learner, SetupContext
from streamsim.core.batch import Batch
from streamsim.core.errors import ConfigError, DataError
from streamsim.core.probes import Probe
from streamsim.core.progress import ProgressFactory, silent
from streamsim.core.records import PhaseRecord, Record
from streamsim.data.datasets import RawData
from streamsim.data.splits import CutData, cut
from streamsim.files.reading import read_bytes
from streamsim.running import preflight
from streamsim.running.preflight import Plan
from streamsim.scenario.config import MAX_SCENARIO_BYTES, DataConfig, Scaling, Scenario, load_scenario
from streamsim.seeds import child_seed
from streamsim.simulation.parts.evaluator import held_out
from streamsim.simulation.simulator import Simulation, harm_probes, merge_probes
from streamsim.simulation.threat import TargetView


def load_data(cfg: DataConfig, seed: int) -> tuple[dict[str, Batch], str]:
    """The run's splits and a key that identifies them (for artifact caches)."""
    data, key = load_cut(cfg, seed)
    return data.splits, key


def load_cut(cfg: DataConfig, seed: int) -> tuple[CutData, str]:
    """The run's splits with their data space and feature scaling, and a key that identifies them."""
    return cut_raw(preflight.load_raw(cfg, seed), cfg, seed)


def cut_raw(raw: RawData, cfg: DataConfig, seed: int) -> tuple[CutData, str]:
    """:func:`load_cut` of data already loaded (a run's :class:`~streamsim.running.preflight.Plan` holds it)."""
    split_seed = child_seed(seed, "splits")
    fractions = cfg.splits.model_dump()
    data = cut(raw, fractions, split_seed, cfg.scaling.model_dump() if cfg.scaling is not None else None)
    for role in ("pretrain", "test"):
        if len(data.splits[role]) == 0:
            raise DataError(f"data.splits.{role}: no samples in this split of {raw.description}")
    key = f"{raw.description}|n={len(raw.y)}|{sorted(fractions.items())}|split_seed={split_seed}"
    if data.scaling is not None:
        key += f"|scaling={hashlib.sha256(repr(sorted(data.scaling.items())).encode()).hexdigest()[:16]}"
    return data, key


def _make_cache(enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from streamsim.artifacts.cache import ArtifactCache
    except ImportError:
        return None
    return ArtifactCache()


def versions() -> dict[str, str]:
    return {"streamsim": streamsim.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "river": river.__version__}


def run(
    scenario: str | Path | dict[str, Any] | Scenario,
    *,
    set: Sequence[str] = (),  # noqa: A002 - mirrors the CLI's --set
    seed: int | None = None,
    out: str | Path | None = "auto",
    baseline: bool | None = None,
    cache: bool = True,
    progress: ProgressFactory = silent,
    on_record: Callable[[Record], None] | None = None,
    values: dict[str, Any] | None = None,
    checkpoint_every: float | None = None,
    **overrides: Any,
) -> Result:
    """Run a scenario and return its :class:`~streamsim.artifacts.results.Result`.

    ``scenario`` is a path, a built-in scenario name, a dict or a :class:`Scenario`. ``set`` takes
    ``key.path=value`` strings; keyword ``overrides`` take typed values, nesting with ``__``
    (``defense__name="oracle"``), and ``values`` maps dotted key paths to typed values. ``out="auto"`` writes ``runs/NAME-seedN-TIMESTAMP``; ``None``
    writes nothing. ``baseline`` overrides the scenario's ``baseline`` key. ``on_record`` sees every
    record as it happens (a live dashboard). ``checkpoint_every`` saves the whole run state into
    ``out/checkpoint/`` every that many simulated time units; :func:`resume` continues it.
    """
    values = {**(values or {}), **{k.replace("__", "."): v for k, v in overrides.items()}}
    if seed is not None:
        values["seed"] = seed
    sc = load_scenario(scenario, tuple(set), values)
    if baseline is not None:
        sc = sc.model_copy(update={"baseline": baseline})
    auto = out == "auto"
    out_path = None if out is None or auto else Path(out)
    plan = preflight.check(sc, out=Path("runs") if auto else out_path, fresh=not auto,
                           checkpoint_every=checkpoint_every, cache=cache)
    if auto:
        out_path = reserve_run_dir(Path("runs"), sc.name, sc.seed)
    try:
        with preflight.torch_threads(sc.threads):
            return _execute(plan, out_path, progress=progress, on_record=on_record,
                            checkpoint_every=checkpoint_every)
    except BaseException:
        if auto and out_path is not None:
            release_run_dir(out_path)
        raise


def resume(run_dir: str | Path, *, progress: ProgressFactory = silent,
           on_record: Callable[[Record], None] | None = None, device: str | None = None) -> Result:
    """Continue a run started with ``checkpoint_every`` from its last checkpoint (or from the start,
    if it was stopped before the first one). The finished run equals an uninterrupted one — on the
    same device: ``device`` continues it elsewhere than the scenario's ``device`` (say, a run started
    on a CPU finished on a GPU), which changes the numbers from there on."""
    run_dir = Path(run_dir)
    settings = read_resumable(run_dir)
    scenario_file = run_dir / "scenario.resolved.toml"
    try:
        edited = hashlib.sha256(read_bytes(scenario_file, MAX_SCENARIO_BYTES)).hexdigest() != settings["scenario_sha256"]
    except OSError as e:
        raise ConfigError(f"{scenario_file}: cannot read it ({e.strerror or type(e).__name__})") from None
    if edited:
        raise ConfigError(f"{scenario_file}: changed since the run started (its sha256 differs from {RESUMABLE}'s); "
                          "resume continues only the scenario it was started with")
    sc = load_scenario(scenario_file)
    if device is not None:
        sc = sc.model_copy(update={"device": device})
    plan = preflight.check(sc, checkpoint_every=settings["checkpoint_every"], out=run_dir, fresh=False,
                           cache=settings["cache"])
    folder = find_checkpoint(run_dir / CHECKPOINT)
    resumed = None
    if folder is not None:
        state, meta = load_checkpoint(folder)
        if meta.get("scenario_sha256") != settings["scenario_sha256"]:
            raise CheckpointError(f"{folder}: checkpoint of another scenario than {run_dir / 'scenario.resolved.toml'}")
        if not isinstance(state, dict) or state.get("phase") not in ("baseline", "attack") or "simulation" not in state:
            raise CheckpointError(f"{folder}: not the checkpoint of a run (no phase and simulation state)")
        resumed = {**state, "segments": meta.get("records")}
    with preflight.torch_threads(sc.threads):
        return _execute(plan, run_dir, progress=progress, on_record=on_record,
                        checkpoint_every=settings["checkpoint_every"], resumed=resumed)


@dataclass
class _Setup:
    """What every phase of a run works with: the scenario, its components (the plan's) and its data."""

    scenario: Scenario
    resolved: Scenario
    learner: Learner
    defense: Defense
    attacks: dict[str, Attack]
    data: CutData
    data_key: str
    cache: Any
    progress: ProgressFactory
    device: str
    probes: dict[str, dict[str, Probe]]  # each attacker source's harm probes

    @property
    def splits(self) -> dict[str, Batch]:
        return self.data.splits

    def context(self, name: str, **extra: Any) -> SetupContext:
        return SetupContext(seed=child_seed(self.scenario.seed, name), data_key=self.data_key, cache=self.cache,
                            progress=self.progress, device=self.device, space=self.data.space, **extra)


class _Recorder:
    """The run's one record sink: the collector, a live display, and the checkpoints' record log."""

    def __init__(self, collector: Collector, on_record: Callable[[Record], None] | None,
                 log: RecordLog | None, meta: dict[str, Any]) -> None:
        self.collector, self.on_record, self.log, self.meta = collector, on_record, log, meta

    def __call__(self, record: Record, logged: bool = True) -> None:
        self.collector(record)
        if self.log is not None and logged:
            self.log.append(record)
        if self.on_record is not None:
            self.on_record(record)

    def replay(self, segments: Any) -> list[Record]:
        """The records a checkpointed run emitted before its checkpoint, shown to every consumer again."""
        assert self.log is not None
        records = self.log.load(segments)
        for record in records:
            self(record, logged=False)  # already in the log's segments
        return records

    def checkpointer(self, phase: str) -> Callable[[dict[str, Any]], None] | None:
        if self.log is None:
            return None
        log = self.log

        def save(state: dict[str, Any]) -> None:
            segments = log.flush()  # the new records first: the checkpoint names them once they are safe
            save_checkpoint(log.folder, {"phase": phase, "simulation": state},
                            {**self.meta, "phase": phase, "time": state["time"], "records": segments})
        return save


def _execute(plan: Plan, out_path: Path | None, *, progress: ProgressFactory,
             on_record: Callable[[Record], None] | None, checkpoint_every: float | None,
             resumed: dict[str, Any] | None = None) -> Result:
    started = time.perf_counter()
    sc = plan.scenario
    setup = _set_up(plan, progress)
    recorder = _open_recorder(setup, out_path, on_record, checkpoint_every, plan.cache, resumed)
    phase, records = (resumed["phase"], recorder.replay(resumed["segments"])) if resumed else (None, [])
    if resumed is None:
        recorder(PhaseRecord("attack", "setup"))
    _fit(setup)
    if sc.baseline and phase != "attack":
        _baseline_run(setup, recorder, checkpoint_every, resumed if phase == "baseline" else None, records)
    _attack_run(setup, recorder, checkpoint_every, resumed if phase == "attack" else None, records)
    return _write_outputs(setup, recorder, out_path, checkpoint_every is not None, started)


def _set_up(plan: Plan, progress: ProgressFactory) -> _Setup:
    """Cut the plan's data into splits and fix the harm probes; trains nothing."""
    sc, resolved = plan.scenario, plan.resolved
    data, data_key = cut_raw(plan.raw, sc.data, sc.seed)
    if data.scaling is not None:  # stated in the resolved scenario: rerunning it scales the same way
        resolved.data.scaling = Scaling.model_validate(data.scaling)
    # The probes are fixed before anything runs: both runs measure them, and each attack is handed its own.
    probes = harm_probes(plan.attacks, held_out(data.splits["test"], sc.data.eval_size, sc.seed), data.space)
    merge_probes(probes)  # refuse two sources defining one probe before anything trains
    return _Setup(sc, resolved, plan.learner, plan.defense, plan.attacks, data, data_key, _make_cache(plan.cache),
                  progress, plan.device, probes)


def _open_recorder(setup: _Setup, out_path: Path | None, on_record: Callable[[Record], None] | None,
                   checkpoint_every: float | None, cache: bool, resumed: dict[str, Any] | None) -> _Recorder:
    """The record sink; for a checkpointed run, also its record log, and its run directory opened if new."""
    resolved_toml = setup.resolved.resolved_toml()
    meta = {"scenario_sha256": hashlib.sha256(resolved_toml.encode("utf-8")).hexdigest(), "streamsim": streamsim.__version__}
    log = None
    if checkpoint_every is not None:
        assert out_path is not None
        _check_checkpointable(setup.learner, setup.defense, setup.attacks)
        if resumed is None and not (out_path / RESUMABLE).exists():
            start_resumable(out_path, resolved_toml, {"checkpoint_every": checkpoint_every, "cache": cache,
                                                      "scenario_sha256": meta["scenario_sha256"]})
        log = RecordLog(out_path / CHECKPOINT)
    return _Recorder(Collector(setup.scenario.metrics.window, setup.data.space.n_classes), on_record, log, meta)


def _fit(setup: _Setup) -> None:
    """Pretrain the learner and fit the defense on the trusted split (both cached when they can be)."""
    pre = setup.splits["pretrain"]
    setup.learner.pretrain(pre.x, pre.labels, setup.context("learner"))
    setup.defense.fit(setup.splits["trusted"], setup.learner, setup.context("defense"))
    if has(setup.defense, HoldoutBoundary) and setup.defense.boundary_from == "test":
        setup.defense.fit_boundary(setup.splits["test"])  # the reference code's protocol, opted into


def _simulate(simulation: Simulation, recorder: _Recorder, checkpoint_every: float | None,
              resumed: dict[str, Any] | None, records: list[Record]) -> None:
    sc = simulation.scenario
    if resumed is not None:
        simulation.restore_state(resumed["simulation"], records)
    else:
        recorder(PhaseRecord(simulation.run, "start", duration=sc.duration, window=sc.metrics.window))
    simulation.run_to_end(checkpoint_every, recorder.checkpointer(simulation.run))


def _baseline_run(setup: _Setup, recorder: _Recorder, checkpoint_every: float | None,
                  resumed: dict[str, Any] | None, records: list[Record]) -> None:
    """The same stream without attackers, over copies of the fitted learner and defense."""
    # Copy learner and defense together so a defense that holds the learner keeps holding *its* copy.
    learner, defense = copy.deepcopy((setup.learner, setup.defense))
    simulation = Simulation(setup.scenario, setup.splits, learner, defense, {}, recorder, run="baseline", data=setup.data,
                            probes=setup.probes)
    _simulate(simulation, recorder, checkpoint_every, resumed, records)
    recorder(PhaseRecord("baseline", "done"))  # a live display steps aside for the attacks' setup bars


def _attack_run(setup: _Setup, recorder: _Recorder, checkpoint_every: float | None,
                resumed: dict[str, Any] | None, records: list[Record]) -> None:
    """Prepare each attack with the view its knowledge allows, run the attacked stream, sum the attackers up."""
    armed: dict[str, tuple[Attack, TargetView]] = {}
    for a in setup.scenario.attackers:
        attack = setup.attacks[a.name]
        view = TargetView(attack.knowledge, setup.learner, setup.defense, a.query_budget, a.effects_proba)
        base = setup.splits["test"] if a.pool == "test" else None  # the images it poisons, when not its own pool
        training = setup.splits["pretrain"] if a.training_data else None  # a threat-model grant, off by default
        attack.prepare(setup.context(f"attack-setup:{a.name}", pool=setup.splits["attacker"], view=view, base=base,
                                     training=training, probes=setup.probes.get(a.name, {})))
        armed[a.name] = (attack, view)
    simulation = Simulation(setup.scenario, setup.splits, setup.learner, setup.defense, armed, recorder, run="attack",
                            data=setup.data, probes=setup.probes)
    _simulate(simulation, recorder, checkpoint_every, resumed, records)
    simulation.finish()


def _write_outputs(setup: _Setup, recorder: _Recorder, out_path: Path | None, checkpointed: bool,
                   started: float) -> Result:
    """Fold the records into the run's outputs and write them (replacing the checkpoints, if any)."""
    sc, collector = setup.scenario, recorder.collector
    timeline, events, scores = collector.tables()
    summary = collector.summary(timeline, {
        "scenario": sc.name, "seed": sc.seed, "duration": sc.duration, "data": setup.data_key, "baseline": sc.baseline,
        "versions": versions(), "wall_time_s": round(time.perf_counter() - started, 3)})
    recorder(PhaseRecord("attack", "done"))
    result = Result(summary=summary, timeline=timeline, events=events, scores=scores, scenario=setup.resolved)
    if out_path is not None:
        examples = collector.examples()
        result.run_dir = write_run_dir(out_path, setup.resolved.resolved_toml(), summary,
                                       {"timeline": timeline, "events": events, "scores": scores},
                                       {"examples": examples} if examples else None, replace_resumable=checkpointed)
    return result


def _check_checkpointable(learner: Learner, defense: Defense, attacks: dict[str, Attack]) -> None:
    """Fail before any work when a component cannot be checkpointed (it would fail at the first checkpoint)."""
    parts: list[tuple[str, Any]] = [("learner", learner), ("defense", defense)]
    parts += [(f"attack of {name}", a) for name, a in attacks.items()]
    for role, component in parts:
        require(component, Checkpointable, role)
