"""Deterministic, non-overlapping splits of a dataset into the roles a run needs.

>>> import numpy as np
>>> from streamsim.data.datasets import RawData
>>> raw = RawData(np.zeros((100, 28, 28), np.uint8), np.arange(100) % 10, "toy")
>>> s = make_splits(raw, {"pretrain": .2, "trusted": .2, "stream": .3, "attacker": .1, "test": .2}, seed=0)
>>> [len(s[k]) for k in ROLES]
[20, 20, 30, 10, 20]
>>> float(s["test"].x.min())
-1.0
"""

from __future__ import annotations

import numpy as np
import torch

from streamsim.batch import Batch
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

    With a fixed test set the permutation covers the training rows only and ``test`` is the held-out
    rows in their order, so no test digit ever lands in another role.
    """
    n, n_test = raw.x.shape[0], held_out(raw)
    order = np.random.default_rng(seed).permutation(n - n_test)
    out: dict[str, Batch] = {}
    start = 0
    sizes = split_sizes(n, fractions, n_test)
    for role in ROLES:
        size = sizes[role]
        if role == "test" and n_test:
            idx = np.arange(n - n_test, n)
        else:
            idx = order[start : start + size]
            start += size
        out[role] = Batch.clean(
            to_tensor(raw.x[idx]), torch.from_numpy(raw.y[idx]), source=role, ids=torch.from_numpy(idx.astype(np.int64))
        )
    return out
