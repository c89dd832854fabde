"""Named tensors on disk, verified on the way back: the one home for checksum-checked safetensors.

The artifact cache and run checkpoints both store tensors as a safetensors blob beside a JSON
manifest. :func:`pack` makes the pair; :func:`unpack` accepts a blob only if its sha256 matches
the manifest, it parses as safetensors (a header and raw buffers: loading cannot run code, unlike
a pickle), and it holds exactly the tensors the manifest lists, with their shapes and dtypes.
Anything else is a :class:`TensorFileError` saying what is wrong; callers add which file.

>>> import torch
>>> blob, manifest = pack({"w": torch.ones(2, 3)})
>>> unpack(blob, manifest)["w"].shape
torch.Size([2, 3])
>>> unpack(blob[:-1], manifest)
Traceback (most recent call last):
...
streamsim.files.tensorfile.TensorFileError: checksum mismatch (truncated or altered)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors


class TensorFileError(ValueError):
    """A tensor blob does not match its manifest (truncated, altered, or not safetensors)."""


def _spec(t: torch.Tensor) -> dict[str, Any]:
    return {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}


def pack(tensors: Mapping[str, torch.Tensor]) -> tuple[bytes, dict[str, Any]]:
    """``(blob, manifest)``: the safetensors bytes and ``{"sha256", "size", "tensors": {name: {shape, dtype}}}``."""
    plain = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    blob = save_safetensors(plain)
    return blob, {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob),
                  "tensors": {name: _spec(t) for name, t in plain.items()}}


def unpack(blob: bytes, manifest: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of ``blob``, verified against ``manifest`` (as :func:`pack` made it)."""
    if hashlib.sha256(blob).hexdigest() != manifest.get("sha256"):
        raise TensorFileError("checksum mismatch (truncated or altered)")
    try:
        tensors = load_safetensors(blob)
    except Exception as e:  # safetensors raises its own error types, and ValueError / RuntimeError
        raise TensorFileError(f"not a valid safetensors file ({type(e).__name__})") from None
    expected = manifest.get("tensors")
    if not isinstance(expected, dict) or set(expected) != set(tensors):
        raise TensorFileError("the manifest does not list the tensors the file holds")
    for name, t in tensors.items():
        if expected[name] != _spec(t):
            raise TensorFileError(f"tensor {name!r} is {list(t.shape)} {t.dtype}, the manifest says {expected[name]}")
    return tensors
