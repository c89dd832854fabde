"""Crafting cost of the ``accumulative`` attack: batched second-order matching against a per-sample loop.

One accumulative batch (default 16 MNIST-sized images on the small CNN, 3 matching steps, a
256-sample validation set and a 64-sample trigger) is crafted two ways:

(a) ``batched`` — what the plugin does (:func:`attacks.gradient_matching.match_gradient`): one
    forward, one parameter gradient with ``create_graph`` and one input gradient per step, for the
    whole batch.
(b) ``loop``    — the same computation written one sample at a time: each sample's parameter
    gradient with ``create_graph``, averaged (the mean of per-sample gradients *is* the batch
    gradient), then the same cosine objective and the same signed step.

Both start from the same priming direction (``∇θ⟨g_val, g_trig⟩``, computed once, outside the
timer) and must agree to float precision; the script checks it. Timings are interleaved, the best
of ``--repeats`` is reported with the median, and the ratio loop / batched is printed.

    python benchmarks/bench_accumulative.py [--batch 16] [--steps 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from attacks.gradient_matching import flat_grad, match_gradient, param_grads
from streamsim.nn import small_cnn


def loop_match(net: torch.nn.Module, params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor,
               direction: torch.Tensor, eps: float, steps: int) -> torch.Tensor:
    """The per-sample version of :func:`match_gradient` (same objective, same steps)."""
    step, x0, poison = 2.5 * eps / steps, x.detach(), x.detach().clone()
    for _ in range(steps):
        poison.requires_grad_(True)
        total = None
        for i in range(len(poison)):
            g = flat_grad(torch.autograd.grad(F.cross_entropy(net(poison[i:i + 1]), y[i:i + 1]), params,
                                              create_graph=True))
            total = g if total is None else total + g
        loss = 1 - F.cosine_similarity(total / len(poison), direction, dim=0)
        (grad,) = torch.autograd.grad(loss, poison)
        with torch.no_grad():
            poison = (x0 + (poison - step * grad.sign() - x0).clamp(-eps, eps)).clamp(-1, 1)
    return poison.detach()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = small_cnn().eval()
    params = list(net.parameters())
    x = torch.rand(args.batch, 1, 28, 28) * 2 - 1
    y = torch.randint(0, 10, (args.batch,))
    val_x, val_y = torch.rand(256, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (256,))
    trig_x, trig_y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (64,))
    g_val = param_grads(net, params, val_x, val_y, create_graph=True)
    g_trig = param_grads(net, params, trig_x, trig_y, create_graph=True)
    h = sum((a * b).sum() for a, b in zip(g_val, g_trig, strict=True))
    direction = F.normalize(flat_grad(torch.autograd.grad(h, params)), dim=0).detach()

    contenders = {
        "batched": lambda: match_gradient(net, params, x, y, direction, eps=args.eps, steps=args.steps),
        "loop": lambda: loop_match(net, params, x, y, direction, args.eps, args.steps),
    }
    out = {name: f() for name, f in contenders.items()}
    moved = (out["batched"] != out["loop"]).float().mean().item()
    # a sign step flips where a gradient entry is ~0 and the two sums round differently; allow a sliver
    assert moved < 0.01, f"batched and loop crafting disagree on {moved:.2%} of pixels"
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, f in contenders.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    for name, ts in times.items():
        print(f"{name:8s} best {min(ts):.3f} s  median {statistics.median(ts):.3f} s  "
              f"({args.batch / min(ts):.1f} samples/s)")
    print(f"ratio loop / batched (best): {min(times['loop']) / min(times['batched']):.1f}x "
          f"(batch {args.batch}, {args.steps} steps, {args.threads} thread(s); pixels that differ: {moved:.2%})")


if __name__ == "__main__":
    main()
