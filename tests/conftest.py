"""Tiny scenarios shared by the tests: seconds each on 2 cores.

``make test`` runs the suite on two xdist workers, each test file whole on one worker
(``-n 2 --dist loadfile``, so a module-scoped fixture is built once). Each worker is its own
pytest session: session-scoped fixtures here are built once per worker and hand out immutable
data, never a model that a test could train.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. With the other
# worker busy, a 2-thread run (tests/test_reproducible.py) spun 3× longer than it computed.
# The wait policy changes no number, only how a waiting thread waits.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

from streamsim.data.datasets import RawData, mnist_5k  # noqa: E402

# One thread per test process: with two, a busy 2-core machine slows small convolutions by 50×.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
PROFILE = Path(__file__).with_name("durations.txt")

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
def _nothing_written_into_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # tests/test_readme.py checks that the checkout is left untouched, while the other worker runs.
    # Each session (each xdist worker) gets its own artifact cache, shared across its tests (fits
    # are reused), never the developer's. Session scope: module-scoped fixtures that load or fit
    # through the cache are set up before any function-scoped one, and wrote to ./.streamsim-cache.
    # (./.hypothesis is made while the test modules are collected, before any test runs.)
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


def _profiled_seconds() -> dict[str, float]:
    """Seconds per test file in the committed profile (its slowest tests' setup and call times)."""
    seconds: dict[str, float] = {}
    lines = PROFILE.read_text(encoding="utf-8").splitlines() if PROFILE.is_file() else []
    for line in lines:
        found = re.match(r"([\d.]+)s (?:setup|call|teardown) +([^:\s]+)::", line)
        if found:
            seconds[found[2]] = seconds.get(found[2], 0.0) + float(found[1])
    return seconds


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # xdist hands out whole files in collection order: start the files the committed profile
    # shows slowest, so that no long file starts last while the other worker idles. The sort is
    # stable (each file's tests keep their order); a plain run keeps pytest's order.
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    seconds = _profiled_seconds()
    items.sort(key=lambda item: -seconds.get(item.nodeid.split("::")[0], 0.0))


class StoppedByTest(Exception):
    """Raised right after a checkpoint is saved: the run ends there, as if killed."""


@pytest.fixture
def stop_at_checkpoint(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``stop(scenario, out, checkpoint_every, n=1)``: run a scenario with checkpoints and stop it right
    after its n-th checkpoint is saved; returns the run folder, which holds a checkpoint and no summary."""
    from streamsim.running import experiment

    def stop(scenario: dict[str, Any], out: Path, checkpoint_every: float, n: int = 1) -> Path:
        real = experiment.save_checkpoint
        saved = 0

        def save_then_stop(*args: Any, **kwargs: Any) -> None:
            nonlocal saved
            real(*args, **kwargs)
            saved += 1
            if saved == n:
                raise StoppedByTest

        monkeypatch.setattr(experiment, "save_checkpoint", save_then_stop)
        with pytest.raises(StoppedByTest):
            experiment.run(scenario, out=out, checkpoint_every=checkpoint_every)
        monkeypatch.setattr(experiment, "save_checkpoint", real)
        assert not (out / "summary.json").exists() and (out / "checkpoint" / "state.json").is_file()
        return out

    return stop
