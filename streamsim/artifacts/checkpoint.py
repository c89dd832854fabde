"""Run checkpoints on disk: a state tree stored as safetensors (every tensor) plus JSON (the rest).

A *state tree* is what components return from ``checkpoint_state()``: dicts with string keys,
lists, tensors, numpy arrays, and plain ``None`` / bool / int / float / str. Nothing else is
accepted — no pickled objects, so loading a checkpoint can never execute code.

A checkpoint is a folder written atomically (a temporary sibling, fsynced, renamed into place;
the previous checkpoint is replaced only once the new one is complete):

- ``state.safetensors``: the tensors, under their path in the tree (``learner/model/0.weight``);
- ``state.json``: the tree with ``{"__tensor__": key}`` / ``{"__array__": key}`` in place of
  tensors and arrays, and a manifest: format version, the sha256 of the tensor file, every
  tensor's shape and dtype, and caller metadata (the scenario's hash, the simulated time).

Loading checks all of it; any mismatch is a :class:`CheckpointError` naming the file and the
problem.

A run's records go beside the state, in a :class:`RecordLog`: at each checkpoint only the records
emitted since the previous one are written, as a new numbered segment (itself a checkpoint folder),
and the state's metadata lists the segments it continues from with their digests. Saving costs the
same at every checkpoint however long the run has gone, so a run's total checkpoint cost grows
linearly with its length (``benchmarks/bench_checkpoint.py``).

>>> import tempfile, torch
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp()) / "checkpoint"
>>> _ = save_checkpoint(folder, {"w": torch.ones(2), "step": 3, "rng": {"seed": 2**70}}, {"time": 1.5})
>>> state, meta = load_checkpoint(folder)
>>> state["w"].tolist(), state["step"], state["rng"]["seed"] == 2**70, meta["time"]
([1.0, 1.0], 3, True, 1.5)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamsim.core.errors import StreamsimError
from streamsim.core.records import RECORD_TYPES, Record, ScreenRecord
from streamsim.files import tensorfile
from streamsim.files.atomic import partial_prefix, write_folder_atomic
from streamsim.files.reading import read_bytes

FORMAT_VERSION = 2  # 2: records in an append-only RecordLog beside the state
TENSORS = "state.safetensors"
TREE = "state.json"
MAX_BYTES = 16 << 30  # of either file: far above any run's state; a larger "checkpoint" is not one


class CheckpointError(StreamsimError):
    """A checkpoint cannot be written or read back (missing, corrupt, or from another scenario)."""


# --- state trees ---------------------------------------------------------------------------------
def flatten(tree: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a state tree into a JSON-able tree and a flat ``{path: tensor}`` dict."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().cpu().contiguous().clone()
            return {"__tensor__": path}
        if isinstance(value, np.ndarray):
            tensors[path] = torch.from_numpy(np.ascontiguousarray(value).copy())
            return {"__array__": path}
        if isinstance(value, dict):
            bad = [k for k in value if not isinstance(k, str)]
            if bad:
                raise CheckpointError(f"state at {path or '/'}: key {bad[0]!r} is not a string")
            return {k: walk(v, f"{path}/{k}" if path else k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v, f"{path}/{i}") for i, v in enumerate(value)]
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise CheckpointError(f"state at {path or '/'}: {type(value).__name__} cannot be checkpointed "
                              "(only tensors, arrays, numbers, strings, lists and dicts)")

    return walk(tree, ""), tensors


def unflatten(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            return tensors[tree["__tensor__"]]
        if set(tree) == {"__array__"}:
            return tensors[tree["__array__"]].numpy()
        return {k: unflatten(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    return tree


# --- on disk -------------------------------------------------------------------------------------
def _previous(folder: Path) -> Path:
    """Where the previous checkpoint waits while a new one is moved into place."""
    return folder.with_name(f".{folder.name}.old")


def is_checkpoint_path(path: Path, folder: Path) -> bool:
    """Whether ``path`` is the checkpoint ``folder`` or something saving it leaves beside it."""
    return path.name in (folder.name, _previous(folder).name, _records_folder(folder).name) or \
        path.name.startswith(partial_prefix(folder))


def save_checkpoint(folder: Path, state: Any, meta: dict[str, Any]) -> str:
    """Write ``state`` (a state tree) and ``meta`` (JSON) to ``folder`` atomically; returns the
    sha256 of its ``state.json`` (which holds the tensor file's), for :func:`load_checkpoint`'s ``sha256``."""
    tree, tensors = flatten(state)
    blob, packed = tensorfile.pack(tensors or {"__empty__": torch.zeros(0)})
    # state_sha256: a hand-edited state.json is refused, not half-used
    manifest = {"format": FORMAT_VERSION, **packed, "state_sha256": _tree_sha256(tree, meta)}
    document = json.dumps({"manifest": manifest, "meta": meta, "state": tree})

    def fill(tmp: Path) -> None:
        (tmp / TENSORS).write_bytes(blob)
        (tmp / TREE).write_bytes(document.encode("utf-8"))

    write_folder_atomic(folder, fill, previous=_previous(folder))  # keeps the previous one until the new one is in
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def _tree_sha256(tree: Any, meta: Any) -> str:
    return hashlib.sha256(json.dumps({"meta": meta, "state": tree}, sort_keys=True).encode("utf-8")).hexdigest()


def find_checkpoint(folder: Path) -> Path | None:
    """The checkpoint folder to resume from: ``folder``, or the previous one if a save was cut short."""
    old = _previous(folder)
    if folder.is_dir():
        return folder
    return old if old.is_dir() else None


def load_checkpoint(folder: Path, sha256: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Read and verify a checkpoint: ``(state tree, meta)``; with ``sha256``, its ``state.json``
    must have that digest too. Raises :class:`CheckpointError`."""
    where = folder / TREE
    try:
        text = read_bytes(folder / TREE, MAX_BYTES)  # regular files only: a FIFO there must not hang resume
        blob = read_bytes(folder / TENSORS, MAX_BYTES)
        if sha256 is not None and hashlib.sha256(text).hexdigest() != sha256:
            raise CheckpointError(f"{where}: checksum mismatch (not the segment the checkpoint names)")
        document = json.loads(text.decode("utf-8"))
    except FileNotFoundError as e:
        raise CheckpointError(f"checkpoint {folder}: missing {Path(e.filename).name}") from None
    except OSError as e:
        raise CheckpointError(f"{e.filename or where}: cannot read it ({e.strerror or type(e).__name__})") from None
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"{where}: not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(document, dict) or not {"manifest", "meta", "state"} <= set(document):
        raise CheckpointError(f"{where}: not a streamsim checkpoint (no manifest, meta and state)")
    manifest = document["manifest"]
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{where}: checkpoint format {manifest.get('format') if isinstance(manifest, dict) else '?'}"
                              f" is not {FORMAT_VERSION}")
    if _tree_sha256(document["state"], document["meta"]) != manifest.get("state_sha256"):
        raise CheckpointError(f"{where}: checksum mismatch (the state or its metadata was edited)")
    try:
        tensors = tensorfile.unpack(blob, manifest)
    except tensorfile.TensorFileError as e:
        raise CheckpointError(f"{folder / TENSORS}: {e}") from None
    tensors.pop("__empty__", None)
    try:
        state = unflatten(document["state"], tensors)
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{where}: refers to a tensor the file does not hold ({e})") from None
    meta = document["meta"]
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: meta is not an object")
    return state, meta


# --- records -------------------------------------------------------------------------------------
_RECORD_TYPES = {cls.__name__: cls for cls in RECORD_TYPES}
_SCREEN_ARRAYS = ("scores", "is_poison", "accept", "correct", "labels")


def records_state(records: list[Record]) -> dict[str, Any]:
    """The records a run emitted so far, as a state tree. Screen records (most of them) are stored as
    columns, their per-sample arrays concatenated, so a checkpoint holds a few tensors, not thousands."""
    screens = [r for r in records if isinstance(r, ScreenRecord)]
    columns: dict[str, Any] = {f.name: [getattr(r, f.name) for r in screens]
                               for f in fields(ScreenRecord) if f.name not in _SCREEN_ARRAYS}
    for name in _SCREEN_ARRAYS:
        parts = [getattr(r, name) for r in screens]
        columns[name] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32 if name == "scores" else bool)
    others = [{"type": type(r).__name__, **{f.name: getattr(r, f.name) for f in fields(r)}}
              for r in records if not isinstance(r, ScreenRecord)]
    return {"order": [type(r).__name__ for r in records], "screen": columns, "other": others}


def records_from_state(state: dict[str, Any]) -> list[Record]:
    """Inverse of :func:`records_state`, in the original order."""
    columns = state["screen"]
    scalar_names = [f.name for f in fields(ScreenRecord) if f.name not in _SCREEN_ARRAYS]
    sizes = [int(n) for n in columns["n"]]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    screens = iter(
        ScreenRecord(**{name: columns[name][i] for name in scalar_names},
                     **{name: np.asarray(columns[name][offsets[i]:offsets[i + 1]]).copy() for name in _SCREEN_ARRAYS})
        for i in range(len(sizes)))
    others = iter(state["other"])
    out: list[Record] = []
    for kind in state["order"]:
        if kind == "ScreenRecord":
            out.append(next(screens))
        else:
            entry = dict(next(others))
            cls = _RECORD_TYPES[entry.pop("type")]
            out.append(cls(**entry))
    return out


def _records_folder(folder: Path) -> Path:
    return folder.with_name(f"{folder.name}.records")


class RecordLog:
    """The records of a checkpointed run, saved incrementally beside its checkpoint ``folder``.

    :meth:`append` collects records; :meth:`flush` writes those collected since the last flush
    as segment ``<folder>.records/<n>/`` and returns the list of every segment's digest, which
    the caller stores in the checkpoint it writes next. :meth:`load` reads the segments such a
    list names, verified, so a segment written by a checkpoint that never completed is ignored
    (and overwritten by the next flush).

    >>> import tempfile
    >>> from streamsim.core.records import PhaseRecord
    >>> log = RecordLog(Path(tempfile.mkdtemp()) / "checkpoint")
    >>> log.append(PhaseRecord("attack", "start"))
    >>> first = log.flush()
    >>> log.append(PhaseRecord("attack", "done"))
    >>> both = log.flush()
    >>> [r.phase for r in RecordLog(log.folder).load(both)], len(first)
    (['start', 'done'], 1)
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pending: list[Record] = []
        self.segments: list[str] = []

    def append(self, record: Record) -> None:
        self.pending.append(record)

    def flush(self) -> list[str]:
        """Write the pending records as the next segment; the digests of all segments so far."""
        where = _records_folder(self.folder) / f"{len(self.segments):06d}"
        self.segments.append(save_checkpoint(where, records_state(self.pending), {"records": len(self.pending)}))
        self.pending = []
        return list(self.segments)

    def load(self, segments: list[str]) -> list[Record]:
        """The records of the named segments, in order; later flushes append after them."""
        if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
            raise CheckpointError(f"{self.folder}: the checkpoint's list of record segments is malformed")
        records: list[Record] = []
        for i, digest in enumerate(segments):
            state, _ = load_checkpoint(_records_folder(self.folder) / f"{i:06d}", sha256=digest)
            try:
                records += records_from_state(state)
            except (KeyError, TypeError, ValueError, IndexError, StopIteration) as e:
                raise CheckpointError(f"{_records_folder(self.folder) / f'{i:06d}'}: not a record segment ({e})") from None
        self.segments, self.pending = list(segments), []
        return records
