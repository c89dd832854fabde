"""Stream overhead: streamsim against river's own loop, and bare event throughput.

(1) The same clean samples, in the same order, through streamsim (river learner, ``none``
    defense, no baseline, one evaluation) and through ``river.evaluate.progressive_val_score``
    with the same model and the same pooled-pixel features. Target: streamsim ≤ 1.2× river's time.
(2) Batches per second through the simulator with a no-op learner and defense: the cost of the
    event core, sources, gate and bookkeeping alone.

Run: ``python benchmarks/bench_stream.py [--samples 3000]``
"""

from __future__ import annotations

import argparse
import time

import torch

import streamsim
from streamsim import Batch, Defense, Learner, Verdicts
from streamsim.config import load_scenario
from streamsim.experiment import load_data
from streamsim.learners.river_learner import RiverLearner
from streamsim.simulator import Simulation

MODEL = "linear_model.SoftmaxRegression"
POOL = 4


def scenario(samples: int, batch: int) -> dict:
    steps = samples // batch
    return {
        "name": "bench-stream", "seed": 0, "duration": float(steps), "eval_every": float(steps),
        "data": {"dataset": "mnist-5k", "eval_size": 10,
                 "splits": {"pretrain": 0.01, "trusted": 0.0, "stream": 0.79, "attacker": 0.0, "test": 0.2}},
        "learner": {"name": "river", "params": {"model": MODEL, "pool": POOL, "pretrain_epochs": 1}},
        "defense": {"name": "none"},
        "clean": [{"name": "clean", "batch_size": batch, "budget": samples}],
    }


class Recorder(Defense):
    """Accepts everything and remembers the order in which samples arrived."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    def screen(self, batch: Batch) -> Verdicts:
        self.batches.append(batch)
        return Verdicts.accept_all(len(batch))


def bench_vs_river(samples: int, batch: int) -> None:
    from river import evaluate, metrics

    sc = load_scenario(scenario(samples, batch))
    splits, _ = load_data(sc.data, sc.seed)
    learner = RiverLearner(model=MODEL, pool=POOL, pretrain_epochs=1)
    pre = splits["pretrain"]
    learner.pretrain(pre.x, pre.labels, streamsim.SetupContext(seed=0))
    recorder = Recorder()
    start = time.perf_counter()
    Simulation(sc, splits, learner, recorder, {}, lambda r: None, run="attack").run_to_end()
    ours = time.perf_counter() - start
    seen = Batch.concat(recorder.batches)

    # river's loop on exactly the samples streamsim saw, as the same features
    reference = RiverLearner(model=MODEL, pool=POOL, pretrain_epochs=1)
    reference.pretrain(pre.x, pre.labels, streamsim.SetupContext(seed=0))
    rows = list(zip(reference._rows(seen.x), seen.labels.tolist(), strict=True))
    start = time.perf_counter()
    evaluate.progressive_val_score(iter(rows), reference.estimator, metrics.Accuracy())
    theirs = time.perf_counter() - start
    print(f"(1) {len(seen)} samples, batch {batch}: streamsim {ours:.2f} s, river progressive_val_score "
          f"{theirs:.2f} s, ratio {ours / theirs:.2f} (target <= 1.2)")


class NoOpLearner(Learner):
    def pretrain(self, x, y, context) -> None:  # noqa: ANN001
        pass

    def learn(self, x, y) -> None:  # noqa: ANN001
        pass

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 10), 0.1)


class NoOpDefense(Defense):
    def screen(self, batch: Batch) -> Verdicts:
        return Verdicts.accept_all(len(batch))


def bench_events(batches: int) -> None:
    raw = scenario(batches * 8, 8)
    raw["attackers"] = [{"name": "flip", "batch_size": 8, "attack": {"name": "label-flip"}}]
    sc = load_scenario(raw)
    splits, _ = load_data(sc.data, sc.seed)
    sim = Simulation(sc, splits, NoOpLearner(), NoOpDefense(), {}, lambda r: None)
    start = time.perf_counter()
    sim.run_to_end()
    elapsed = time.perf_counter() - start
    print(f"(2) bare event throughput: {batches / elapsed:,.0f} batches/s ({batches} clean batches of 8, "
          f"no-op learner and defense)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench_vs_river(args.samples, args.batch)
    bench_events(args.events)
