"""Finds plugins. Built-ins and third-party plugins register the same way: entry points.

Groups: ``streamsim.learners``, ``streamsim.defenses``, ``streamsim.attacks``,
``streamsim.datasets``. A scenario may also name ``package.module:attr`` directly — note that
this **imports and runs that module's code**, exactly like an entry point does.

Plugin settings are checked against the constructor's signature and type hints with pydantic,
so a typo or a wrong type is a one-line :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import typing
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Literal

from pydantic import ConfigDict, ValidationError, create_model

from streamsim.errors import ConfigError, PluginError

Kind = Literal["learner", "defense", "attack", "dataset"]
GROUPS: dict[str, str] = {
    "learner": "streamsim.learners",
    "defense": "streamsim.defenses",
    "attack": "streamsim.attacks",
    "dataset": "streamsim.datasets",
}


@dataclass(frozen=True)
class PluginInfo:
    kind: str
    name: str
    target: str
    origin: str
    description: str


def _describe(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _entry_points(kind: str) -> dict[str, Any]:
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}")
    return {ep.name: ep for ep in entry_points(group=GROUPS[kind])}


def available(kind: str) -> list[PluginInfo]:
    """Every registered plugin of a kind, with where it comes from and a one-line description."""
    out = []
    for name, ep in sorted(_entry_points(kind).items()):
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else "?"
        try:
            description = _describe(ep.load())
        except Exception as e:  # a broken third-party plugin must not break `streamsim list`
            description = f"(fails to load: {type(e).__name__}: {e})"
        out.append(PluginInfo(kind, name, ep.value, origin, description))
    return out


def resolve(kind: str, ref: str) -> Any:
    """The class or factory a reference names: a registered name, or ``module:attr``."""
    eps = _entry_points(kind)
    if ref in eps:
        try:
            return eps[ref].load()
        except Exception as e:
            raise PluginError(f"{kind} {ref!r} is registered but fails to load: {type(e).__name__}: {e}") from None
    if ":" in ref:
        module_name, _, attr = ref.partition(":")
        # Like `python -m`, look in the working directory too, so a plugin module beside the
        # scenario (examples/, a user's project) imports with the installed `streamsim` command.
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except Exception as e:
            raise PluginError(f"{kind} {ref!r}: cannot import {module_name!r}: {type(e).__name__}: {e}") from None
        try:
            obj = module
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{kind} {ref!r}: module {module_name!r} has no attribute {attr!r}") from None
        return obj
    known = ", ".join(sorted(eps)) or "none registered"
    raise PluginError(f"unknown {kind} {ref!r} (known: {known}; or use module:attr)")


def _params_model(factory: Any) -> tuple[type, bool]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    sig = inspect.signature(factory)
    fields: dict[str, Any] = {}
    open_kwargs = False
    for name, p in sig.parameters.items():
        if p.kind is p.VAR_KEYWORD:
            open_kwargs = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        default = ... if p.default is p.empty else p.default
        fields[name] = (hints.get(name, Any), default)
    config = ConfigDict(extra="allow" if open_kwargs else "forbid", arbitrary_types_allowed=True,
                        allow_inf_nan=False, strict=True)
    return create_model(f"{getattr(factory, '__name__', 'Plugin')}Params", __config__=config, **fields), open_kwargs


def check_params(factory: Any, params: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate settings against the factory's signature; return them with every default filled in."""
    model, _ = _params_model(factory)
    try:
        validated = model.model_validate(params)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        msg = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{where}.params.{key}: {msg}") from None
    return validated.model_dump()


def build(kind: str, ref: str, params: dict[str, Any], where: str) -> tuple[Any, dict[str, Any]]:
    """Construct a plugin; returns the instance and its fully resolved settings."""
    factory = resolve(kind, ref)
    if not callable(factory):
        raise PluginError(f"{where}: {ref!r} is not a class or factory")
    resolved = check_params(factory, params, where)
    try:
        instance = factory(**resolved)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}.params: {e}") from None
    return instance, resolved
