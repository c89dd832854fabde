"""How far one learning step moves a probe, against the noise of its never-submitted controls.

The physics under every ``effects`` attacker: the deployed model takes ``steps_per_batch`` Adam
steps on the accepted part of the attacker's batch, and the attacker sees only the model's
outputs before and after. This benchmark isolates that step. On the adaptive scenarios' learner
(small CNN pretrained on mnist-5k, cached), each round restores the pretrained model, builds a
batch of ``--batch`` points of one probe design plus as many never-submitted controls of the same
design, accepts each submitted point with probability 1/2 (no defense: acceptance is independent of
the point, so any separation comes from the learning step alone), takes the learner's step(s) on the
accepted ones and queries again. Per design and learner setting it reports

- ``auc_proba``: AUC of the claimed label's log-odds movement, accepted vs rejected submitted points
  (0.5 = no signal) — the ceiling of a probability-query inference on that design;
- ``balanced_labels``: balanced accuracy of "the predicted label changed to the claimed one" as the
  verdict — the ceiling with label queries;
- ``shift_over_noise``: (mean movement of accepted − mean movement of controls) / std of the controls.

Designs (:mod:`attacks.adaptive.probes`): ``passive`` (today's poisons: true label, eps-0.3 sign
noise), ``canary`` (a pool point claimed as a label the model does not predict), ``boundary``
(bisected between two differently predicted pool points to the model's boundary, claimed as the
class on the other side).

    python experiments/probe_signal.py [--rounds 30] [--json experiments/results/probe_signal.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from attacks.adaptive.attack import train_surrogate
from attacks.adaptive.boundary import boundary_probes
from attacks.adaptive.canary import label_inconsistent
from attacks.adaptive.inference import movement
from streamsim import IMAGES, SetupContext
from streamsim.artifacts.cache import ArtifactCache
from streamsim.files.atomic import write_text_atomic
from streamsim.running.experiment import load_data
from streamsim.running.preflight import build_components
from streamsim.scenario.config import load_scenario
from streamsim.seeds import child_seed
from streamsim.simulation.threat import TargetView

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "adaptive-effects.toml"


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not len(pos) or not len(neg):
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).float() + 0.5 * (diff == 0).float()).mean())


def design(name: str, pool_x: torch.Tensor, pool_y: torch.Tensor, view: TargetView, n: int,
           gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    pick = torch.randperm(len(pool_x), generator=gen)[:n]
    x, y = pool_x[pick], pool_y[pick]
    if name == "passive":
        noise = torch.randint(0, 2, x.shape, generator=gen).float() * 2 - 1
        return (x + 0.3 * noise).clamp(-1, 1), y
    if name in ("canary", "canary-shared"):
        return x, label_inconsistent(x, view, gen, IMAGES.n_classes, shared=name == "canary-shared")
    return boundary_probes(x, y, pool_x, pool_y, view, gen)


def table(normal: Path, fresh: Path) -> list[str]:
    """The docs page's probe-signal table from the committed results (normal learner, Adam's moments zeroed)."""
    res = json.loads(normal.read_text())["results"]
    zeroed = json.loads(fresh.read_text())["results"]
    lines = ["| design | steps per batch | AUC, probabilities | balanced acc., labels | shift / control noise "
             "| AUC, surrogate attribution | AUC, probabilities, Adam's moments zeroed |", "|---" * 7 + "|"]
    for key, row in res.items():
        name, steps = key.split(" steps=")
        z = zeroed.get(key)
        lines.append(f"| {name} | {steps} | {row['auc_proba']:.2f} | {row['balanced_labels']:.2f} | "
                     f"{row['shift_over_noise']:.2f} | {row['auc_attribution']:.2f} | "
                     + (f"{z['auc_proba']:.2f} |" if z else "– |"))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", default="1,3")
    parser.add_argument("--fresh-adam", action="store_true",
                        help="diagnostic: zero Adam's moments before each step (isolates momentum as the noise)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--table", action="store_true", help="only print the docs page's table from the committed results")
    args = parser.parse_args()
    from attribution import attribute, influence  # a sibling script: experiments/ is on the path when run

    if args.table:
        results = Path(__file__).resolve().parent / "results"
        print("\n".join(table(results / "probe_signal.json", results / "probe_signal-fresh-adam.json")))
        return
    torch.set_num_threads(1)
    sc = load_scenario(SCENARIO)
    splits, key = load_data(sc.data, sc.seed)
    pool = splits["attacker"]
    surrogate = train_surrogate(pool, 10, seed=0)
    results: dict[str, dict[str, float]] = {}
    for steps in [int(s) for s in args.steps.split(",")]:
        sc.learner.params["steps_per_batch"] = steps
        learner, _, _, _ = build_components(sc)
        learner.pretrain(splits["pretrain"].x, splits["pretrain"].labels,
                         SetupContext(seed=child_seed(sc.seed, "learner"), data_key=key, cache=ArtifactCache()))
        start = learner.checkpoint_state()
        for name in ("passive", "canary", "canary-shared", "boundary"):
            gen = torch.Generator().manual_seed(1)
            moves = {"acc": [], "rej": [], "ctl": []}
            flips = {"acc": [], "rej": []}
            weights = {"acc": [], "rej": [], "oracle_acc": [], "oracle_rej": []}
            for _ in range(args.rounds):
                learner.restore_state(start)
                if args.fresh_adam:
                    learner.optimizer = torch.optim.Adam(learner.model.parameters(), lr=learner.lr)
                view = TargetView("effects", learner, None, None, effects_proba=True)
                x, y = design(name, pool.x, pool.labels, view, 2 * args.batch, gen)
                n = args.batch
                accept = torch.rand(n, generator=gen) < 0.5
                before_p, before_l = learner.predict_proba(x), learner.predict(x)
                target_kernel = influence(learner.model, x, x[:n], y[:n])
                learner.learn(x[:n][accept], y[:n][accept])
                after_p, after_l = learner.predict_proba(x), learner.predict(x)
                moved = after_p.clamp_min(1e-12).log() - before_p.clamp_min(1e-12).log()
                w = attribute(moved, influence(surrogate, x, x[:n], y[:n]))
                weights["acc"].append(w[accept])
                weights["rej"].append(w[~accept])
                w = attribute(moved, target_kernel)
                weights["oracle_acc"].append(w[accept])
                weights["oracle_rej"].append(w[~accept])
                m = movement(before_p, after_p, y)
                m = m - m[n:].median()  # the batch's common movement, as the inference removes it
                f = movement(before_l, after_l, y)
                moves["acc"].append(m[:n][accept])
                moves["rej"].append(m[:n][~accept])
                moves["ctl"].append(m[n:])
                flips["acc"].append(f[:n][accept])
                flips["rej"].append(f[:n][~accept])
            acc, rej, ctl = (torch.cat(moves[k]) for k in ("acc", "rej", "ctl"))
            fa, fr = torch.cat(flips["acc"]), torch.cat(flips["rej"])
            row = {
                "auc_attribution": auc(torch.cat(weights["acc"]), torch.cat(weights["rej"])),
                "auc_attribution_oracle": auc(torch.cat(weights["oracle_acc"]), torch.cat(weights["oracle_rej"])),
                "auc_proba": auc(acc, rej), "auc_proba_vs_controls": auc(acc, ctl),
                "balanced_labels": 0.5 * (float((fa > 0).float().mean()) + float((fr <= 0).float().mean())),
                "shift_over_noise": float((acc.mean() - ctl.mean()) / ctl.std().clamp_min(1e-9)),
                "move_accepted_median": float(acc.median()), "move_controls_median": float(ctl.median()),
                "move_controls_std": float(ctl.std()), "queries_per_point": view.queries_used / (2 * args.batch),
            }
            results[f"{name} steps={steps}"] = row
            print(f"{name:9s} steps={steps}: " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    if args.json:
        write_text_atomic(args.json, json.dumps({"rounds": args.rounds, "batch": args.batch, "results": results},
                                                indent=2))


if __name__ == "__main__":
    main()
