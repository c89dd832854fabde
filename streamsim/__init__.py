"""streamsim: data-poisoning attacks and defenses on models that learn from a live stream.

Plugins import what they need from here: the protocols, the data classes and the errors.
"""

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
    "N_CLASSES", "ArtifactCache", "Attack", "Batch", "BudgetExceeded", "ConfigError", "CraftContext", "DataError",
    "Defense", "Learner", "Observation", "PluginError", "ProgressFactory", "SetupContext", "StreamsimError",
    "TargetView", "ThreatModelError", "Verdicts", "cached_fit", "run", "silent",
]
