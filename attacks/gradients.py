"""Input gradients for gradient-sign attacks: which way to move ``x`` to fool a critic or a classifier.

Crafting needs ``∂loss/∂x`` and nothing else. Both functions here differentiate with
``torch.autograd.grad`` with respect to the input only, and :func:`frozen` turns off
``requires_grad`` on the models' weights and puts them in eval mode for the duration (dropout off,
so the gradient is the one of the deployed function). So crafting computes no weight gradient,
writes nothing to ``.grad``, and hands the models back in the mode it found them in — the
deployed learner may be mid-stream, a defense mid-refit.

Each function returns the *ascent direction* of the attacker's objective, whole batch at once:

- :func:`critic_grad` — ``∇ₓ Σ score(x, labels)``: moving along it raises the trust score.
- :func:`classifier_grad` — ``∇ₓ CE(logits(x), labels)`` (untargeted: away from the true label),
  or ``−∇ₓ CE(logits(x), target)`` when ``targeted`` (towards the target class).

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).train()
>>> x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
>>> with frozen(net):
...     g = classifier_grad(net, x, y)
>>> g.shape, net.training, all(p.grad is None and p.requires_grad for p in net.parameters())
(torch.Size([4, 1, 28, 28]), True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LogitsFn = Callable[[torch.Tensor], torch.Tensor]


def modules_of(*objects: object) -> list[nn.Module]:
    """The torch modules behind some objects: modules themselves, or an object's module attributes.

    Learners and defenses keep their networks as plain attributes (``learner.model``, a defense's
    critic); looking one level deep finds them without the protocols having to expose them.
    """
    found: dict[int, nn.Module] = {}
    for obj in objects:
        if obj is None:
            continue
        if isinstance(obj, nn.Module):
            candidates = [obj]
        else:
            candidates = [v for v in getattr(obj, "__dict__", {}).values() if isinstance(v, nn.Module)]
        for m in candidates:
            found.setdefault(id(m), m)
    return list(found.values())


@contextmanager
def frozen(*objects: object) -> Iterator[None]:
    """Eval mode and no weight gradients for the modules of ``objects``; everything restored on exit."""
    modules = modules_of(*objects)
    modes = [(m, m.training) for top in modules for m in top.modules()]
    params = {id(p): p for top in modules for p in top.parameters()}
    flags = [(p, p.requires_grad) for p in params.values()]
    try:
        for top in modules:
            top.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


def _input_grad(loss_of: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(loss_of(x), x)
    return grad


def critic_grad(score: ScoreFn, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``∇ₓ Σᵢ score(xᵢ, labelsᵢ)``: the direction that raises every sample's trust score."""
    return _input_grad(lambda v: score(v, labels).sum(), x)


def classifier_grad(logits: LogitsFn, x: torch.Tensor, labels: torch.Tensor, targeted: bool = False) -> torch.Tensor:
    """Ascent direction of the attacker's classification objective.

    Untargeted (``labels`` = true labels): ``∇ₓ CE``, pushing away from the true class.
    Targeted (``labels`` = target classes): ``−∇ₓ CE``, pulling towards the target.
    Summed, not averaged, over the batch so each sample's gradient is its own.
    """
    sign = -1.0 if targeted else 1.0
    return _input_grad(lambda v: sign * F.cross_entropy(logits(v), labels, reduction="sum"), x)
