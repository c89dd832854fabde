"""Stream overhead: streamsim against river's own loop, and bare event throughput.

(1) The same clean samples, in the same order, through streamsim (river learner, ``none``
    defense, no baseline, one evaluation) and through ``river.evaluate.progressive_val_score``
    with the same model and the same features, each measured in the same process:
    mnist-5k (pooled pixels, softmax regression; target ≤ 1.2× river's time), and the tabular
    streams river is made for — river's Phishing and a synthetic SEA stream (logistic
    regression; target ≤ 1.1× river's time per sample). streamsim predicts every batch before
    learning it (the prequential error its drift watch needs), as progressive_val_score does.
    Both start from the same in-memory arrays: streamsim from its tensors, river from
    ``river.stream.iter_array`` over the same feature array (river's own way to stream arrays,
    turning each row into a dict as it goes). The strictest reference — river given its dicts
    built before the clock starts, so that it does strictly less work than any array-fed loop —
    is printed beside it. Times are CPU time of this one-thread process, best of several
    alternated repeats, so that neighbours on shared cores inflate both sides alike.
(2) Batches per second through the simulator with a no-op learner and defense: the cost of the
    event core, sources, gate and bookkeeping alone.

Run: ``python benchmarks/bench_stream.py [--samples 3000] [--out benchmarks/results/bench_stream.txt]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import streamsim
from streamsim import Batch, Defense, Learner, Verdicts
from streamsim.learners.river_learner import RiverLearner
from streamsim.running.experiment import load_cut, load_data
from streamsim.scenario.config import load_scenario
from streamsim.simulation.simulator import Simulation

MODEL = "linear_model.SoftmaxRegression"
POOL = 4
#: each (1) row alternates the two loops at least REPEATS times and until both have run MIN_SECONDS
#: together (at most MAX_REPEATS): a tabular pass takes ~0.1 s, at the mercy of the neighbours on shared cores
REPEATS, MIN_SECONDS, MAX_REPEATS = 3, 4.0, 30
#: (label, dataset, data params, river model, target ratio, learner api, batch size)
STREAMS = [
    ("mnist-5k", "mnist-5k", {}, MODEL, 1.2, "many", 32),
    ("river:Phishing", "river:Phishing", {}, "linear_model.LogisticRegression", 1.1, "one", 128),
    ("river.synth:SEA", "river.synth:SEA", {"size": 20000}, "linear_model.LogisticRegression", 1.1, "one", 128),
]


def scenario(samples: int, batch: int, dataset: str = "mnist-5k", params: dict | None = None,
             model: str = MODEL, api: str = "many") -> dict:
    steps = samples // batch
    return {
        "name": "bench-stream", "seed": 0, "duration": float(steps), "eval_every": float(steps),
        "data": {"dataset": dataset, "params": params or {}, "eval_size": 10,
                 "splits": {"pretrain": 0.01, "trusted": 0.0, "stream": 0.79, "attacker": 0.0, "test": 0.2}},
        "learner": {"name": "river", "params": {"model": model, "pool": POOL, "pretrain_epochs": 1, "api": api}},
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


def bench_vs_river(samples: int, batch: int | None, label: str = "mnist-5k", dataset: str = "mnist-5k",
                   params: dict | None = None, model: str = MODEL, target: float = 1.2, api: str = "many",
                   row_batch: int = 32) -> str:
    batch = batch or row_batch
    from river import evaluate, metrics, stream

    sc = load_scenario(scenario(samples, batch, dataset, params, model, api))
    data, _ = load_cut(sc.data, sc.seed)
    splits, context = data.splits, streamsim.SetupContext(seed=0, space=data.space)
    pre = splits["pretrain"]

    def pretrained() -> RiverLearner:
        learner = RiverLearner(model=model, pool=POOL, pretrain_epochs=1, api=api)
        learner.pretrain(pre.x, pre.labels, context)
        return learner

    # Alternate the loops, best of several each, in CPU time of this process (one torch thread): on
    # shared cores a single pair is at the mercy of the neighbours, CPU time much less so.
    ours, theirs, prebuilt, spent, repeats = float("inf"), float("inf"), float("inf"), 0.0, 0
    while repeats < REPEATS or (spent < MIN_SECONDS and repeats < MAX_REPEATS):
        repeats += 1
        recorder, learner = Recorder(), pretrained()
        start = time.process_time()
        Simulation(sc, splits, learner, recorder, {}, lambda r: None, run="attack", data=data).run_to_end()
        elapsed = time.process_time() - start
        ours, spent = min(ours, elapsed), spent + elapsed
        seen = Batch.concat(recorder.batches)
        # river's loop on exactly the samples streamsim saw, from the same arrays, as the same
        # features: river's own ``stream.iter_array`` turns them into dicts as it goes
        reference = pretrained()
        features, targets = reference._features(seen.x), reference._targets(seen.labels)
        start = time.process_time()
        evaluate.progressive_val_score(stream.iter_array(features, targets, feature_names=reference.columns),
                                       reference.estimator, metrics.Accuracy())
        elapsed = time.process_time() - start
        theirs, spent = min(theirs, elapsed), spent + elapsed
        # and the strictest reference: the dicts built before the clock starts
        reference = pretrained()
        rows = list(zip(reference._rows(seen.x), targets.tolist(), strict=True))
        start = time.process_time()
        evaluate.progressive_val_score(iter(rows), reference.estimator, metrics.Accuracy())
        elapsed = time.process_time() - start
        prebuilt, spent = min(prebuilt, elapsed), spent + elapsed
    line = (f"(1) {label}: {len(seen)} samples, batch {batch}, {model} (api {api}): streamsim {ours:.3f} s "
            f"({1e6 * ours / len(seen):.0f} µs/sample), river progressive_val_score over iter_array "
            f"{theirs:.3f} s ({1e6 * theirs / len(seen):.0f} µs/sample), ratio {ours / theirs:.2f} "
            f"(target <= {target}); over dicts built beforehand {prebuilt:.3f} s, ratio {ours / prebuilt:.2f}; "
            f"CPU time, best of {repeats}")
    print(line, flush=True)
    return line


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


def bench_events(batches: int) -> str:
    raw = scenario(batches * 8, 8)
    raw["attackers"] = [{"name": "flip", "batch_size": 8, "attack": {"name": "label-flip"}}]
    sc = load_scenario(raw)
    splits, _ = load_data(sc.data, sc.seed)
    sim = Simulation(sc, splits, NoOpLearner(), NoOpDefense(), {}, lambda r: None)
    start = time.perf_counter()
    sim.run_to_end()
    elapsed = time.perf_counter() - start
    line = (f"(2) bare event throughput: {batches / elapsed:,.0f} batches/s ({batches} clean batches of 8, "
            f"no-op learner and defense)")
    print(line, flush=True)
    return line


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=None, help="batch size of every row (default: each row's own)")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--streams", default=",".join(s[0] for s in STREAMS), help="which (1) rows to run")
    parser.add_argument("--out", type=Path, default=None, help="also write the lines to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    wanted = args.streams.split(",")
    lines = [bench_vs_river(args.samples, args.batch, *row) for row in STREAMS if row[0] in wanted]
    lines.append(bench_events(args.events))
    if args.out is not None:
        command = "python benchmarks/bench_stream.py " + " ".join(sys.argv[1:])
        args.out.write_text("\n".join([f"# {command}", *lines]) + "\n")
