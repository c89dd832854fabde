"""Everything checked before a run starts, the same way by ``streamsim validate``, ``run``,
``--resume`` and every sweep cell; what passes is the run's :class:`Plan`.

Input is hostile until validated. A scenario that passes :func:`check` has plugins that build
with its settings, a dataset that loads, a non-empty split for every role it uses, numbers that
keep every loop finite, and folders it can write — so a run fails on bad input *before* any
training, never after it. The checks build the plugins and load the data, so :func:`check` hands
them on as the :class:`Plan` the run executes: each plugin is built once and the data loaded once
per run.

- every plugin resolves and builds with its settings (a typo is a one-line error naming the key);
- the dataset exists and loads (shapes, dtypes and labels checked by the loader);
- every split role the scenario uses has samples (``pretrain`` and ``test`` always, ``trusted``
  when a defense is fitted, ``stream`` with clean sources, ``attacker`` with attackers);
- the event count is bounded: batches of every source, evaluations and checkpoints together
  stay under :data:`MAX_EVENTS` per phase (``interval = 1e-300`` would never end);
- plugin settings that follow the naming conventions are in range, in nested tables too
  (``shadow.epochs``): learning rates (``lr``, ``*_lr``) in (0, :data:`MAX_LR`], epoch and step
  counts (``*epochs``, ``*steps``, ``steps_per_*``) integers in 0..:data:`MAX_STEPS`;
- pretraining is bounded by its cost, not by its epoch count alone: the learner's
  ``pretrain_epochs`` times the samples of the pretrain split stays under
  :data:`MAX_PRETRAIN_SAMPLES` (a million epochs of a thousand samples would never end);
- settings that name a class (a target) name one the data has (:class:`~streamsim.core.abilities.ClassChecked`),
  and crafting is bounded by its cost: gradient steps per poison × poisons stay under
  :data:`MAX_CRAFT_STEPS` (:class:`~streamsim.core.abilities.CraftCost`);
- the output folder can be written (refused), the artifact cache too (a warning, then a run
  without a cache).

>>> from streamsim.scenario.config import Scenario
>>> sc = Scenario.model_validate({"duration": 10, "clean": [{"interval": 1e-9}]})
>>> check_numbers(sc)
Traceback (most recent call last):
...
streamsim.core.errors.ConfigError: clean.0.interval: 1e-09 schedules about 1e+10 batches over duration 10, more than the limit of 1,000,000 events per run
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamsim.core.abilities import ClassChecked, CraftCost, ShapeChecked, has
from streamsim.core.base import Attack, Defense, Learner
from streamsim.core.errors import ConfigError, DataError, PluginError, ThreatModelError
from streamsim.core.space import IMAGES, accepted
from streamsim.data import tabular
from streamsim.data.datasets import RawData, npz
from streamsim.data.splits import held_out, split_sizes
from streamsim.files.folders import check_output, probe_writable
from streamsim.scenario import registry
from streamsim.scenario.config import DataConfig, Scenario
from streamsim.seeds import child_seed
from streamsim.simulation.parts.updates import check_policy
from streamsim.simulation.threat import KNOWLEDGE_LEVELS

MAX_EVENTS = 1_000_000  # scheduled wake-ups per phase: batches + evaluations + checkpoints
MAX_LR = 10.0
MAX_STEPS = 1_000_000
MAX_PRETRAIN_SAMPLES = 10_000_000  # samples the learner sees in pretraining (epochs × pretrain split): ~70× the largest built-in scenario
MAX_CRAFT_STEPS = 100_000_000  # gradient steps on single poisons per run: about a day of a CNN on a CPU core


def load_raw(cfg: DataConfig, seed: int = 0) -> RawData:
    """The dataset a scenario names: ``npz:PATH``, ``river:``/``sklearn:``/``river.synth:NAME`` (with
    ``data.params``; generators seeded from the run's ``seed``), or a registered (or allowed) loader, checked."""
    if cfg.dataset.startswith("npz:"):
        return npz(cfg.dataset[4:])
    if tabular.is_tabular(cfg.dataset):
        return tabular.load(cfg.dataset, cfg.params, child_seed(seed, "dataset"))
    if cfg.params:
        raise ConfigError(f"data.params: dataset {cfg.dataset!r} takes no params (river:, sklearn: and river.synth: datasets do)")
    loader = registry.resolve("dataset", cfg.dataset)
    try:
        raw = loader(cfg.root)
    except (OSError, ValueError) as e:  # an unreadable folder or file: bad input, not a failed run
        raise DataError(f"dataset {cfg.dataset!r}: {type(e).__name__}: {e}") from None
    if not isinstance(raw, RawData):
        raise DataError(f"dataset {cfg.dataset!r} returned {type(raw).__name__}, expected RawData")
    return raw


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
        if getattr(attack, "needs_training_data", False) and not a.training_data:  # refused before anything trains
            raise ThreatModelError(f"attackers.{i}: the attack distils on the target's training data; "
                                   "grant it with training_data = true")
        attacks[a.name] = attack
        resolved.attackers[i].attack.params = ap
    for role, obj in (("learner", learner), ("defense", defense)):
        if not isinstance(obj, (Learner if role == "learner" else Defense)):
            raise PluginError(f"{role} {getattr(scenario, role).name!r} is not a streamsim {role.capitalize()}")
    check_policy(scenario.learner.update, learner)
    return learner, defense, attacks, resolved


def _needed_roles(sc: Scenario) -> dict[str, str]:
    roles = {"pretrain": "the learner is pretrained on it", "test": "accuracy is measured on it"}
    if sc.defense.name != "none":
        roles["trusted"] = f"defense {sc.defense.name!r} is fitted on it"
    if sc.clean:
        roles["stream"] = "clean sources send it"
    if sc.attackers:
        roles["attacker"] = "attackers draw from it"
    return roles


def check_data(sc: Scenario, raw: RawData, components: dict[str, object]) -> None:
    """Every split role the scenario uses gets samples of the loaded ``raw`` data, and every
    component (``components``: role → learner, defense or attack) accepts this kind of data."""
    sizes = split_sizes(len(raw.y), sc.data.splits.model_dump(), held_out(raw))
    for role, why in _needed_roles(sc).items():
        if sizes[role] == 0:
            fraction = getattr(sc.data.splits, role)
            raise DataError(f"data.splits.{role}: {fraction:g} of {len(raw.y)} samples is none, but {why}")
    check_pretrain_cost(sc.learner.params, sizes["pretrain"])
    kind = "vectors" if raw.is_vectors else "images"
    what = f"feature vectors (d = {raw.x.shape[1]})" if raw.is_vectors else f"{'×'.join(map(str, raw.x.shape[1:]))} images"
    n_classes = raw.n_classes if raw.is_vectors else IMAGES.n_classes  # the classes the run's DataSpace will say
    for role, component in (components or {}).items():
        if kind not in accepted(component):
            raise ConfigError(f"{role}: {type(component).__name__} handles {' and '.join(accepted(component))} only, "
                              f"but dataset {sc.data.dataset!r} is {what}")
        if not raw.is_vectors and has(component, ShapeChecked):
            try:
                component.check_shape(tuple(raw.x.shape[1:]))
            except ConfigError as e:
                raise ConfigError(f"{role}.params.{e}") from None
        if has(component, ClassChecked):
            try:
                component.check_classes(n_classes)
            except ConfigError as e:
                raise ConfigError(f"{role}.params: {e} (dataset {sc.data.dataset!r} has {n_classes} classes)") from None
    if sc.data.scaling is not None and not raw.is_vectors:
        raise ConfigError(f"data.scaling: dataset {sc.data.dataset!r} is images; scaling is for feature vectors")
    if sc.data.scaling is not None and len(sc.data.scaling.lo) != raw.x.shape[1]:
        raise ConfigError(f"data.scaling: {len(sc.data.scaling.lo)} features, but {sc.data.dataset!r} has {raw.x.shape[1]}")
    for i, c in enumerate(sc.clean):
        shift = c.drift.prior_shift
        if shift is not None and len(shift.priors) != raw.n_classes:
            raise ConfigError(f"clean.{i}.drift.prior_shift.priors: {len(shift.priors)} weights, but the data has "
                              f"{raw.n_classes} classes")
        if raw.is_vectors and c.drift.rotation_per_time:
            raise ConfigError(f"clean.{i}.drift.rotation_per_time: rotation is for images; {sc.data.dataset!r} is {what}")


def check_pretrain_cost(params: dict[str, Any], samples: int) -> None:
    """The learner's ``pretrain_epochs`` over ``samples`` pretrain samples stay under :data:`MAX_PRETRAIN_SAMPLES`.

    >>> check_pretrain_cost({"pretrain_epochs": 3}, 1000)
    >>> check_pretrain_cost({"pretrain_epochs": 1_000_000}, 1000)
    Traceback (most recent call last):
    ...
    streamsim.core.errors.ConfigError: learner.params.pretrain_epochs: 1,000,000 epochs of the 1,000 pretrain samples are 1,000,000,000 sample steps, more than the limit of 10,000,000
    """
    epochs = params.get("pretrain_epochs")
    if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs * samples > MAX_PRETRAIN_SAMPLES:
        raise ConfigError(f"learner.params.pretrain_epochs: {epochs:,} epochs of the {samples:,} pretrain samples are "
                          f"{epochs * samples:,} sample steps, more than the limit of {MAX_PRETRAIN_SAMPLES:,}")


def check_numbers(sc: Scenario, checkpoint_every: float | None = None) -> None:
    """Every loop the scenario controls is finite: at most :data:`MAX_EVENTS` wake-ups a phase."""
    limit = f"more than the limit of {MAX_EVENTS:,} events per run"
    total = sc.duration / sc.eval_every + 1
    if total > MAX_EVENTS:
        raise ConfigError(f"eval_every: {sc.eval_every:g} means {total:.0e} evaluations over duration {sc.duration:g}, {limit}")
    if checkpoint_every is not None:
        if not (math.isfinite(checkpoint_every) and checkpoint_every > 0):
            raise ConfigError(f"--checkpoint-every must be a positive, finite simulated time, got {checkpoint_every}")
        saves = sc.duration / checkpoint_every
        if saves > MAX_EVENTS:
            raise ConfigError(f"--checkpoint-every {checkpoint_every:g} means {saves:.0e} checkpoints over duration "
                              f"{sc.duration:g}, {limit}")
        total += saves
    interval = getattr(sc.learner.update, "interval", None)
    if interval is not None:
        ticks = sc.duration / interval
        if ticks > MAX_EVENTS:
            raise ConfigError(f"learner.update.interval: {interval:g} means {ticks:.0e} updates over duration "
                              f"{sc.duration:g}, {limit}")
        total += ticks
    for kind, sources in (("clean", sc.clean), ("attackers", sc.attackers)):
        for i, s in enumerate(sources):
            key = f"{kind}.{i}.interval" if s.arrival == "fixed" else f"{kind}.{i}.rate"
            batches = scheduled_batches(s, sc.duration)
            if batches > MAX_EVENTS:
                value = s.interval if s.arrival == "fixed" else s.rate
                raise ConfigError(f"{key}: {value:g} schedules about {batches:.0e} batches over duration "
                                  f"{sc.duration:g}, {limit}")
            total += batches
    if total > MAX_EVENTS:
        raise ConfigError(f"sources, evaluations and checkpoints together schedule about {total:.0e} events, {limit}")


def scheduled_batches(source: Any, duration: float) -> float:
    """About how many batches a source sends over ``duration`` (its ``budget`` caps them)."""
    active = max(0.0, min(source.stop if source.stop is not None else duration, duration) - source.start)
    batches = active / source.interval + 1 if source.arrival == "fixed" else active * source.rate + 1
    if source.budget is not None:
        batches = min(batches, math.ceil(source.budget / source.batch_size))
    return batches


def check_craft_work(sc: Scenario, attacks: dict[str, object]) -> None:
    """Crafting is bounded by its cost, not by a step count alone: an attack's gradient steps per
    poison (:class:`~streamsim.core.abilities.CraftCost`) times the poisons its source sends stay under
    :data:`MAX_CRAFT_STEPS` (``steps = 1_000_000`` is a valid count, but not on every poison)."""
    for i, a in enumerate(sc.attackers):
        attack = attacks.get(f"attackers.{i}.attack")
        if not has(attack, CraftCost):
            continue
        poisons = scheduled_batches(a, sc.duration) * a.batch_size
        if a.budget is not None:
            poisons = min(poisons, a.budget)
        steps = attack.craft_steps()
        if steps * poisons > MAX_CRAFT_STEPS:
            raise ConfigError(f"attackers.{i}.attack.params: crafting takes {steps:,} gradient steps per poison × about "
                              f"{poisons:,.0f} poisons = {steps * poisons:.1e} steps, more than the limit of "
                              f"{MAX_CRAFT_STEPS:,} per run (fewer steps, or a smaller budget)")


def check_plugin_numbers(params: dict[str, Any], where: str) -> None:
    """Range checks by naming convention: learning rates, epoch and step counts.

    >>> check_plugin_numbers({"lr": 1e-3, "pretrain_epochs": 0, "steps_per_batch": 2}, "learner")
    >>> check_plugin_numbers({"pretrain_epochs": -1}, "learner")
    Traceback (most recent call last):
    ...
    streamsim.core.errors.ConfigError: learner.params.pretrain_epochs: -1 is not a count in 0..1,000,000
    >>> check_plugin_numbers({"shadow": {"lr": 0.0}}, "attack")
    Traceback (most recent call last):
    ...
    streamsim.core.errors.ConfigError: attack.params.shadow.lr: learning rate 0 is not in (0, 10]
    """
    for key, value in params.items():
        if isinstance(value, dict):  # a nested table (shadow.epochs): the same conventions inside
            check_plugin_numbers({f"{key}.{k}": v for k, v in value.items()}, where)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if key.rpartition(".")[2] == "lr" or key.endswith("_lr"):
            if not 0 < value <= MAX_LR:
                raise ConfigError(f"{where}.params.{key}: learning rate {value:g} is not in (0, {MAX_LR:g}]")
        elif (key.endswith(("epochs", "steps")) or key.rpartition(".")[2].startswith("steps_per_")) and \
                not (float(value).is_integer() and 0 <= value <= MAX_STEPS):
            raise ConfigError(f"{where}.params.{key}: {value:g} is not a count in 0..{MAX_STEPS:,}")


def usable_cache(enabled: bool) -> bool:
    """Whether to use the artifact cache: an unwritable one is a warning and a run without it."""
    if not enabled:
        return False
    from streamsim.artifacts.cache import DEFAULT_DIR, ENV_VAR

    root = Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)
    why = probe_writable(root)
    if why is not None:
        warnings.warn(f"artifact cache {root}: {why}; running without a cache (everything is trained afresh)",
                      RuntimeWarning, stacklevel=2)
        return False
    return True


@dataclass
class Plan:
    """A run as checked, ready to execute: what :func:`check` built and loaded, handed on so the
    run builds nothing and loads nothing again.

    ``scenario`` is the scenario as given; ``resolved`` has every plugin setting filled in (what a
    run directory's ``scenario.resolved.toml`` states). ``raw`` is the loaded dataset, not yet cut
    into splits; ``cache`` says whether the artifact cache can be used; ``device`` is the torch
    device ``scenario.device`` names.
    """

    scenario: Scenario
    resolved: Scenario
    learner: Learner
    defense: Defense
    attacks: dict[str, Attack]
    raw: RawData
    cache: bool
    device: str


def check(scenario: Scenario, *, out: Path | None = None, fresh: bool = True, checkpoint_every: float | None = None,
          cache: bool = True) -> Plan:
    """Everything about a run that can be known before it starts; returns the run's :class:`Plan`.

    Builds every plugin (validating its settings) and loads the dataset, once. ``out`` is the run
    folder (``fresh``: it must not hold anything yet) or, with ``fresh=False``, the folder a new
    run folder will be made in.
    """
    learner, defense, attacks, resolved = build_components(scenario)
    check_numbers(resolved, checkpoint_every)
    check_plugin_numbers(resolved.learner.params, "learner")
    check_plugin_numbers(resolved.defense.params, "defense")
    for i, a in enumerate(resolved.attackers):
        check_plugin_numbers(a.attack.params, f"attackers.{i}.attack")
    if checkpoint_every is not None and out is None:
        raise ConfigError("checkpoints need a run directory: pass out= (or drop checkpoint_every)")
    raw = load_raw(resolved.data, resolved.seed)
    components: dict[str, object] = {"learner": learner, "defense": defense}
    components.update({f"attackers.{i}.attack": attacks[a.name] for i, a in enumerate(resolved.attackers)})
    check_data(resolved, raw, components)
    check_craft_work(resolved, components)
    device = torch_device(resolved.device)
    if out is not None:
        check_output(out, fresh)
    return Plan(scenario, resolved, learner, defense, attacks, raw, usable_cache(cache), device)


def torch_device(name: str) -> str:
    """The torch device a scenario's ``device`` names: ``"auto"`` is ``"cuda"`` when torch sees a GPU.

    ``"cuda"`` without one is bad input. On a GPU this also turns on torch's deterministic settings
    (cuDNN deterministic, no autotuning, deterministic algorithms where torch has them, warning
    where it has none), which make a GPU run repeat itself on the same machine — not match the CPU.

    >>> torch_device("cpu"), torch_device("auto") in ("cpu", "cuda")
    ('cpu', True)
    """
    if name == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        raise ConfigError("device = 'cuda': torch sees no CUDA GPU on this machine (use 'cpu' or 'auto')")
    if name not in ("auto", "cuda"):
        raise ConfigError(f"device = {name!r}: expected 'auto', 'cpu' or 'cuda'")
    if not available:
        return "cpu"
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS reductions
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    return "cuda"


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads (the scenario's ``threads``), restoring the count after.

    The numbers depend on it: a sum split over two threads rounds differently from one.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
