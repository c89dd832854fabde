"""Tiny scenarios shared by the tests: seconds each on 2 cores.

The suite runs on two xdist workers (``make test``); each worker is its own pytest session, so
session-scoped fixtures here are built once per worker and must hand out immutable data or
fresh copies, never a model that a test could train.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import settings

from streamsim.data.datasets import RawData, mnist_5k

# One thread per test process: with two, a busy 2-core machine slows small convolutions by 50×.
torch.set_num_threads(1)

# No example database: hypothesis would create .hypothesis/ in the checkout, which the README
# tests check is left untouched while the other worker runs.
settings.register_profile("streamsim-tests", database=None)
settings.load_profile("streamsim-tests")

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

TINY: dict[str, Any] = {
    "name": "tiny-test",
    "seed": 0,
    "duration": 12.0,
    "eval_every": 4.0,
    "data": {"dataset": "mnist-5k", "eval_size": 400},
    "learner": {"name": "small-cnn", "params": {"pretrain_epochs": 2, "steps_per_batch": 2}},
    "defense": {"name": "none"},
    "clean": [{"name": "clean", "batch_size": 32}],
    "attackers": [{"name": "flipper", "batch_size": 64, "attack": {"name": "label-flip", "params": {"mode": "permutation"}}}],
}


@pytest.fixture
def tiny() -> dict[str, Any]:
    return copy.deepcopy(TINY)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Each session (each xdist worker) gets its own artifact cache, shared across its tests (fits
    # are reused), never the developer's. Session scope: module-scoped fixtures that load or fit
    # through the cache are set up before any function-scoped one, and wrote to ./.streamsim-cache.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STREAMSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        yield


@pytest.fixture(scope="session")
def mnist5k() -> RawData:
    """The embedded 5,000 digits, read-only: a test that writes into them fails instead of
    changing what every later test (and ``mnist_5k()``, which shares the arrays) sees."""
    raw = mnist_5k()
    x, y = raw.x.view(), raw.y.view()
    x.flags.writeable = y.flags.writeable = False
    return RawData(x, y, raw.description)

