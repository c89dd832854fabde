"""Tiny scenarios shared by the tests: seconds each on 2 cores."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

# One thread per test process: with two, a busy 2-core machine slows small convolutions by 50×.
torch.set_num_threads(1)

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


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each test session gets its own artifact cache, shared across tests (fits are reused),
    # never the developer's.
    root = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("STREAMSIM_CACHE", str(root))
