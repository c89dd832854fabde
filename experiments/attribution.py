"""Per-sample attribution of a learning step: which of my points did the model learn, from how *all*
queried points moved.

One learning step on the accepted set ``A`` changes the model's log-probabilities at every point
``i`` by about ``−η J_i Σ_{j∈A} ∇ℓ_j`` (first order; ``J_i`` the Jacobian of point ``i``'s
log-probabilities in the weights, ``∇ℓ_j`` the loss gradient of learned point ``j``). Reading the
movement of a point alone, as :mod:`attacks.adaptive.inference` does, wastes this structure: the step moves each
point through *every* learned point (cross-influence), which is what drowns a point's own pull.
Here the attacker instead writes the observed movements of all its queried points (submitted and
controls, every class's log-probability) as a non-negative mix of the movements each submitted
point would cause on its own, and solves for the mix (non-negative least squares): a point with
weight near zero explains nothing of what happened, so it was most likely not learned.

The attacker has no access to the target's weights, so ``J`` and ``∇ℓ`` come from its own
surrogate (the same architecture trained on its pool): the attribution holds to the extent that the
two networks' gradient geometry agrees. Adam's per-weight scaling is ignored.

Measured by ``probe_signal.py`` beside it; the ``adaptive`` attack does not use it.

>>> import torch
>>> from torch import nn
>>> torch.manual_seed(0) and None
>>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
>>> x, y = torch.randn(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
>>> k = influence(net, x, x[:4], y[:4])
>>> k.shape
torch.Size([6, 3, 4])
>>> moved = k[:, :, [0, 2]].sum(2)              # points 0 and 2 were learned, 1 and 3 were not
>>> attribute(moved, k).round(decimals=2).tolist()
[1.0, 0.0, 1.0, 0.0]
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import nnls
from torch import nn
from torch.func import functional_call, jacrev, vmap


def influence(net: nn.Module, x_query: torch.Tensor, x_learn: torch.Tensor, y_learn: torch.Tensor) -> torch.Tensor:
    """``K[i, c, j]``: how a unit gradient step on ``(x_learn[j], y_learn[j])`` alone changes the
    log-probability of class ``c`` at ``x_query[i]`` (first order), shape ``query × classes × learn``."""
    params = {k: v.detach() for k, v in net.named_parameters()}

    def log_probs(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(functional_call(net, p, (x.unsqueeze(0),)), dim=1).squeeze(0)

    def loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(net, p, (x.unsqueeze(0),)), y.unsqueeze(0))

    jac = vmap(jacrev(log_probs), in_dims=(None, 0))(params, x_query)  # name -> (N, C, *shape)
    grads = vmap(jacrev(loss), in_dims=(None, 0, 0))(params, x_learn, y_learn)  # name -> (n, *shape)
    total = torch.zeros(len(x_query), jac[next(iter(jac))].shape[1], len(x_learn))
    for name in params:  # a handful of weight tensors, not samples
        total -= torch.einsum("ncp,mp->ncm", jac[name].flatten(2), grads[name].flatten(1))
    return total.detach()


def attribute(moved: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Non-negative weights ``w`` with ``moved ≈ kernel @ w`` (``moved``: query × classes; ``kernel``:
    query × classes × learn), each log-probability centred per point so a uniform shift explains nothing."""
    a = (kernel - kernel.mean(1, keepdim=True)).flatten(0, 1).double().numpy()
    b = (moved - moved.mean(1, keepdim=True)).flatten().double().numpy()
    scale = float(np.abs(a).max()) or 1.0
    weights, _ = nnls(a / scale, b, maxiter=50 * a.shape[1])
    return torch.from_numpy(weights / scale).float()
