"""The plugin guide's API is what `streamsim` exports: every name docs/plugins.md tells a plugin to
import from `streamsim` is there, and every optional ability the simulator checks is documented."""

from __future__ import annotations

import re

import streamsim
from streamsim.core import abilities

from .conftest import REPO


def _section(title: str) -> str:
    text = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_every_name_the_guide_imports_from_streamsim_is_exported():
    api = _section("The plugin API")
    row = next(line for line in api.splitlines() if line.startswith("| `streamsim` |"))
    names = set(re.findall(r"`(\w+)`", row)) - {"streamsim"}
    names |= set(re.findall(r"^\| `(\w+)` \|", api, flags=re.M)) - {"streamsim"}  # the abilities table
    names |= set(re.findall(r"streamsim\.(\w+)", _section("A dataset"))) - {"data"}
    assert {"RawData", "HoldoutBoundary", "Learner", "Probe"} <= names  # the parsing found the tables
    missing = sorted(n for n in names if n not in streamsim.__all__ and not hasattr(streamsim, n))
    assert not missing, f"docs/plugins.md names {missing}, which `streamsim` does not export"
    assert all(getattr(streamsim, n) is not None for n in names if n in streamsim.__all__)


def test_every_optional_ability_is_exported_and_in_the_guide():
    api = _section("The plugin API")
    protocols = [name for name, obj in vars(abilities).items()
                 if isinstance(obj, type) and getattr(obj, "_is_runtime_protocol", False)]
    assert "HoldoutBoundary" in protocols
    for name in protocols:
        assert name in streamsim.__all__ and getattr(streamsim, name) is getattr(abilities, name)
        assert f"| `{name}` |" in api, f"docs/plugins.md's abilities table lacks {name}"
