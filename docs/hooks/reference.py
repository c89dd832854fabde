"""An MkDocs hook that writes the scenario and command-line references at build time, from the code.

``reference/scenario.md`` walks the pydantic models of :mod:`streamsim.scenario.config` (every key, its type,
default, bounds and description) and, for every registered learner, defense and attack, the model its
``params`` are validated against (:func:`streamsim.scenario.registry.settings_model`). ``reference/cli.md`` walks
the command tree of the Typer app, each option as ``--help`` shows it. Neither page is committed, so
neither can drift from the code; tests/test_docs.py checks they name every key, command and option.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Iterator
from typing import Any

import annotated_types
import tomli_w
import typer.main
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from streamsim.presentation.cli import app
from streamsim.scenario import registry
from streamsim.scenario.config import Scenario

# Where each kind's settings sit in a scenario file.
PARAMS_AT = {"learner": "learner.params", "defense": "defense.params", "attack": "attackers.attack.params"}
SHORT = 40  # characters: a table's default written out in its row, longer ones are the rows of its own keys
TOML_TYPES = {int: "integer", float: "float", str: "string", bool: "boolean", Any: "any"}
BOUNDS = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", "≥"), (annotated_types.Lt, "lt", "<"),
          (annotated_types.Le, "le", "≤"), (annotated_types.MinLen, "min_length", "length ≥"),
          (annotated_types.MaxLen, "max_length", "length ≤"))


Section = tuple[str, str, str, list[list[str]]]  # heading, its anchor, the table's docstring, one row per key


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for path, write in (("reference/scenario.md", scenario_page), ("reference/cli.md", cli_page)):
        files.append(File.generated(config, path, content=write()))
    return files


# --- the scenario file ----------------------------------------------------------------------------------
def scenario_page() -> str:
    lines = [
        "# Scenario files",
        "",
        "Every key a scenario file (TOML) may hold, generated from the models that validate it "
        "(`streamsim/scenario/config.py`). A key left out takes its default; an unknown key, or a value of the "
        "wrong type, is refused with one line naming the key. Any key can also be set from the command "
        "line with `--set key.path=value` (list items by index: `--set attackers.0.batch_size=32`).",
        "",
        "*unset* means the key is absent (TOML has no null). Types are TOML's; a *table* is `[name]` or an "
        "inline `{ ... }`, an *array of tables* is `[[name]]`.",
        "",
    ]
    for title, anchor, doc, rows in _sections(Scenario, "", None):
        lines += [f'## {title} {{ id="{anchor}" }}', ""]
        if doc:
            lines += [doc, ""]
        lines += _table(rows)
    lines += _plugin_settings()
    return "\n".join(lines)


def _sections(model: type[BaseModel], prefix: str, instance: BaseModel | None, title: str = "Top level",
              anchor: str = "top-level") -> Iterator[Section]:
    """(heading, its anchor, the model's own docstring, one row per key) for a model, then each table in it.

    The anchors are the tables' key paths (``#data.splits``, ``#learner.update.buffered``), for links
    from other pages that do not break when a heading's wording changes.

    ``instance`` is the parent's default for this table (the learner defaults to ``small-cnn``): its
    values are the keys' defaults, where they differ from the model's.
    """
    rows: list[list[str]] = []
    below: list[Section] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        default = getattr(instance, name) if instance is not None else _default(field)
        rows.append(_row(path, field, default))
        below += _nested(field, path, default)
    yield title, anchor, _doc(model), rows
    yield from below


def _nested(field: FieldInfo, path: str, default: Any) -> Iterator[Section]:
    """The sections of the tables a field holds: a table, an array of tables, or one of several kinds."""
    options = [t for t in _options(field.annotation) if t is not type(None)]
    if typing.get_origin(field.annotation) is list:
        options = list(typing.get_args(field.annotation))
        default = None  # a new [[item]] starts from the model's defaults, not from the list's default items
    tables = [t for t in options if inspect.isclass(t) and issubclass(t, BaseModel)]
    if len(tables) == 1:
        table = tables[0]
        header = f"[[{path}]]" if typing.get_origin(field.annotation) is list else f"[{path}]"
        yield from _sections(table, f"{path}.", default if isinstance(default, table) else None, f"`{header}`", path)
    elif len(tables) > 1 and field.discriminator:  # [learner.update]: the discriminator key names the kind
        for table in tables:
            kind = table.model_fields[field.discriminator].default
            if kind is PydanticUndefined:
                kind = typing.get_args(table.model_fields[field.discriminator].annotation)[0]
            yield from _sections(table, f"{path}.", None, f"`[{path}]` with `{field.discriminator} = \"{kind}\"`",
                            f"{path}.{kind}")


def _flat_rows(model: type[BaseModel], prefix: str) -> Iterator[list[str]]:
    """One row per key, each settings table's keys right after the table's own row (a plugin's settings)."""
    for name, field in model.model_fields.items():
        path, default = f"{prefix}{name}", _default(field)
        yield _row(path, field, default)
        table = next((t for t in _options(field.annotation) if inspect.isclass(t) and issubclass(t, BaseModel)), None)
        if table is not None:
            yield from _flat_rows(table, f"{path}.")


def _row(path: str, field: FieldInfo, default: Any) -> list[str]:
    return [f"`{path}`", _type(field.annotation), _show_default(default), _bounds(field), _cell(field.description or "")]


def _plugin_settings() -> list[str]:
    lines = [
        '## Plugin settings { id="plugin-settings" }',
        "",
        "The `params` table of a learner, defense or attack holds that plugin's settings: the keyword "
        "arguments of its constructor, checked against their type hints (`streamsim/scenario/registry.py`). Below, "
        "each registered plugin's settings with their defaults; a nested table groups related settings "
        "(`streamsim/scenario/tables.py`). `python -m streamsim list` lists the plugins, with third-party ones.",
        "",
    ]
    for kind, where in PARAMS_AT.items():
        for plugin in registry.available(kind):
            model = registry.settings_model(registry.resolve(kind, plugin.name))
            lines += [f'### {kind} `{plugin.name}` {{ id="{kind}-{plugin.name}" }}', "",
                      f"{_cell(plugin.description)} (`{plugin.target}`)", ""]
            if model.model_config.get("extra") == "allow":
                lines += ["It also takes keys it does not name (its constructor ends in `**kwargs`).", ""]
            rows = list(_flat_rows(model, f"{where}."))
            lines += _table(rows) if rows else ["No settings.", ""]
    return lines


def _options(hint: Any) -> tuple[Any, ...]:
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _type(hint: Any) -> str:
    names = [_one_type(t) for t in _options(hint) if t is not type(None)]
    return " or ".join(dict.fromkeys(names)) if names else "any"


def _one_type(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return ("one of " if len(args) > 1 else "") + ", ".join(f"`{_toml(a)}`" for a in args)
    if origin in (list, tuple, collections.abc.Sequence):
        inner = [a for a in args if a is not Ellipsis]
        if inner and inspect.isclass(inner[0]) and issubclass(inner[0], BaseModel):
            return "array of tables"
        return f"array of {_type(inner[0])}" if inner else "array"
    if origin in (dict, collections.abc.Mapping) or (inspect.isclass(hint) and issubclass(hint, BaseModel)):
        return "table"
    if origin is typing.Annotated:
        return _type(args[0])
    if hint in TOML_TYPES:
        return TOML_TYPES[hint]
    return f"`{getattr(hint, '__name__', str(hint))}`"


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()
    return field.default


def _show_default(value: Any) -> str:
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):  # written out when short (learner.update's { policy = "per-batch" })
        inline = _toml({k: v for k, v in value.model_dump(mode="json").items() if v is not None})
        return f"`{inline}`" if len(inline) <= SHORT else "its keys' defaults"
    if isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
        return f"{len(value)} table{'s' if len(value) > 1 else ''} with its keys' defaults"
    try:
        return f"`{_toml(value)}`"
    except (TypeError, ValueError):  # a value TOML cannot hold (a tensor default of a plugin)
        return f"`{value!r}`"


def _toml(value: Any) -> str:
    """A value as a one-line TOML literal (tomli_w writes long arrays and tables over several lines)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).strip().removeprefix("v = ")


def _bounds(field: FieldInfo) -> str:
    return ", ".join(f"{sign} {_number(getattr(m, attr))}" for m in field.metadata for cls, attr, sign in BOUNDS
                     if isinstance(m, cls))


def _number(x: float) -> str:
    if isinstance(x, int) and x >= 2**32 and x & (x - 1) == 0:
        return f"2<sup>{x.bit_length() - 1}</sup>"  # the seed's bound, 2**63
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        x = int(x)
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def _doc(model: type[BaseModel]) -> str:
    """A model's own docstring (not one it inherits); docs/hooks/docstrings.py turns its Sphinx roles into code."""
    doc = model.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(rows: list[list[str]]) -> list[str]:
    head = ["| key | type | default | bounds | description |", "| --- | --- | --- | --- | --- |"]
    return [*head, *("| " + " | ".join(row) + " |" for row in rows), ""]


# --- the command line ---------------------------------------------------------------------------------
def cli_page() -> str:
    root = typer.main.get_command(app)
    ctx = root.make_context("streamsim", [], resilient_parsing=True)
    lines = [
        "# Command line",
        "",
        "Every command and option of `streamsim` (also `python -m streamsim`), generated from the "
        "command-line app (`streamsim/presentation/cli.py`): the same text as `--help`. Errors are one line on "
        "stderr; the exit code is 0 when all went well, 1 when a run failed, 2 for bad input.",
        "",
        f"`streamsim {' '.join(root.collect_usage_pieces(ctx))}`",
        "",
        _cell(root.help or ""),
        "",
        *_options_table(root, ctx),
    ]
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        sub = command.make_context(name, [], parent=ctx, resilient_parsing=True)
        lines += [f"## streamsim {name}", "", f"`streamsim {name} {' '.join(command.collect_usage_pieces(sub))}`",
                  "", inspect.cleandoc(command.help or ""), "", *_options_table(command, sub)]
    return "\n".join(lines)


def _options_table(command: Any, ctx: Any) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            rows.append(f"| `{record[0]}` | {param.param_type_name} | {_cell(record[1])} |")
    return ["| argument or option | kind | description |", "| --- | --- | --- |", *rows, ""]

