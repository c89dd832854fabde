"""Writes a run directory atomically: everything goes into a hidden temporary sibling, which is
renamed into place only when complete. An interrupted run leaves no directory that looks finished.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from streamsim.core.errors import ConfigError, DataError
from streamsim.files.atomic import write_folder_atomic, write_text_atomic
from streamsim.files.folders import check_free
from streamsim.files.reading import read_bytes, read_text

RUN_FILES = ("scenario.resolved.toml", "summary.json", "timeline.csv", "events.csv", "scores.csv")
# A run started with checkpoints: its directory holds the resolved scenario, how to resume it, and
# the checkpoint (with the previous one while a new one is being written) until the results replace them.
RESUMABLE = "resume.json"
CHECKPOINT = "checkpoint"
OPTIONAL_RUN_FILES = ("examples.npz",)  # the first poisons and their originals, when the attack run sent any
MAX_SETTINGS_BYTES = 1 << 20  # resume.json holds three settings
MAX_DOCUMENT_BYTES = 64 << 20  # summary.json, scenario.resolved.toml, sweep.json
MAX_TABLE_BYTES = 4 << 30  # a CSV table (scores.csv has a line per screened sample)
MAX_EXAMPLES_BYTES = 256 << 20  # examples.npz, unpacked: a run keeps 16 poisons and their originals
MAX_EXAMPLES = 1024
EXAMPLE_ARRAYS = ("poison", "original", "label", "true_label", "accepted")


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_NAME = 64
MAX_SIBLINGS = 1000  # runs of one scenario and seed started in the same second


def folder_name(name: str) -> str:
    """A scenario name made safe as one folder name: names are not paths.

    >>> folder_name("../../../x"), folder_name("/etc/passwd"), folder_name("quick start ✓"), folder_name("..")
    ('x', 'etc-passwd', 'quick-start', 'scenario')
    """
    return _UNSAFE.sub("-", name).strip(".-")[:MAX_NAME].strip(".-") or "scenario"


def reserve_run_dir(parent: Path, name: str, seed: int) -> Path:
    """Create and return ``parent/NAME-seedN-TIME`` (``-2``, ``-3``... if taken): never shared by two runs.

    The folder is created here, exclusively, so two runs started in the same second cannot both
    pick it; the run later fills it atomically. :func:`release_run_dir` removes it if the run fails.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = f"{folder_name(name)}-seed{seed}-{stamp}"
    parent.mkdir(parents=True, exist_ok=True)
    for i in range(1, MAX_SIBLINGS + 1):
        candidate = parent / (base if i == 1 else f"{base}-{i}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise ConfigError(f"{parent}: {MAX_SIBLINGS} runs named {base} already; pass --out")


def release_run_dir(path: Path) -> None:
    """Remove a reserved run folder that a failed run left empty."""
    with contextlib.suppress(OSError):  # not empty (a checkpointed run to resume) or already gone
        path.rmdir()


def _is_resumable(out: Path) -> bool:
    from streamsim.artifacts.checkpoint import is_checkpoint_path  # torch: `report` reads run folders without it

    return out.is_dir() and (out / RESUMABLE).is_file() and not (out / "summary.json").exists() and \
        all(p.name in ("scenario.resolved.toml", RESUMABLE) or is_checkpoint_path(p, out / CHECKPOINT) for p in out.iterdir())


def start_resumable(out: Path, resolved_toml: str, settings: dict[str, Any]) -> None:
    """Open the run directory of a checkpointed run: the scenario and the settings to resume it with."""
    check_free(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "scenario.resolved.toml", resolved_toml)
    write_text_atomic(out / RESUMABLE, json.dumps(settings, indent=2))


def read_resumable(out: Path) -> dict[str, Any]:
    """The settings of a checkpointed run that has not finished. :class:`ConfigError` otherwise."""
    if (out / "summary.json").exists():
        raise ConfigError(f"{out} is a finished run: nothing to resume")
    if not (out / RESUMABLE).is_file():
        raise ConfigError(f"{out} is not a run started with --checkpoint-every (no {RESUMABLE})")
    try:
        settings = json.loads(read_text(out / RESUMABLE, MAX_SETTINGS_BYTES))
        every, cache, sha = settings["checkpoint_every"], settings["cache"], settings["scenario_sha256"]
        if isinstance(every, bool) or not isinstance(every, int | float) or not 0 < every < float("inf"):
            raise ValueError(f"checkpoint_every {every!r} is not a positive number")
        if not isinstance(cache, bool):
            raise ValueError(f"cache {cache!r} is not true or false")
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ValueError("scenario_sha256 is not a sha256")
        return {"checkpoint_every": float(every), "cache": cache, "scenario_sha256": sha}
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise ConfigError(f"{out / RESUMABLE}: cannot read it ({type(e).__name__}: {e})") from None


def write_run_dir(out: Path, resolved_toml: str, summary: dict[str, Any],
                  tables: dict[str, pd.DataFrame], arrays: dict[str, dict[str, np.ndarray]] | None = None,
                  replace_resumable: bool = False) -> Path:
    """Write the results; with ``replace_resumable``, they replace a checkpointed run's directory."""
    resumable = replace_resumable and _is_resumable(out)
    if not resumable:
        check_free(out)

    def fill(tmp: Path) -> None:
        (tmp / "scenario.resolved.toml").write_text(resolved_toml, encoding="utf-8")
        for name, frame in tables.items():
            frame.to_csv(tmp / f"{name}.csv", index=False)
        for name, named_arrays in (arrays or {}).items():  # optional extras, e.g. examples.npz
            np.savez_compressed(tmp / f"{name}.npz", **named_arrays)
        # summary.json last: its presence marks the directory complete even to a careless reader.
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")

    # A checkpointed run's directory waits in a hidden sibling until the results are in its place:
    # a kill between the two renames leaves the checkpoint there, never a half-written run.
    write_folder_atomic(out, fill, previous=out.with_name(f".{out.name}.resumable"))
    return out


# --- reading what a run or a sweep wrote: the one home; each refusal is a DataError naming the file ---
def read_json(path: Path) -> Any:
    """A JSON document (``summary.json``, ``sweep.json``) of at most :data:`MAX_DOCUMENT_BYTES`."""
    return _read_document(path, json.loads, "JSON")


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML document (``scenario.resolved.toml``) of at most :data:`MAX_DOCUMENT_BYTES`."""
    return _read_document(path, tomllib.loads, "TOML")


def _read_document(path: Path, parse: Callable[[str], Any], kind: str) -> Any:
    try:
        return parse(read_text(path, MAX_DOCUMENT_BYTES))
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or type(e).__name__})") from None
    except (ValueError, RecursionError) as e:
        raise DataError(f"{path}: not valid {kind} ({type(e).__name__}: {e})") from None


def read_table(path: Path, numeric: Callable[[str], bool], required: Iterable[str] = ()) -> pd.DataFrame:
    """A CSV table, checked: the ``required`` columns are there and every column ``numeric`` names holds
    numbers (or nothing), so no figure is ever drawn from text. An empty file is an empty table (a run
    without events).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "timeline.csv"
    >>> _ = path.write_text("time,accuracy\\n0,0.9\\n1,lots\\n")
    >>> read_table(path, numeric=lambda c: True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamsim.core.errors.DataError: .../timeline.csv: column 'accuracy' holds text ('lots'), not numbers
    """
    try:
        data = read_bytes(path, MAX_TABLE_BYTES)
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or type(e).__name__})") from None
    if not data.strip():
        return pd.DataFrame()
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise DataError(f"{path}: cannot read it as CSV ({type(e).__name__}: {e})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)}; not a table streamsim wrote")
    for column in frame.columns:
        if numeric(str(column)) and not pd.api.types.is_numeric_dtype(frame[column]):
            values = frame[column].dropna()
            bad = values[pd.to_numeric(values, errors="coerce").isna()]
            raise DataError(f"{path}: column {str(column)!r} holds text ({str(bad.iloc[0])[:40] if len(bad) else ''!r}), "
                            "not numbers")
    return frame


def read_examples(path: Path) -> dict[str, np.ndarray]:
    """``examples.npz``, checked: a zip of plain arrays (never pickles), :data:`MAX_EXAMPLES_BYTES` at most
    once unpacked, with the :data:`EXAMPLE_ARRAYS` of one length, at most :data:`MAX_EXAMPLES`."""
    try:
        data = read_bytes(path, MAX_EXAMPLES_BYTES)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:  # sizes first: a small file may unpack to gigabytes
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_EXAMPLES_BYTES:
            raise DataError(f"{path}: unpacks to {unpacked:,} bytes, more than the limit of {MAX_EXAMPLES_BYTES:,}")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except DataError:
        raise
    except Exception as e:  # BadZipFile, EOFError, zlib.error, ValueError (pickled objects), OSError...
        raise DataError(f"{path}: cannot read it as an .npz archive ({type(e).__name__}: {e})") from None
    missing = [k for k in EXAMPLE_ARRAYS if k not in arrays]
    if missing:
        raise DataError(f"{path}: no array {', '.join(missing)}; not the examples of a run")
    lengths = {len(arrays[k]) if arrays[k].ndim else -1 for k in EXAMPLE_ARRAYS}
    if len(lengths) != 1 or -1 in lengths or lengths.pop() > MAX_EXAMPLES:
        raise DataError(f"{path}: arrays {', '.join(EXAMPLE_ARRAYS)} must have one length of at most {MAX_EXAMPLES}")
    for k in EXAMPLE_ARRAYS:
        if not (np.issubdtype(arrays[k].dtype, np.number) or arrays[k].dtype == np.bool_):
            raise DataError(f"{path}: array {k} holds {arrays[k].dtype}, not numbers")
    if arrays["poison"].ndim < 2 or arrays["poison"].shape != arrays["original"].shape:
        raise DataError(f"{path}: poison and original must be samples of one shape, got {arrays['poison'].shape} "
                        f"and {arrays['original'].shape}")
    return arrays
