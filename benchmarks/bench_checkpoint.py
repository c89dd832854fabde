"""Checkpoint cost against run length: linear, not quadratic.

The same checkpointed run (small CNN, label flips, no defense, a checkpoint every time unit) at
three lengths, each twice the previous. For each, the total wall time and bytes of all its
checkpoints (the parts' states plus the record segments), and the last checkpoint's cost
against the first ones. Linear growth shows as ratios near 2× per doubling of the length (and a
last checkpoint no dearer than the first); quadratic growth would show as 4×.

As a reference measured in the same runs: what the checkpoints would have cost if each rewrote
every record so far (checkpoint format 1), timed on the same records.

Run: ``python benchmarks/bench_checkpoint.py [--lengths 40,80,160] [--out benchmarks/results/bench_checkpoint.json]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import streamsim.running.experiment as experiment
from streamsim.artifacts.checkpoint import RecordLog, records_state

BATCH = 128


def scenario(length: float) -> dict[str, Any]:
    return {
        "name": "bench-checkpoint", "seed": 0, "duration": float(length), "eval_every": 10.0, "baseline": False,
        "data": {"dataset": "mnist-5k", "eval_size": 100},
        "learner": {"name": "small-cnn", "params": {"pretrain_epochs": 1, "steps_per_batch": 1}},
        "defense": {"name": "none"},
        "clean": [{"name": "clean", "batch_size": BATCH}],
        "attackers": [{"name": "flip", "batch_size": BATCH, "attack": {"name": "label-flip"}}],
    }


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(length: float, work: Path) -> dict[str, Any]:
    """Run once with a checkpoint every time unit; time and weigh every checkpoint."""
    out = work / f"run-{length:g}"
    costs: list[float] = []  # seconds per checkpoint (record segment + state)
    written: list[int] = []  # bytes per checkpoint
    rewrite: list[float] = []  # seconds to rewrite every record so far (the old format), same moments
    rewrite_bytes: list[int] = []  # bytes the old format wrote: the same state plus every record so far
    records: list[Any] = []
    real_flush, real_save = RecordLog.flush, experiment.save_checkpoint
    pending = {"t": 0.0}

    def flush(self: RecordLog) -> list[str]:
        start = time.perf_counter()
        segments = real_flush(self)
        pending["t"] = time.perf_counter() - start
        return segments

    def save(folder: Path, state: Any, meta: dict[str, Any]) -> str:
        start = time.perf_counter()
        digest = real_save(folder, state, meta)
        costs.append(pending["t"] + time.perf_counter() - start)
        segment = folder.with_name(f"{folder.name}.records") / f"{len(meta['records']) - 1:06d}"
        written.append(_size(folder) + _size(segment))
        start = time.perf_counter()
        real_save(work / "old-format", {"records": records_state(records)}, {})
        rewrite.append(time.perf_counter() - start)
        rewrite_bytes.append(_size(folder) + _size(work / "old-format"))
        return digest

    RecordLog.flush = flush  # type: ignore[method-assign]
    experiment.save_checkpoint = save  # type: ignore[assignment]
    try:
        experiment.run(scenario(length), out=out, checkpoint_every=1.0, cache=True, on_record=records.append)
    finally:
        RecordLog.flush, experiment.save_checkpoint = real_flush, real_save  # type: ignore[method-assign]
    shutil.rmtree(out, ignore_errors=True)
    tenth = max(1, len(costs) // 10)
    return {"length": length, "checkpoints": len(costs), "total_s": sum(costs), "total_bytes": sum(written),
            "first_s": sum(costs[:tenth]) / tenth, "last_s": sum(costs[-tenth:]) / tenth,
            "first_bytes": written[0], "last_bytes": written[-1], "old_format_records_s": sum(rewrite),
            "old_format_bytes": sum(rewrite_bytes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="40,80,160", help="three run lengths (simulated time), each 2× the last")
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(float(n), Path(tmp)) for n in args.lengths.split(",")]
    print(f"{'length':>6} {'ckpts':>5} {'total s':>8} {'MB written':>10} {'last/first ckpt s':>17} "
          f"{'last/first ckpt bytes':>21} {'old format MB':>13}")
    for r in rows:
        print(f"{r['length']:6g} {r['checkpoints']:5d} {r['total_s']:8.2f} {r['total_bytes'] / 1e6:10.2f} "
              f"{r['last_s'] / r['first_s']:17.2f} {r['last_bytes'] / r['first_bytes']:21.3f} {r['old_format_bytes'] / 1e6:13.2f}")
    for a, b in zip(rows, rows[1:], strict=False):
        print(f"{a['length']:g} → {b['length']:g} ({b['length'] / a['length']:.0f}× longer): checkpoint time "
              f"{b['total_s'] / a['total_s']:.2f}×, bytes {b['total_bytes'] / a['total_bytes']:.2f}× "
              f"(linear: 2, quadratic: 4); the old format's bytes (every record rewritten each time): "
              f"{b['old_format_bytes'] / a['old_format_bytes']:.2f}×")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": "python benchmarks/bench_checkpoint.py --lengths " + args.lengths,
                                        "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
