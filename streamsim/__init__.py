"""streamsim: data-poisoning attacks and defenses on models that learn from a live stream.

Plugins import what they need from here (the protocols, optional abilities, data classes — a
dataset plugin's `RawData` too — errors, `cached_fit`, the progress factory) and from the public
modules `streamsim.nn`, `streamsim.state` and `streamsim.seeds`; see docs/plugins.md, "The plugin API".
Names that need torch (the protocols, ``Batch``, ``TargetView``, ``run``) load on first use, so
``import streamsim`` — and ``streamsim --help`` — stay fast and torch-free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from streamsim.core.errors import BudgetExceeded, ConfigError, DataError, PluginError, StreamsimError, ThreatModelError

if TYPE_CHECKING:
    from streamsim.artifacts.cache import ArtifactCache, cached_fit
    from streamsim.core.abilities import (
        Bounded,
        Checkpointable,
        ClassChecked,
        CraftCost,
        Differentiable,
        Features,
        HarmProbes,
        HoldoutBoundary,
        LabelConditioned,
        Scoring,
        ShapeChecked,
        VerdictBeliefs,
        has,
        require,
    )
    from streamsim.core.base import (
        N_CLASSES,
        Attack,
        CraftContext,
        Defense,
        Learner,
        Observation,
        SetupContext,
        require_trusted,
    )
    from streamsim.core.batch import Batch, Verdicts
    from streamsim.core.probes import Probe
    from streamsim.core.progress import ProgressFactory, silent
    from streamsim.core.space import IMAGES, DataSpace
    from streamsim.data.datasets import RawData
    from streamsim.running.experiment import run
    from streamsim.scenario.tables import settings_table
    from streamsim.simulation.threat import TargetView

__version__ = "0.1.0"

# name -> module that defines it; imported by __getattr__ when first asked for
_LAZY = {
    **dict.fromkeys(("N_CLASSES", "Attack", "CraftContext", "Defense", "Learner", "Observation", "SetupContext",
                     "require_trusted"),
                    "streamsim.core.base"),
    **dict.fromkeys(("Bounded", "Checkpointable", "ClassChecked", "CraftCost", "Differentiable", "Features", "HarmProbes",
                     "HoldoutBoundary", "LabelConditioned", "Scoring", "ShapeChecked", "VerdictBeliefs", "has", "require"), "streamsim.core.abilities"),
    "Batch": "streamsim.core.batch", "Verdicts": "streamsim.core.batch", "TargetView": "streamsim.simulation.threat",
    "ArtifactCache": "streamsim.artifacts.cache", "cached_fit": "streamsim.artifacts.cache",
    "ProgressFactory": "streamsim.core.progress", "silent": "streamsim.core.progress",
    "run": "streamsim.running.experiment", "DataSpace": "streamsim.core.space", "IMAGES": "streamsim.core.space",
    "Probe": "streamsim.core.probes", "RawData": "streamsim.data.datasets", "settings_table": "streamsim.scenario.tables",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'streamsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "IMAGES", "N_CLASSES", "ArtifactCache", "DataSpace", "Attack", "Batch", "Bounded", "BudgetExceeded", "Checkpointable", "ClassChecked",
    "ConfigError", "CraftCost",
    "CraftContext", "DataError", "Defense", "Differentiable", "Features", "HarmProbes", "HoldoutBoundary", "LabelConditioned", "Learner",
    "Observation", "PluginError", "Probe", "ProgressFactory", "RawData", "Scoring", "SetupContext", "ShapeChecked", "StreamsimError", "TargetView", "ThreatModelError",
    "VerdictBeliefs", "Verdicts", "cached_fit", "has", "require", "require_trusted", "run", "settings_table", "silent",
]
