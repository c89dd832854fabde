"""streamsim: data-poisoning attacks and defenses on models that learn from a live stream.

Plugins import what they need from here: the protocols, the data classes and the errors.
Names that need torch (the protocols, ``Batch``, ``TargetView``, ``run``) load on first use, so
``import streamsim`` — and ``streamsim --help`` — stay fast and torch-free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from streamsim.errors import BudgetExceeded, ConfigError, DataError, PluginError, StreamsimError, ThreatModelError

if TYPE_CHECKING:
    from streamsim.base import N_CLASSES, Attack, CraftContext, Defense, Learner, Observation, SetupContext
    from streamsim.batch import Batch, Verdicts
    from streamsim.experiment import run
    from streamsim.threat import TargetView

__version__ = "0.1.0"

# name -> module that defines it; imported by __getattr__ when first asked for
_LAZY = {
    **dict.fromkeys(("N_CLASSES", "Attack", "CraftContext", "Defense", "Learner", "Observation", "SetupContext"),
                    "streamsim.base"),
    "Batch": "streamsim.batch", "Verdicts": "streamsim.batch", "TargetView": "streamsim.threat",
    "run": "streamsim.experiment",
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
    "N_CLASSES", "Attack", "Batch", "BudgetExceeded", "ConfigError", "CraftContext", "DataError", "Defense",
    "Learner", "Observation", "PluginError", "SetupContext", "StreamsimError", "TargetView", "ThreatModelError",
    "Verdicts", "run",
]
