"""Writes a run directory atomically: everything goes into a hidden temporary sibling, which is
renamed into place only when complete. An interrupted run leaves no directory that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from streamsim.atomic import write_text_atomic
from streamsim.errors import ConfigError

RUN_FILES = ("scenario.resolved.toml", "summary.json", "timeline.csv", "events.csv", "scores.csv")
OPTIONAL_RUN_FILES = ("examples.npz",)  # the first poisons and their originals, when the attack run sent any


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old content or the new one, never half of it."""
    write_text_atomic(path, text)


def check_free(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"output {out} already exists; choose another --out or remove it")


def write_run_dir(out: Path, resolved_toml: str, summary: dict[str, Any],
                  tables: dict[str, pd.DataFrame], arrays: dict[str, dict[str, np.ndarray]] | None = None) -> Path:
    check_free(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        (tmp / "scenario.resolved.toml").write_text(resolved_toml, encoding="utf-8")
        for name, frame in tables.items():
            frame.to_csv(tmp / f"{name}.csv", index=False)
        for name, named_arrays in (arrays or {}).items():  # optional extras, e.g. examples.npz
            np.savez_compressed(tmp / f"{name}.npz", **named_arrays)
        # summary.json last: its presence marks the directory complete even to a careless reader.
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
