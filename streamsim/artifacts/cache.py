"""A content-addressed cache for trained artifacts (named tensors), safe against corruption.

Training a De-Pois critic or an attacker's shadow model takes minutes; the same scenario run twice
should train it once. An entry is keyed by a hash of what determines it — the artifact ``kind``
and a JSON-able ``key_dict`` (dataset key, resolved config, seed, code version, …) — and is two
files under ``<root>/<kind>/``:

* ``<key>.safetensors`` — the tensors (never a pickle: loading cannot run code);
* ``<key>.json`` — the manifest: kind, key_dict, the weights file's sha256, every tensor's shape
  and dtype, the caller's ``meta``, the streamsim version and the creation time.

Both are written atomically (temp file + ``os.replace``), weights first, manifest last, so a
crash mid-write leaves no entry that looks complete. :meth:`ArtifactCache.get` verifies the
manifest, the checksum and the shapes; any mismatch — a truncated file, a flipped bit, a foreign
file in place of the weights — is a ``warnings.warn`` and ``None``, so the caller retrains. A bad
entry is never used silently and never crashes a run.

>>> import tempfile, torch
>>> cache = ArtifactCache(tempfile.mkdtemp())
>>> key = {"data_key": "demo", "config": {"steps": 3}, "seed": 0, "code_version": "1"}
>>> cache.get("demo-model", key) is None
True
>>> _ = cache.put("demo-model", key, {"w": torch.ones(2, 3)}, meta={"note": "example"})
>>> cache.get("demo-model", key)["w"].shape
torch.Size([2, 3])
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import torch

from streamsim.files import tensorfile
from streamsim.files.atomic import write_bytes_atomic
from streamsim.files.reading import read_bytes, read_text

ENV_VAR = "STREAMSIM_CACHE"
DEFAULT_DIR = ".streamsim-cache"
FORMAT = 1  # bump when the on-disk layout changes; it is part of every key
MAX_MANIFEST_BYTES = 16 << 20  # a manifest lists shapes and a few settings: kilobytes
MAX_WEIGHTS_BYTES = 16 << 30  # far above any network streamsim trains; a larger "entry" is not one
_KIND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
T = TypeVar("T")


def _streamsim_version() -> str:
    try:
        return version("streamsim")
    except PackageNotFoundError:
        return "unknown"


def _canonical(obj: Any) -> str:
    """Canonical JSON: the same dict always hashes the same, whatever its key order."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


class ArtifactCache:
    """Named-tensor artifacts on disk, keyed by ``(kind, key_dict)``.

    ``root`` defaults to ``$STREAMSIM_CACHE`` or ``./.streamsim-cache``; nothing is created until
    the first :meth:`put`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root if root is not None else os.environ.get(ENV_VAR) or DEFAULT_DIR)

    def __repr__(self) -> str:
        return f"ArtifactCache({str(self.root)!r})"

    # --- addressing -------------------------------------------------------------------------
    @staticmethod
    def key(kind: str, key_dict: Mapping[str, Any]) -> str:
        """The entry's name: sha256 of the canonical JSON of ``(format, kind, key_dict)``."""
        if not _KIND.match(kind):
            raise ValueError(f"artifact kind {kind!r} must be letters, digits, '.', '_' or '-'")
        return hashlib.sha256(_canonical({"format": FORMAT, "kind": kind, "key": dict(key_dict)}).encode()).hexdigest()

    def paths(self, kind: str, key_dict: Mapping[str, Any]) -> tuple[Path, Path]:
        """``(weights file, manifest file)`` of an entry, whether or not it exists."""
        base = self.root / kind / self.key(kind, key_dict)
        return base.with_suffix(".safetensors"), base.with_suffix(".json")

    # --- writing ----------------------------------------------------------------------------
    def put(self, kind: str, key_dict: Mapping[str, Any], tensors: Mapping[str, torch.Tensor],
            meta: Mapping[str, Any] | None = None) -> str:
        """Store ``tensors`` (and JSON-able ``meta``) under ``(kind, key_dict)``; return the key."""
        weights_path, manifest_path = self.paths(kind, key_dict)
        data, packed = tensorfile.pack(tensors)
        manifest = {
            "format": FORMAT,
            "kind": kind,
            "key": self.key(kind, key_dict),
            "key_dict": dict(key_dict),
            **packed,
            "meta": dict(meta or {}),
            "streamsim_version": _streamsim_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        manifest_text = _canonical(manifest)  # fails (before writing anything) if meta is not JSON-able
        for path in (weights_path, manifest_path):
            if path.is_dir() and not path.is_symlink():  # a damaged entry: a folder where a file belongs
                shutil.rmtree(path)
        write_bytes_atomic(weights_path, data)
        write_bytes_atomic(manifest_path, manifest_text.encode())
        return manifest["key"]

    # --- reading ----------------------------------------------------------------------------
    def get(self, kind: str, key_dict: Mapping[str, Any]) -> dict[str, torch.Tensor] | None:
        """The stored tensors, or ``None`` if absent. A damaged entry warns and gives ``None``."""
        entry = self.load_entry(kind, key_dict)
        return None if entry is None else entry[0]

    def load_entry(self, kind: str, key_dict: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """``(tensors, manifest)`` of a verified entry, or ``None`` (with a warning if damaged)."""
        weights_path, manifest_path = self.paths(kind, key_dict)
        if not manifest_path.exists() and not weights_path.exists():
            return None
        try:
            return self._verified(kind, key_dict, weights_path, manifest_path)
        except _BadEntry as e:
            warnings.warn(f"ignoring damaged cache entry {manifest_path.with_suffix('')}: {e}; it will be rebuilt",
                          RuntimeWarning, stacklevel=3)
            return None

    def _verified(self, kind: str, key_dict: Mapping[str, Any], weights_path: Path,
                  manifest_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        try:  # regular files only: a FIFO or a link to /dev/zero in their place must not hang the run
            manifest = json.loads(read_text(manifest_path, MAX_MANIFEST_BYTES))
            data = read_bytes(weights_path, MAX_WEIGHTS_BYTES)
        except (OSError, ValueError, RecursionError) as e:  # RecursionError: JSON nested 100,000 deep
            raise _BadEntry(f"unreadable ({type(e).__name__}: {e})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise _BadEntry("manifest has an unknown format")
        if manifest.get("kind") != kind or manifest.get("key") != self.key(kind, key_dict):
            raise _BadEntry("manifest belongs to another entry")
        try:
            same_key = _canonical(manifest.get("key_dict")) == _canonical(dict(key_dict))
        except (TypeError, ValueError):
            same_key = False
        if not same_key:
            raise _BadEntry("manifest key_dict differs from the one asked for")
        try:
            tensors = tensorfile.unpack(data, manifest)
        except tensorfile.TensorFileError as e:
            raise _BadEntry(f"weights file: {e}") from None
        return tensors, manifest


class _BadEntry(Exception):
    """An entry failed verification (internal; surfaced as a warning)."""


def cached_fit(cache: ArtifactCache | None, kind: str, key_dict: Mapping[str, Any], *,
               fit: Callable[[], T],
               load: Callable[[dict[str, torch.Tensor], dict[str, Any]], T],
               save: Callable[[T], tuple[Mapping[str, torch.Tensor], Mapping[str, Any]]]) -> tuple[T, bool]:
    """Get or fit: the one place that turns an expensive, seeded fit into a cached one.

    With an entry under ``(kind, key_dict)``, return ``(load(tensors, meta), True)``. Otherwise —
    no cache, no entry, a damaged entry (:meth:`ArtifactCache.get` warns), or an entry ``load``
    rejects with ``RuntimeError``, ``KeyError``, ``ValueError`` or ``TypeError`` (warned here) —
    call ``fit()``, store ``save(result)`` as ``(tensors, meta)`` when there is a cache, and return
    ``(result, False)``. ``load`` must build its result from scratch, so that a rejected entry
    leaves nothing half-loaded behind for ``fit``. Put everything that determines the result
    (data digest, settings, seed, a code version) in ``key_dict``.

    >>> import tempfile, torch
    >>> cache = ArtifactCache(tempfile.mkdtemp())
    >>> steps = []
    >>> def fit():
    ...     steps.append("fit")
    ...     return torch.arange(3.0)
    >>> def get():
    ...     return cached_fit(cache, "demo-fit", {"seed": 0}, fit=fit, load=lambda tensors, meta: tensors["w"],
    ...                       save=lambda w: ({"w": w}, {"note": "demo"}))
    >>> get(), get(), steps
    ((tensor([0., 1., 2.]), False), (tensor([0., 1., 2.]), True), ['fit'])
    """
    if cache is not None:
        entry = cache.load_entry(kind, key_dict)
        if entry is not None:
            tensors, manifest = entry
            try:
                return load(tensors, manifest["meta"]), True
            except (RuntimeError, KeyError, ValueError, TypeError) as e:
                warnings.warn(f"cache entry of kind {kind!r} does not fit ({type(e).__name__}: {e}); retraining",
                              RuntimeWarning, stacklevel=2)
    result = fit()
    if cache is not None:
        tensors, meta = save(result)
        try:
            cache.put(kind, key_dict, tensors, meta)
        except OSError as e:  # a cache that cannot take the entry costs a refit next time, not this run
            warnings.warn(f"cache entry of kind {kind!r} not stored ({type(e).__name__}: {e})", RuntimeWarning,
                          stacklevel=2)
    return result, False
