"""What the tests of the README and the docs pages read from them: fenced blocks, and the experiment
scripts that print their results tables."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
# a fenced block with a language, indented or not (inside a list item), and the HTML comment on the line before it
BLOCK = re.compile(r"^(?P<indent>[ ]*)(?:<!--(?P<note>[^>]*)-->\n[ ]*)?```(?P<lang>[a-z]+)\n(?P<body>.*?)^[ ]*```$",
                   re.S | re.M)


def blocks(text: str) -> list[tuple[str, str, str]]:
    """(language, body, the comment before it) of every fenced block with a language."""
    return [(m["lang"], m["body"], (m["note"] or "").strip()) for m in BLOCK.finditer(text)]


def experiment(name: str) -> ModuleType:
    """``experiments/NAME.py`` as a module (the experiments are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
