"""Deterministic, non-overlapping splits of a dataset into the roles a run needs.

>>> import numpy as np
>>> from streamsim.data.datasets import RawData
>>> raw = RawData(np.zeros((100, 28, 28), np.uint8), np.arange(100) % 10, "toy")
>>> s = make_splits(raw, {"pretrain": .2, "trusted": .2, "stream": .3, "attacker": .1, "test": .2}, seed=0)
>>> [len(s[k]) for k in ROLES]
[20, 20, 30, 10, 20]
>>> float(s["test"].x.min())
-1.0

Feature vectors are scaled per feature to ``[-1, 1]`` by the range each has on the pretrain split
(values beyond it elsewhere are clipped to it); the scaling is returned so the resolved scenario
can state it, and a scenario that gives one reuses it:

>>> vec = RawData(np.arange(200.0).reshape(100, 2), np.arange(100) % 2, "toy", n_classes=2)
>>> data = cut(vec, {"pretrain": .5, "trusted": .1, "stream": .2, "attacker": .1, "test": .1}, seed=0)
>>> data.space.describe(), data.scaling["kinds"], float(data.splits["pretrain"].x.min())
('feature vectors (d = 2), 2 classes', ['integer', 'integer'], -1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from streamsim.core.batch import Batch
from streamsim.core.errors import DataError
from streamsim.core.space import IMAGES, DataSpace
from streamsim.data.datasets import RawData

ROLES = ("pretrain", "trusted", "stream", "attacker", "test")


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 N×28×28 pixels → float32 N×1×28×28 in [-1, 1], the paper's scaling."""
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(1) / 127.5 - 1.0


def split_sizes(n: int, fractions: dict[str, float], n_test: int = 0) -> dict[str, int]:
    """How many of ``n`` samples each role gets (known before any tensor is built).

    With a fixed test set (``n_test`` > 0, the last rows of the data) the test role is exactly
    those rows and the other roles share the first ``n − n_test``, each ``fraction / (1 − test)``.

    >>> split_sizes(7, {"pretrain": .2, "trusted": .2, "stream": .3, "attacker": .1, "test": .2})
    {'pretrain': 1, 'trusted': 1, 'stream': 2, 'attacker': 1, 'test': 1}
    >>> split_sizes(15, {"pretrain": .2, "trusted": .2, "stream": .3, "attacker": .1, "test": .2}, n_test=10)
    {'pretrain': 1, 'trusted': 1, 'stream': 2, 'attacker': 1, 'test': 10}
    """
    if not n_test:
        return {role: int(round(fractions[role] * n)) for role in ROLES}
    scale = (n - n_test) / (1.0 - fractions["test"]) if fractions["test"] < 1 else 0.0
    return {role: n_test if role == "test" else int(round(fractions[role] * scale)) for role in ROLES}


def held_out(raw: RawData) -> int:
    """How many of the last rows are a fixed test set (``HeldOutData``); 0 for ordinary data."""
    return int(getattr(raw, "n_test", 0))


def make_splits(raw: RawData, fractions: dict[str, float], seed: int) -> dict[str, Batch]:
    """Cut one seeded permutation into consecutive pieces, one per role.

    With a fixed test set (:func:`held_out`) the permutation covers the training rows only and
    ``test`` is the held-out rows in their order, so no test digit ever lands in another role.
    """
    return cut(raw, fractions, seed).splits


@dataclass
class CutData:
    """A dataset cut into its roles: the splits, the space they live in, and how vectors were scaled.

    ``stream_changes`` are the concept changes of an ordered stream, as offsets into the ``stream``
    split (the clean sources send it in order and announce each one when they reach it).
    """

    splits: dict[str, Batch]
    space: DataSpace = IMAGES
    scaling: dict[str, Any] | None = None
    stream_changes: tuple[int, ...] = field(default_factory=tuple)
    ordered: bool = False


def _order(raw: RawData, sizes: dict[str, int], seed: int) -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
    """Indices per role. An ordered stream keeps its last ``stream`` samples in time order for the
    stream and shuffles the earlier ones into the other roles; otherwise one seeded permutation."""
    n = raw.x.shape[0]
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    n_test = held_out(raw)
    if n_test:  # a fixed test set: the last rows, never drawn for another role
        out["test"] = np.arange(n - n_test, n)
        order, changes = rng.permutation(n - n_test), ()
    elif raw.ordered:
        start = n - sizes["stream"]
        out["stream"] = np.arange(start, n)
        order = rng.permutation(start)
        changes = tuple(c - start for c in raw.concept_changes if c >= start)
    else:
        order, changes = rng.permutation(n), ()
    at = 0
    for role in ROLES:
        if role in out:
            continue
        out[role] = order[at : at + sizes[role]]
        at += sizes[role]
    return out, changes


def fit_scaling(x: np.ndarray) -> dict[str, Any]:
    """Each feature's range and kind on ``x`` (the pretrain split): integer when every value is whole,
    binary when it is integer and takes just two adjacent values."""
    if x.shape[0] == 0:
        raise DataError("data.splits.pretrain: feature scaling is fitted on the pretrain split, which is empty")
    lo, hi = x.min(axis=0), x.max(axis=0)
    whole = (x == np.round(x)).all(axis=0)
    kinds = ["binary" if w and h - low == 1 else "integer" if w else "real" for w, low, h in zip(whole, lo, hi, strict=True)]
    return {"lo": lo.tolist(), "hi": hi.tolist(), "kinds": kinds}


def scale(x: np.ndarray, scaling: dict[str, Any]) -> torch.Tensor:
    """Raw features → float32 in ``[-1, 1]`` per feature, clipped to the fitted range."""
    lo, hi = np.asarray(scaling["lo"]), np.asarray(scaling["hi"])
    span = np.where(hi > lo, hi - lo, 1.0)
    z = np.clip(2 * (x - lo) / span - 1, -1, np.where(hi > lo, 1.0, -1.0))
    return torch.from_numpy(z.astype(np.float32))


def vector_space(raw: RawData, scaling: dict[str, Any]) -> DataSpace:
    """The space scaled vectors live in: ``[-1, 1]`` per feature (a constant one: ``-1``), grids for whole ones."""
    lo, hi = np.asarray(scaling["lo"]), np.asarray(scaling["hi"])
    if len(lo) != raw.x.shape[1]:
        raise DataError(f"data.scaling: {len(lo)} features, but {raw.description} has {raw.x.shape[1]}")
    span = hi - lo
    steps = tuple(float(2 / s) if k != "real" and s > 0 else 0.0 for k, s in zip(scaling["kinds"], span, strict=True))
    top = torch.from_numpy(np.where(span > 0, 1.0, -1.0).astype(np.float32))
    return DataSpace.vectors(raw.n_classes, tuple(scaling["kinds"]), raw.feature_names, steps, hi=top)


def cut(raw: RawData, fractions: dict[str, float], seed: int, scaling: dict[str, Any] | None = None) -> CutData:
    """The splits of ``raw`` (images as in the paper; vectors scaled by ``scaling``, fitted on pretrain when ``None``)."""
    sizes = split_sizes(raw.x.shape[0], fractions, held_out(raw))
    index, changes = _order(raw, sizes, seed)
    if raw.is_vectors:
        scaling = scaling or fit_scaling(raw.x[index["pretrain"]])
        space = vector_space(raw, scaling)
        convert = lambda x: scale(x, scaling)  # noqa: E731
    else:
        space, convert = IMAGES, to_tensor
    out = {role: Batch.clean(convert(raw.x[idx]), torch.from_numpy(raw.y[idx]), source=role,
                             ids=torch.from_numpy(idx.astype(np.int64))) for role, idx in index.items()}
    return CutData({role: out[role] for role in ROLES}, space, scaling if raw.is_vectors else None, changes, raw.ordered)
