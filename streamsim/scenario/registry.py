"""Finds plugins. Built-ins and third-party plugins register the same way: entry points.

Groups: ``streamsim.learners``, ``streamsim.defenses``, ``streamsim.attacks``,
``streamsim.datasets``.

**Trust model.** Installing a package is the act of trust: only installed entry points load by
default. A scenario may also name ``package.module:attr``, but a scenario file is input, and input
is hostile until validated — so such a reference resolves only when the *user* allowed its module,
with ``--allow-import MODULE`` (``-p``) on the command line, ``STREAMSIM_ALLOW_IMPORT=mod1,mod2`` in
the environment, or :func:`allow_import` in Python. The scenario alone can never import anything,
and the current directory is never put on ``sys.path``. A resolved reference is type-checked
before anything is called: a learner, defense or attack must be a class derived from
:class:`~streamsim.Learner` / :class:`~streamsim.Defense` / :class:`~streamsim.Attack`. Datasets
load only from registered loaders (or ``npz:PATH``, which is data, not code).

>>> resolve("defense", "os:system")
Traceback (most recent call last):
...
streamsim.core.errors.PluginError: defense 'os:system': module 'os' is not allowed to be imported (module:attr references run code; allow it with --allow-import os or STREAMSIM_ALLOW_IMPORT=os)
>>> with allow_import("os"):
...     resolve("defense", "os:system")
Traceback (most recent call last):
...
streamsim.core.errors.PluginError: defense 'os:system' is a builtin_function_or_method, not a class derived from streamsim.Defense

Plugin settings are checked against the constructor's signature and type hints with pydantic,
so a typo or a wrong type is a one-line :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import os
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from streamsim.core.errors import ConfigError, PluginError

Kind = Literal["learner", "defense", "attack", "dataset"]
GROUPS: dict[str, str] = {
    "learner": "streamsim.learners",
    "defense": "streamsim.defenses",
    "attack": "streamsim.attacks",
    "dataset": "streamsim.datasets",
}
ALLOW_ENV = "STREAMSIM_ALLOW_IMPORT"
_allowed: set[str] = set()  # modules allowed in this process by allow_import()


@dataclass(frozen=True)
class PluginInfo:
    kind: str
    name: str
    target: str
    origin: str
    description: str


def _entry_points(kind: str) -> dict[str, Any]:
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}")
    return {ep.name: ep for ep in entry_points(group=GROUPS[kind])}


def _source_file(module_name: str) -> str | None:
    """The ``.py`` file of a dotted module, found without importing it or its parent packages.

    ``importlib.util.find_spec("pkg.sub")`` imports ``pkg`` first, and a plugin package's
    ``__init__`` may import torch.
    """
    top, *rest = module_name.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None:
        return None
    if not rest:
        return spec.origin if spec.origin and spec.origin.endswith(".py") else None
    for location in spec.submodule_search_locations or []:
        path = Path(location, *rest[:-1])
        for candidate in (path / f"{rest[-1]}.py", path / rest[-1] / "__init__.py"):
            if candidate.is_file():
                return str(candidate)
    return None


def _static_description(target: str, hops: int = 3) -> str:
    """The first docstring line of ``module:attr``, read from the source without importing it.

    ``streamsim list`` must stay fast (no torch import) and must not run any plugin's code. A name
    a package re-exports (``from pkg.mod import Name`` in its ``__init__``) is followed to the
    module that defines it, at most ``hops`` times.
    """
    module_name, _, attr = target.partition(":")
    try:
        origin = _source_file(module_name)
        if origin is None:
            return ""
        with open(origin, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (ImportError, ValueError, OSError, SyntaxError, UnicodeDecodeError):
        return ""
    first = attr.split(".")[0]
    if hops > 0 and not any(isinstance(n, ast.ClassDef | ast.FunctionDef) and n.name == first for n in tree.body):
        for n in tree.body:
            if isinstance(n, ast.ImportFrom) and n.module and n.level == 0 and any(a.name == first and a.asname is None
                                                                                  for a in n.names):
                return _static_description(f"{n.module}:{attr}", hops - 1)
    node: Any = tree
    for part in attr.split("."):
        node = next((n for n in getattr(node, "body", []) if isinstance(n, ast.ClassDef | ast.FunctionDef)
                     and n.name == part), None)
        if node is None:
            return ""
    doc = (ast.get_docstring(node) or "").strip()
    # reST's ``code`` as Markdown's `code`: the line is read in a terminal and on the docs site
    return doc.splitlines()[0].replace("``", "`") if doc else ""


def available(kind: str) -> list[PluginInfo]:
    """Every registered plugin of a kind, with where it comes from and a one-line description.

    Nothing is imported: descriptions are read from the plugins' source.
    """
    out = []
    for name, ep in sorted(_entry_points(kind).items()):
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else "?"
        out.append(PluginInfo(kind, name, ep.value, origin, _static_description(ep.value) or "(no description)"))
    return out


def allowed_modules() -> frozenset[str]:
    """Modules the user allowed ``module:attr`` references to import (flag, environment, Python)."""
    from_env = {m.strip() for m in os.environ.get(ALLOW_ENV, "").split(",") if m.strip()}
    return frozenset(_allowed | from_env)


@contextlib.contextmanager
def allow_import(*modules: str) -> Iterator[None]:
    """Allow ``module:attr`` references into these modules (and their submodules) for a while.

    The Python counterpart of ``--allow-import``; the environment variable ``STREAMSIM_ALLOW_IMPORT``
    (comma-separated) does the same and reaches sweep workers.
    """
    added = {m for m in modules if m not in _allowed}
    _allowed.update(added)
    try:
        yield
    finally:
        _allowed.difference_update(added)


def _is_allowed(module_name: str) -> bool:
    return any(module_name == m or module_name.startswith(m + ".") for m in allowed_modules())


def _expected_base(kind: str) -> type | None:
    from streamsim.core.base import Attack, Defense, Learner

    return {"learner": Learner, "defense": Defense, "attack": Attack}.get(kind)


def check_kind(kind: str, ref: str, obj: Any) -> Any:
    """``obj`` if it is the right sort of thing for ``kind``; :class:`PluginError` otherwise. Calls nothing."""
    base = _expected_base(kind)
    if base is not None:
        if not (inspect.isclass(obj) and issubclass(obj, base)):
            raise PluginError(f"{kind} {ref!r} is a {type(obj).__name__}, not a class derived from streamsim.{base.__name__}")
    elif not inspect.isfunction(obj):
        raise PluginError(f"{kind} {ref!r} is a {type(obj).__name__}, not a loader function load(root) -> RawData")
    return obj


def resolve(kind: str, ref: str) -> Any:
    """The class (or dataset loader) a reference names: a registered name, or an allowed ``module:attr``.

    Type-checked before it is returned, and nothing in it is called.
    """
    eps = _entry_points(kind)
    if ref in eps:
        try:
            obj = eps[ref].load()
        except Exception as e:
            raise PluginError(f"{kind} {ref!r} is registered but fails to load: {type(e).__name__}: {e}") from None
        return check_kind(kind, ref, obj)
    if ":" in ref and kind == "dataset":
        raise PluginError(f"dataset {ref!r}: datasets load only from registered loaders (entry-point group "
                          f"{GROUPS['dataset']}) or npz:PATH; known: {', '.join(sorted(eps)) or 'none'}")
    if ":" in ref:
        module_name, _, attr = ref.partition(":")
        if not module_name or not attr or not all(p.isidentifier() for p in [*module_name.split("."), *attr.split(".")]):
            raise PluginError(f"{kind} {ref!r}: expected package.module:attr")
        if not _is_allowed(module_name):
            raise PluginError(f"{kind} {ref!r}: module {module_name!r} is not allowed to be imported (module:attr "
                              f"references run code; allow it with --allow-import {module_name} or {ALLOW_ENV}={module_name})")
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
        return check_kind(kind, ref, obj)
    known = ", ".join(sorted(eps)) or "none registered"
    raise PluginError(f"unknown {kind} {ref!r} (known: {known}; or an allowed module:attr)")


# strict: TOML is typed, so "32" for a number is a mistake to report, not to coerce
_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False, strict=True)


def _own_parameters(factory: Any) -> tuple[list[tuple[inspect.Parameter, Any]], bool]:
    """The settings a factory takes, with their type hints, and whether it takes any keyword at all.

    A class whose ``__init__`` ends in ``**settings`` passed on to its base class (``PGD(FGSM)``)
    takes its base's settings too: they are collected along the MRO until an ``__init__`` without
    ``**``, so a subclass shares its base's settings, defaults and checks instead of repeating them.
    """
    is_class = inspect.isclass(factory)
    owners = [c for c in factory.__mro__ if "__init__" in vars(c) and c is not object] if is_class else [factory]
    found: list[tuple[inspect.Parameter, Any]] = []
    open_kwargs = False
    for owner in owners or [factory]:
        target = owner.__init__ if is_class and owners else owner
        try:
            hints = typing.get_type_hints(target)
        except Exception:
            hints = {}
        parameters = list(inspect.signature(target).parameters.values())
        open_kwargs = False
        for p in parameters[1:] if target is not owner else parameters:  # an __init__'s first is self
            if p.kind is p.VAR_KEYWORD:
                open_kwargs = True
            elif p.kind is not p.VAR_POSITIONAL and p.name not in {q.name for q, _ in found}:
                found.append((p, hints.get(p.name, Any)))
        if not open_kwargs:
            break
    return found, open_kwargs


def _table_class(hint: Any) -> type | None:
    """The settings dataclass a hint names (``ShadowSettings`` or ``ShadowSettings | Mapping``), if any."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    tables = [t for t in options if inspect.isclass(t) and dataclasses.is_dataclass(t)]
    return tables[0] if len(tables) == 1 else None


def _field(hint: Any, default: Any) -> tuple[Any, Any]:
    """A pydantic field; a settings dataclass becomes a nested model whose defaults are ``default``'s."""
    table = _table_class(hint)
    if table is None:
        return hint, default
    base = default if isinstance(default, table) else None
    hints = typing.get_type_hints(table)
    fields = {}
    for f in dataclasses.fields(table):
        if not f.init:
            continue
        if base is not None:
            value = getattr(base, f.name)
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = ...
        fields[f.name] = _field(hints.get(f.name, Any), value)
    model = create_model(f"{table.__name__}Table", __config__=_CONFIG, **fields)
    if default is None:
        return model | None, None
    return model, ... if default is ... else model()  # the fields' defaults are already the plugin's


def settings_model(factory: Any) -> type[BaseModel]:
    """The pydantic model a plugin's settings (its scenario ``params``) are validated against.

    One field per constructor argument, a nested model per settings table; it allows extra keys when
    the constructor ends in ``**kwargs``. The docs' scenario reference lists its fields.
    """
    parameters, open_kwargs = _own_parameters(factory)
    fields = {p.name: _field(hint, ... if p.default is p.empty else p.default) for p, hint in parameters}
    config = _CONFIG if not open_kwargs else ConfigDict(**{**_CONFIG, "extra": "allow"})
    return create_model(f"{getattr(factory, '__name__', 'Plugin')}Params", __config__=config, **fields)


def check_params(factory: Any, params: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate settings against the factory's signature; return them with every default filled in.

    A setting typed with a dataclass is a nested table (:mod:`streamsim.scenario.tables`), checked key by key.
    A factory's ``renamed`` (old key → new dotted key) turns a setting it no longer takes into a
    one-line error that gives the new spelling.
    """
    for old, new in getattr(factory, "renamed", {}).items():
        if old in params:
            raise ConfigError(f"{where}.params.{old} is now {where}.params.{new}")
    params = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v
              for k, v in params.items()}
    model = settings_model(factory)
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
    factory = resolve(kind, ref)  # a type-checked class: constructing it is the first call into plugin code
    resolved = check_params(factory, params, where)
    try:
        instance = factory(**resolved)
    except (TypeError, ValueError, ConfigError) as e:  # a range check in the constructor: name where
        raise ConfigError(f"{where}.params: {e}") from None
    return instance, resolved
