"""Nested plugin settings: related settings grouped in one table, a frozen dataclass.

A plugin whose settings fall into groups (FGSM's shadow models, the adaptive attacker's policy)
takes each group as one keyword argument typed with a frozen dataclass, whose fields are the
group's settings with their defaults and whose ``__post_init__`` checks their ranges. In a
scenario the group is a TOML table (``[attackers.attack.params.shadow]`` or an inline
``shadow = { points = 500 }``); fields left out keep the plugin's defaults. The registry
validates a table's keys and types like flat settings (a typo is a one-line error naming
``shadow.pointz``) and writes the whole table, every default filled in, into the resolved scenario.

The constructor turns whatever it was handed (a table instance, a mapping of some fields, or
``None``) into the dataclass with :func:`settings_table`:

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Policy:
...     discount: float = 0.97
...     def __post_init__(self):
...         if not 0 < self.discount <= 1:
...             raise ConfigError(f"discount must be in (0, 1], got {self.discount}")
>>> settings_table(Policy, {"discount": 0.5}, "policy")
Policy(discount=0.5)
>>> settings_table(Policy, {"discount": 2.0}, "policy")
Traceback (most recent call last):
...
streamsim.core.errors.ConfigError: policy.discount must be in (0, 1], got 2.0
>>> settings_table(Policy, {"discont": 0.5}, "policy")
Traceback (most recent call last):
...
streamsim.core.errors.ConfigError: policy.discont: unknown setting (known: discount)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from streamsim.core.errors import ConfigError

T = TypeVar("T")


def settings_table(cls: type[T], value: T | Mapping[str, Any] | None, name: str, default: T | None = None) -> T:
    """``value`` as a ``cls`` table: an instance as it is, a mapping over ``default`` (or ``cls()``).

    Range errors from ``cls.__post_init__`` (messages that start with the field's name) and
    unknown keys come back as :class:`ConfigError` prefixed with ``name``.
    """
    if isinstance(value, cls):
        return value
    base = default if default is not None else cls()
    if value is None:
        return base
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name}: expected a table of settings, got {type(value).__name__}")
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in value if k not in known]
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown setting (known: {', '.join(known)})")
    try:
        return dataclasses.replace(base, **value)
    except (ConfigError, ValueError) as e:
        raise ConfigError(f"{name}.{e}") from None
