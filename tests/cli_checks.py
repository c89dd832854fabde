"""What the CLI tests assert again and again: a refusal is one line on exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w


def one_line_exit_2(result: Any, *needles: str) -> str:
    """The one ``streamsim: error: ...`` line of a refused command (a click/typer Result); each needle in it."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("streamsim: error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def write_scenario(folder: Path, raw: dict[str, Any], name: str = "s.toml") -> Path:
    path = folder / name
    path.write_text(tomli_w.dumps(raw))
    return path
