"""The import-linter contracts in pyproject.toml name every module of streamsim/, so none can slip
past the layering or reach plugins unseen; and no import chain inside streamsim/ grows past ten
modules."""

from __future__ import annotations

import ast
import tomllib
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "streamsim"
PUBLIC = {"streamsim", "streamsim.nn", "streamsim.seeds", "streamsim.state"}  # what plugins may import
MAX_CHAIN = 10


def _contracts() -> list[dict]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _children(package: Path) -> set[str]:
    return {p.stem if p.is_file() else p.name for p in package.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}


def _packages() -> dict[str, Path]:
    return {".".join(d.relative_to(REPO).parts): d for d in [PACKAGE, *PACKAGE.rglob("*")]
            if d.is_dir() and (d / "__init__.py").is_file()}


def _named_children(package: str) -> set[str]:
    """The children of ``package`` that a layers contract on it, or an independence contract, names."""
    named: set[str] = set()
    for c in _contracts():
        if c["type"] == "layers" and package in c["containers"]:
            named |= {m.strip() for layer in c["layers"] for m in layer.replace("|", ":").split(":")}
        if c["type"] == "independence":
            named |= {m.rpartition(".")[2] for m in c["modules"] if m.rpartition(".")[0] == package}
    return named


def test_the_contracts_name_every_module_of_every_package():
    # a subpackage of one module (none today) would need no contract of its own
    for name, path in _packages().items():
        assert _named_children(name) == _children(path), (
            f"{name}: unnamed {_children(path) - _named_children(name)}; stale {_named_children(name) - _children(path)}")


def test_plugins_are_forbidden_everything_but_the_public_modules():
    forbidden = next(c for c in _contracts() if c["type"] == "forbidden" and "attacks" in c["source_modules"]
                     and "rich" not in c["forbidden_modules"])
    assert forbidden["forbidden_modules"] == ["streamsim.*"]
    allowed = {i.split("->")[1].strip() for i in forbidden["ignore_imports"]}
    assert all(i.split("->")[0].strip() == "**" for i in forbidden["ignore_imports"])
    assert allowed == PUBLIC - {"streamsim"}


def _module_names() -> dict[str, Path]:
    names = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(REPO).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return names


def _imports(name: str, path: Path, names: dict[str, Path]) -> set[str]:
    """Modules of streamsim that ``name`` imports anywhere (functions included), bar annotation-only ones."""
    found: set[str] = set()

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in names:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(resolve(a.name) for a in child.names if a.name.startswith("streamsim"))
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and (child.module or "").startswith("streamsim"):
                for a in child.names:
                    full = f"{child.module}.{a.name}"
                    found.add(resolve(full) if full in names else resolve(child.module))
            visit(child)

    visit(ast.parse(path.read_text()))
    return found - {None, name}


def test_no_import_chain_inside_streamsim_is_longer_than_ten_modules():
    names = _module_names()
    edges = {n: _imports(n, p, names) for n, p in names.items()}

    @cache
    def longest(n: str) -> tuple[str, ...]:
        return max(((n, *longest(d)) for d in edges[n]), key=len, default=(n,))

    chain = max((longest(n) for n in names), key=len)
    assert len(chain) <= MAX_CHAIN, " -> ".join(chain)
