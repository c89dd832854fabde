"""Datasets load from every supported layout, and bad data gives a one-line, actionable error."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from streamsim.core.errors import DataError
from streamsim.data.datasets import fashion_mnist, mnist, mnist_5k, npz
from streamsim.data.splits import ROLES, make_splits

from .conftest import SHARED_MNIST


def test_embedded_mnist_5k_has_500_real_digits_per_class():
    raw = mnist_5k()
    assert raw.x.shape == (5000, 28, 28) and raw.x.dtype == np.uint8
    assert np.bincount(raw.y).tolist() == [500] * 10
    assert raw.x.max() == 255 and raw.x.mean() > 20  # real strokes, not blanks


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs the shared t10k folder beside the checkout")
def test_t10k_idx_folder_loads_10000_images():
    raw = mnist(str(SHARED_MNIST))
    assert raw.x.shape == (10000, 28, 28)
    assert np.bincount(raw.y, minlength=10).min() > 800


def _write_idx(folder, prefix, x, y, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    img = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in x.shape) + x.tobytes()
    lab = (2049).to_bytes(4, "big") + len(y).to_bytes(4, "big") + y.astype(np.uint8).tobytes()
    opener = gzip.compress if gz else (lambda b: b)
    suffix = ".gz" if gz else ""
    (folder / f"{prefix}-images-idx3-ubyte{suffix}").write_bytes(opener(img))
    (folder / f"{prefix}-labels-idx1-ubyte{suffix}").write_bytes(opener(lab))


@pytest.mark.parametrize("layout", ["MNIST/raw", "raw", "."])
def test_torchvision_and_plain_idx_layouts(tmp_path, layout):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 30)
    _write_idx(tmp_path / layout, "train", x, y)
    # uncompressed, since gzipped t10k files under their canonical names must match MNIST's checksums
    _write_idx(tmp_path / layout, "t10k", x[:10], y[:10], gz=False)
    raw = mnist(str(tmp_path))
    assert raw.x.shape == (40, 28, 28)
    assert (raw.x[:30] == x).all() and (raw.y[30:] == y[:10]).all()


def test_fashion_mnist_torchvision_layout(tmp_path):
    x = np.zeros((5, 28, 28), np.uint8)
    _write_idx(tmp_path / "FashionMNIST" / "raw", "t10k", x, np.arange(5))
    assert fashion_mnist(str(tmp_path)).y.tolist() == [0, 1, 2, 3, 4]


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist(str(tmp_path))
    with pytest.raises(DataError, match="no IDX files"):
        mnist(str(tmp_path))


def test_corrupt_idx_is_a_data_error(tmp_path):
    _write_idx(tmp_path, "train", np.zeros((5, 28, 28), np.uint8), np.arange(5))
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:40])
    with pytest.raises(DataError, match="gzip|holds"):
        mnist(str(tmp_path))


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs the shared t10k folder")
def test_altered_canonical_file_fails_its_checksum(tmp_path):
    for f in SHARED_MNIST.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    target = tmp_path / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(gzip.compress(gzip.decompress(target.read_bytes())[:-1] + b"\x00"))
    with pytest.raises(DataError, match="checksum"):
        mnist(str(tmp_path))


def test_npz_files(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((7, 28, 28), np.uint8), y=np.arange(7))
    assert npz(str(good)).x.shape == (7, 28, 28)
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((7, 28, 28), np.uint8))
    with pytest.raises(DataError, match="needs arrays 'x' and 'y'"):
        npz(str(bad))
    evil = tmp_path / "evil.npz"
    np.savez(evil, x=np.array([object()], dtype=object), y=np.arange(1))
    with pytest.raises(DataError):
        npz(str(evil))
    shape = tmp_path / "shape.npz"
    np.savez(shape, x=np.zeros((7, 32, 32), np.uint8), y=np.arange(7))
    with pytest.raises(DataError, match="28"):
        npz(str(shape))


def test_splits_are_disjoint_deterministic_and_scaled():
    raw = mnist_5k()
    fractions = {"pretrain": .2, "trusted": .2, "stream": .3, "attacker": .1, "test": .2}
    a, b = make_splits(raw, fractions, 7), make_splits(raw, fractions, 7)
    ids = np.concatenate([a[r].ids.numpy() for r in ROLES])
    assert len(ids) == len(set(ids)) == 5000
    assert all((a[r].ids == b[r].ids).all() for r in ROLES)
    assert a["test"].x.min() == -1 and a["test"].x.max() == 1
    # shuffled: the class-sorted source does not leak into the splits
    assert len(set(a["pretrain"].labels[:50].tolist())) >= 8
