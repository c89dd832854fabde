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
from pathlib import Path
from typing import Any

import numpy as np
import river
import torch

import streamsim
from streamsim import preflight, registry
from streamsim.base import Attack, Checkpointable, Defense, Learner, SetupContext
from streamsim.batch import Batch
from streamsim.checkpoint import (
    CheckpointError,
    find_checkpoint,
    load_checkpoint,
    records_from_state,
    records_state,
    save_checkpoint,
)
from streamsim.config import DataConfig, Scenario, load_scenario
from streamsim.data.splits import make_splits
from streamsim.errors import ConfigError, DataError, PluginError
from streamsim.progress import ProgressFactory, silent
from streamsim.records import PhaseRecord, Record
from streamsim.results import Collector, Result, json_safe
from streamsim.rundir import (
    CHECKPOINT,
    RESUMABLE,
    read_resumable,
    release_run_dir,
    reserve_run_dir,
    start_resumable,
    write_run_dir,
)
from streamsim.seeds import child_seed
from streamsim.simulator import Simulation
from streamsim.threat import KNOWLEDGE_LEVELS, TargetView


def load_data(cfg: DataConfig, seed: int) -> tuple[dict[str, Batch], str]:
    """The run's splits and a key that identifies them (for artifact caches)."""
    raw = preflight.load_raw(cfg)
    split_seed = child_seed(seed, "splits")
    fractions = cfg.splits.model_dump()
    splits = make_splits(raw, fractions, split_seed)
    for role in ("pretrain", "test"):
        if len(splits[role]) == 0:
            raise DataError(f"data.splits.{role}: no samples in this split of {raw.description}")
    key = f"{raw.description}|n={len(raw.y)}|{sorted(fractions.items())}|split_seed={split_seed}"
    return splits, key


def _make_cache(enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from streamsim.cache import ArtifactCache
    except ImportError:
        return None
    return ArtifactCache()


def build_components(scenario: Scenario) -> tuple[Learner, Defense, dict[str, Attack], Scenario]:
    """Construct every plugin (validating its settings); also returns the fully resolved scenario."""
    learner, lp = registry.build("learner", scenario.learner.name, scenario.learner.params, "learner")
    defense, dp = registry.build("defense", scenario.defense.name, scenario.defense.params, "defense")
    attacks: dict[str, Attack] = {}
    resolved = scenario.model_copy(deep=True)
    resolved.learner.params, resolved.defense.params = lp, dp
    for i, a in enumerate(scenario.attackers):
        attack, ap = registry.build("attack", a.attack.name, a.attack.params, f"attackers.{i}.attack")
        knowledge = getattr(attack, "knowledge", None)
        if knowledge not in KNOWLEDGE_LEVELS:
            raise PluginError(f"attackers.{i}.attack: knowledge {knowledge!r} is not one of {', '.join(KNOWLEDGE_LEVELS)}")
        attacks[a.name] = attack
        resolved.attackers[i].attack.params = ap
    for role, obj in (("learner", learner), ("defense", defense)):
        if not isinstance(obj, (Learner if role == "learner" else Defense)):
            raise PluginError(f"{role} {getattr(scenario, role).name!r} is not a streamsim {role.capitalize()}")
    return learner, defense, attacks, resolved


def poison_examples(simulation: Simulation, splits: dict[str, Batch], sc: Scenario) -> dict[str, np.ndarray]:
    """The run's first poisons next to the pool samples they were crafted from (``examples.npz``)."""
    if not simulation.examples:
        return {}
    pools = {a.name: splits[a.pool] for a in sc.attackers}
    poison = Batch.concat([b for b, _ in simulation.examples])
    sources = [b.source for b, _ in simulation.examples for _ in range(len(b))]
    # Crafted samples keep their base sample's id; ids are dataset indices, not positions in the pool.
    original = torch.stack([pools[src].x[int(torch.nonzero(pools[src].ids == i)[0])] for src, i in zip(sources, poison.ids, strict=True)])
    return {"poison": poison.x.numpy(), "original": original.numpy(), "label": poison.labels.numpy(),
            "true_label": poison.true_labels.numpy(), "id": poison.ids.numpy(), "source": np.array(sources),
            "accepted": torch.cat([a for _, a in simulation.examples]).numpy()}


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
    """Run a scenario and return its :class:`~streamsim.results.Result`.

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
    resolved = build_components(sc)[3]
    auto = out == "auto"
    out_path = None if out is None or auto else Path(out)
    cache = preflight.check(resolved, out=Path("runs") if auto else out_path, fresh=not auto,
                            checkpoint_every=checkpoint_every, cache=cache)
    if auto:
        out_path = reserve_run_dir(Path("runs"), sc.name, sc.seed)
    try:
        with preflight.torch_threads(sc.threads):
            return _execute(sc, out_path, cache=cache, progress=progress, on_record=on_record,
                            checkpoint_every=checkpoint_every)
    except BaseException:
        if auto and out_path is not None:
            release_run_dir(out_path)
        raise


def resume(run_dir: str | Path, *, progress: ProgressFactory = silent,
           on_record: Callable[[Record], None] | None = None) -> Result:
    """Continue a run started with ``checkpoint_every`` from its last checkpoint (or from the start,
    if it was stopped before the first one). The finished run equals an uninterrupted one."""
    run_dir = Path(run_dir)
    settings = read_resumable(run_dir)
    scenario_file = run_dir / "scenario.resolved.toml"
    try:
        edited = hashlib.sha256(scenario_file.read_bytes()).hexdigest() != settings["scenario_sha256"]
    except OSError as e:
        raise ConfigError(f"{scenario_file}: cannot read it ({e.strerror})") from None
    if edited:
        raise ConfigError(f"{scenario_file}: changed since the run started (its sha256 differs from {RESUMABLE}'s); "
                          "resume continues only the scenario it was started with")
    sc = load_scenario(scenario_file)
    cache = preflight.check(build_components(sc)[3], checkpoint_every=settings["checkpoint_every"], out=run_dir, fresh=False,
                            cache=settings["cache"])
    folder = find_checkpoint(run_dir / CHECKPOINT)
    resumed = None
    if folder is not None:
        state, meta = load_checkpoint(folder)
        if meta.get("scenario_sha256") != settings["scenario_sha256"]:
            raise CheckpointError(f"{folder}: checkpoint of another scenario than {run_dir / 'scenario.resolved.toml'}")
        resumed = state
    with preflight.torch_threads(sc.threads):
        return _execute(sc, run_dir, cache=cache, progress=progress, on_record=on_record,
                        checkpoint_every=settings["checkpoint_every"], resumed=resumed)


def _execute(sc: Scenario, out_path: Path | None, *, cache: bool, progress: ProgressFactory,
             on_record: Callable[[Record], None] | None, checkpoint_every: float | None,
             resumed: dict[str, Any] | None = None) -> Result:
    baseline = sc.baseline
    started = time.perf_counter()
    learner, defense, attacks, resolved = build_components(sc)
    splits, data_key = load_data(sc.data, sc.seed)
    artifact_cache = _make_cache(cache)
    resolved_toml = resolved.resolved_toml()
    scenario_sha = hashlib.sha256(resolved_toml.encode("utf-8")).hexdigest()
    if checkpoint_every is not None:
        assert out_path is not None
        _check_checkpointable(learner, defense, attacks)
        if resumed is None and not (out_path / RESUMABLE).exists():
            start_resumable(out_path, resolved_toml, {"checkpoint_every": checkpoint_every, "cache": cache,
                                                      "scenario_sha256": scenario_sha})

    collector = Collector(sc.metrics.window)
    history: list[Record] = []  # every record so far, saved with each checkpoint

    def sink(record: Record) -> None:
        collector(record)
        if checkpoint_every is not None:
            history.append(record)
        if on_record is not None:
            on_record(record)

    def checkpointer(phase: str) -> Callable[[dict[str, Any]], None] | None:
        if checkpoint_every is None or out_path is None:
            return None

        def save(state: dict[str, Any]) -> None:
            save_checkpoint(out_path / CHECKPOINT, {"phase": phase, "records": records_state(history), "simulation": state},
                            {"scenario_sha256": scenario_sha, "phase": phase, "time": state["time"],
                             "streamsim": streamsim.__version__})
        return save

    def setup(name: str, **extra: Any) -> SetupContext:
        return SetupContext(seed=child_seed(sc.seed, name), data_key=data_key, cache=artifact_cache,
                            progress=progress, **extra)

    phase = None
    if resumed is not None:
        phase = resumed["phase"]
        for record in records_from_state(resumed["records"]):
            sink(record)  # the collector (and a live dashboard) see the run so far
    else:
        sink(PhaseRecord("attack", "setup"))
    pre = splits["pretrain"]
    learner.pretrain(pre.x, pre.labels, setup("learner"))
    defense.fit(splits["trusted"], learner, setup("defense"))

    if baseline and phase != "attack":
        # Copy learner and defense together so a defense that holds the learner keeps holding *its* copy.
        base_learner, base_defense = copy.deepcopy((learner, defense))
        base_run = Simulation(sc, splits, base_learner, base_defense, {}, sink, run="baseline")
        if phase == "baseline":
            base_run.restore_state(resumed["simulation"])
        else:
            sink(PhaseRecord("baseline", "start", duration=sc.duration))
        base_run.run_to_end(checkpoint_every, checkpointer("baseline"))
        sink(PhaseRecord("baseline", "done"))  # a live display steps aside for the attacks' setup bars

    armed: dict[str, tuple[Attack, TargetView]] = {}
    for a in sc.attackers:
        attack = attacks[a.name]
        view = TargetView(attack.knowledge, learner, defense, a.query_budget, a.effects_proba)
        attack.prepare(setup(f"attack-setup:{a.name}", pool=splits["attacker"], view=view))
        armed[a.name] = (attack, view)
    simulation = Simulation(sc, splits, learner, defense, armed, sink, run="attack")
    if phase == "attack":
        simulation.restore_state(resumed["simulation"])
    else:
        sink(PhaseRecord("attack", "start", duration=sc.duration))
    simulation.run_to_end(checkpoint_every, checkpointer("attack"))

    timeline, events, scores = collector.tables()
    summary = collector.summary(timeline)
    held_out = simulation.test  # the fixed evaluation subset: never seen by attackers
    summary["attackers"] = {
        name: {"knowledge": attack.knowledge, "queries_used": view.queries_used,
               "submitted": next(s.sent for s in simulation.sources if s.name == name),
               **simulation.attack_metrics(name), **attack.assess(held_out.x, held_out.labels, learner, defense)}
        for name, (attack, view) in armed.items()
    }
    summary.update(scenario=sc.name, seed=sc.seed, duration=sc.duration, data=data_key, baseline=baseline,
                   versions=versions(), wall_time_s=round(time.perf_counter() - started, 3))
    summary = json_safe(summary)
    sink(PhaseRecord("attack", "done"))
    result = Result(summary=summary, timeline=timeline, events=events, scores=scores, scenario=resolved)
    if out_path is not None:
        result.run_dir = write_run_dir(out_path, resolved_toml, summary,
                                       {"timeline": timeline, "events": events, "scores": scores},
                                       {"examples": examples} if (examples := poison_examples(simulation, splits, sc)) else None,
                                       replace_resumable=checkpoint_every is not None)
    return result


def _check_checkpointable(learner: Learner, defense: Defense, attacks: dict[str, Attack]) -> None:
    """Fail before any work when a component cannot be checkpointed (it would fail at the first checkpoint)."""
    parts: list[tuple[str, Any]] = [("learner", learner), ("defense", defense)]
    parts += [(f"attack of {name}", a) for name, a in attacks.items()]
    for role, component in parts:
        if type(component).checkpoint_state is Checkpointable.checkpoint_state:
            why = getattr(component, "checkpoint_unsupported", "it has no checkpoint_state/restore_state (see docs/plugins.md)")
            raise PluginError(f"{role} {type(component).__name__} cannot be checkpointed: {why}")
