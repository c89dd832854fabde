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
import time
import warnings
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from streamsim.atomic import write_bytes_atomic

ENV_VAR = "STREAMSIM_CACHE"
DEFAULT_DIR = ".streamsim-cache"
FORMAT = 1  # bump when the on-disk layout changes; it is part of every key
_KIND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
        weights_path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
        data = save_safetensors(tensors)
        manifest = {
            "format": FORMAT,
            "kind": kind,
            "key": self.key(kind, key_dict),
            "key_dict": dict(key_dict),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "tensors": {name: {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
                        for name, t in tensors.items()},
            "meta": dict(meta or {}),
            "streamsim_version": _streamsim_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        manifest_text = _canonical(manifest)  # fails (before writing anything) if meta is not JSON-able
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
        try:
            manifest = json.loads(manifest_path.read_text())
            data = weights_path.read_bytes()
        except (OSError, UnicodeDecodeError, ValueError) as e:
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
        if len(data) != manifest.get("size") or hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
            raise _BadEntry("weights file does not match its checksum (truncated or modified)")
        try:
            tensors = load_safetensors(data)  # parses a header and raw buffers; cannot execute code
        except Exception as e:
            raise _BadEntry(f"weights file is not valid safetensors ({type(e).__name__})") from None
        expected = manifest.get("tensors")
        if not isinstance(expected, dict) or set(expected) != set(tensors):
            raise _BadEntry("tensor names differ from the manifest")
        for name, t in tensors.items():
            spec = expected[name]
            if not isinstance(spec, dict) or list(t.shape) != spec.get("shape") or str(t.dtype).removeprefix("torch.") != spec.get("dtype"):
                raise _BadEntry(f"tensor {name!r} has shape {list(t.shape)} {t.dtype}, manifest says {spec}")
        return tensors, manifest


class _BadEntry(Exception):
    """An entry failed verification (internal; surfaced as a warning)."""
