"""De-Pois training speed: our WGAN-GP loop against a bare floor loop of the same passes, same run.

Three loops over the same networks (:class:`Critic`, :class:`Generator`), batch 32, 5 critic steps
per generator step, timed in alternating rounds (median of ``--rounds``) in CPU time of this
process, so that other jobs on the machine inflate every loop alike:

* **ours** — :func:`defenses.depois.wgan_gp.train_critic` itself (sampling batches, progress, all);
* **floor** — the same forward/backward passes and optimizer steps in a bare loop: one fixed batch,
  no sampling, no progress, no loss reads. ``ours / floor`` in iterations/s is the ratio the issue
  asks for (goal ≥ 0.8);
* **naive** — the loop as first written (three critic calls per critic step, the generator step
  also computing the critic's weight gradients, PyTorch's LeakyReLU whose double backward runs
  zeros back through the forward pass, a loss read every step): ``naive / ours`` in time is the
  speed-up. Same gradients, bit for bit, as ``tests/test_depois_train.py`` checks.

It also prints one critic forward + backward + RMSprop step at batch 32 (the issue's arithmetic
unit) and how many of those one iteration costs.

    python benchmarks/bench_depois_train.py [--iterations 30] [--rounds 5] [--threads 1]
    python benchmarks/bench_depois_train.py --paper-fit   # + a whole `paper`-preset De-Pois fit (~10-30 min)

``--paper-fit`` runs ``experiments/depois_detection.py --presets fast,paper`` (cold fits, seed 0) in a
child process — the fast row is the comparison — and writes its rows to
``experiments/results/depois-detection-seed0.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from defenses.depois.networks import LATENT_DIM, N_CLASSES, Critic, Generator, LeakyReLU
from defenses.depois.wgan_gp import RMSPROP_RHO, WGANGPSettings, gradient_penalty, train_critic

HERE = Path(__file__).resolve().parent
BATCH, N_CRITIC, LR, GP_WEIGHT = 32, 5, 2e-4, 10.0
N_DATA = 6000  # |S_aug| for 1,000 trusted digits and augment_factor 6 (random pixels: speed does not care)


def _nets() -> tuple[Generator, Critic, torch.optim.Optimizer, torch.optim.Optimizer]:
    gen, critic = Generator(), Critic()
    opt_g = torch.optim.RMSprop(gen.parameters(), lr=LR, alpha=RMSPROP_RHO, foreach=True)
    opt_c = torch.optim.RMSprop(critic.parameters(), lr=LR, alpha=RMSPROP_RHO, foreach=True)
    return gen, critic, opt_g, opt_c


def floor_loop(x: torch.Tensor, y: torch.Tensor) -> Callable[[int], None]:
    """The passes :func:`train_critic` makes, in a bare loop on one fixed batch."""
    gen, critic, opt_g, opt_c = _nets()
    real, labels, labels2 = x[:BATCH].clone(), y[:BATCH].clone(), y[:BATCH].repeat(2)
    noise, alpha = torch.randn(BATCH, LATENT_DIM), torch.rand(BATCH, 1, 1, 1)

    def run(iterations: int) -> None:
        for _ in range(iterations):
            critic.requires_grad_(True)
            for _ in range(N_CRITIC):
                with torch.no_grad():
                    fake = gen(noise, labels)
                scores = critic(torch.cat([real, fake]), labels2)
                loss = scores[BATCH:].mean() - scores[:BATCH].mean() + GP_WEIGHT * gradient_penalty(
                    critic, real, fake, labels, alpha)
                opt_c.zero_grad(set_to_none=True)
                loss.backward()
                opt_c.step()
            critic.requires_grad_(False)
            g_loss = -critic(gen(noise, labels), labels).mean()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
    return run


def with_torch_leaky_relu(critic: Critic) -> Critic:
    """The critic as first written: PyTorch's LeakyReLU (whose double backward runs through the forward pass)."""
    for i, layer in enumerate(critic.body):
        if isinstance(layer, LeakyReLU):
            critic.body[i] = torch.nn.LeakyReLU(layer.negative_slope)
    return critic


def naive_loop(x: torch.Tensor, y: torch.Tensor) -> Callable[[int], None]:
    """The loop as first written: three critic calls per critic step, critic gradients in generator steps,
    PyTorch's LeakyReLU, a loss read every step."""
    gen, critic = Generator(), with_torch_leaky_relu(Critic())
    opt_g = torch.optim.RMSprop(gen.parameters(), lr=LR, alpha=RMSPROP_RHO)
    opt_c = torch.optim.RMSprop(critic.parameters(), lr=LR, alpha=RMSPROP_RHO)
    losses: list[float] = []

    def run(iterations: int) -> None:
        for _ in range(iterations):
            for _ in range(N_CRITIC):
                idx = torch.randint(len(x), (BATCH,))
                real, labels = x[idx], y[idx]
                with torch.no_grad():
                    fake = gen(torch.randn(BATCH, LATENT_DIM), labels)
                wasserstein = critic(fake, labels).mean() - critic(real, labels).mean()
                alpha = torch.rand(BATCH, 1, 1, 1)
                mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
                (grad,) = torch.autograd.grad(critic(mixed, labels).sum(), mixed, create_graph=True)
                c_loss = wasserstein + GP_WEIGHT * (1 - grad.flatten(1).norm(dim=1)).pow(2).mean()
                opt_c.zero_grad()
                c_loss.backward()
                opt_c.step()
            labels = torch.randint(N_CLASSES, (BATCH,))
            g_loss = -critic(gen(torch.randn(BATCH, LATENT_DIM), labels), labels).mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            losses[:] = [c_loss.item(), wasserstein.item(), g_loss.item()]
    return run


def ours_loop(x: torch.Tensor, y: torch.Tensor) -> Callable[[int], None]:
    def run(iterations: int) -> None:
        train_critic(x, y, WGANGPSettings(steps=iterations, batch_size=BATCH, n_critic=N_CRITIC, lr=LR,
                                          gp_weight=GP_WEIGHT), seed=0)
    return run


def unit_loop(x: torch.Tensor, y: torch.Tensor) -> Callable[[int], None]:
    """One critic forward + backward + RMSprop step at batch 32: the issue's arithmetic unit."""
    _, critic, _, opt_c = _nets()
    real, labels = x[:BATCH].clone(), y[:BATCH].clone()

    def run(iterations: int) -> None:
        for _ in range(iterations):
            loss = critic(real, labels).mean()
            opt_c.zero_grad(set_to_none=True)
            loss.backward()
            opt_c.step()
    return run


def timed(loops: dict[str, Callable[[int], None]], iterations: dict[str, int], rounds: int) -> dict[str, float]:
    """Median CPU seconds per iteration of each loop, the loops alternating round by round."""
    for run in loops.values():
        run(2)  # warm-up: allocator, first-call dispatch
    samples: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(rounds):
        for name, run in loops.items():
            start = time.process_time()
            run(iterations[name])
            samples[name].append((time.process_time() - start) / iterations[name])
    return {name: statistics.median(s) for name, s in samples.items()}


def paper_fit(threads: int) -> None:
    experiments = HERE.parent / "experiments"  # the detection numbers are an experiment's; this times it
    out = experiments / "results" / "depois-detection-seed0.json"
    cmd = [sys.executable, str(experiments / "depois_detection.py"), "--presets", "fast,paper", "--seed", "0",
           "--json", str(out)]
    print("\n$", " ".join(["python", *cmd[1:]]).replace(str(HERE.parent) + "/", ""), flush=True)
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})  # torch's thread count
    print(f"fast and paper fits + screening: {time.perf_counter() - started:.0f} s wall "
          f"(rows in {out.relative_to(HERE.parent)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=30, help="WGAN-GP iterations per loop per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fair on a shared machine)")
    parser.add_argument("--paper-fit", action="store_true", help="also time a whole paper-preset De-Pois fit")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(N_DATA, 1, 28, 28, generator=gen) * 2 - 1, torch.randint(N_CLASSES, (N_DATA,), generator=gen)
    loops = {"ours": ours_loop(x, y), "floor": floor_loop(x, y), "naive": naive_loop(x, y), "unit": unit_loop(x, y)}
    iterations = {**dict.fromkeys(("ours", "floor", "naive"), args.iterations), "unit": 10 * args.iterations}
    t = timed(loops, iterations, args.rounds)
    print(f"WGAN-GP iteration (batch {BATCH}, {N_CRITIC} critic steps + 1 generator step), torch threads {args.threads}, "
          f"CPU ms per iteration, median of {args.rounds} rounds of {args.iterations}:")
    print(f"  ours  {1e3 * t['ours']:7.1f} ms  {1 / t['ours']:6.2f} it/s")
    print(f"  floor {1e3 * t['floor']:7.1f} ms  {1 / t['floor']:6.2f} it/s   ours / floor (it/s): "
          f"{t['floor'] / t['ours']:.2f} (goal >= 0.8)")
    print(f"  naive {1e3 * t['naive']:7.1f} ms  {1 / t['naive']:6.2f} it/s   speed-up of ours over naive: "
          f"{t['naive'] / t['ours']:.2f}x")
    print(f"  unit (critic fwd+bwd+step, batch {BATCH}) {1e3 * t['unit']:.2f} ms; one iteration of ours = "
          f"{t['ours'] / t['unit']:.1f} units")
    print(f"  => paper preset's 10,000 iterations at this rate: {10_000 * t['ours'] / 60:.1f} min of CPU")
    if args.paper_fit:
        paper_fit(args.threads)


if __name__ == "__main__":
    main()
