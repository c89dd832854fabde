"""Typed errors. The library raises these; only the CLI turns them into one line and an exit code."""


class StreamsimError(Exception):
    """Base class of every error streamsim raises on purpose."""


class ConfigError(StreamsimError):
    """A scenario or an override is invalid. The message names the key path."""


class PluginError(StreamsimError):
    """A plugin reference cannot be resolved, or a plugin breaks its protocol."""


class DataError(StreamsimError):
    """A dataset is missing or malformed. The message says how to get it."""


class ThreatModelError(StreamsimError):
    """An attack asked for something its declared knowledge does not entitle it to."""


class BudgetExceeded(ThreatModelError):
    """An attacker spent more queries or submissions than the scenario allows."""
