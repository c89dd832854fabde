"""streamsim: data-poisoning attacks and defenses on models that learn from a live stream.

Plugins import what they need from here (the protocols, optional abilities, data classes, errors,
`cached_fit`, the progress factory) and from the public modules `streamsim.nn`, `streamsim.state`
and `streamsim.seeds`; see docs/plugins.md, "The plugin API".
"""

from streamsim.abilities import (
    Bounded,
    Checkpointable,
    Differentiable,
    Features,
    LabelConditioned,
    Scoring,
    VerdictBeliefs,
    has,
    require,
)
from streamsim.base import N_CLASSES, Attack, CraftContext, Defense, Learner, Observation, SetupContext
from streamsim.batch import Batch, Verdicts
from streamsim.cache import ArtifactCache, cached_fit
from streamsim.errors import BudgetExceeded, ConfigError, DataError, PluginError, StreamsimError, ThreatModelError
from streamsim.progress import ProgressFactory, silent
from streamsim.threat import TargetView

__version__ = "0.1.0"


def run(*args, **kwargs):  # noqa: ANN002, ANN003 - thin lazy alias, documented on experiment.run
    """Run a scenario; see :func:`streamsim.experiment.run`."""
    from streamsim.experiment import run as _run

    return _run(*args, **kwargs)


__all__ = [
    "N_CLASSES", "ArtifactCache", "Attack", "Batch", "Bounded", "BudgetExceeded", "Checkpointable", "ConfigError", "CraftContext",
    "DataError", "Defense", "Differentiable", "Features", "LabelConditioned", "Learner", "Observation", "PluginError",
    "ProgressFactory", "Scoring", "SetupContext", "StreamsimError", "TargetView", "ThreatModelError", "VerdictBeliefs",
    "Verdicts", "cached_fit", "has", "require", "run", "silent",
]
