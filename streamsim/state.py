"""State trees for plugins: what ``checkpoint_state`` returns and ``restore_state`` receives.

Public API. A *state tree* is dicts with string keys, lists, tensors, numpy arrays, and plain
``None`` / bool / int / float / str — nothing else, so a checkpoint never holds a pickle. Most of a
component's state is already like that (``module.state_dict()`` is a dict of tensors); a torch
optimizer's ``state_dict`` is not (integer keys, tuples), so it goes through the two helpers here.

>>> import torch
>>> model = torch.nn.Linear(2, 1)
>>> opt = torch.optim.Adam(model.parameters())
>>> model(torch.ones(1, 2)).sum().backward(); opt.step()
>>> plain = plain_optimizer_state(opt.state_dict())
>>> sorted(plain["state"]), type(plain["param_groups"][0]["betas"]).__name__
(['0', '1'], 'list')
>>> opt.load_state_dict(torch_optimizer_state(plain))
"""

from __future__ import annotations

from typing import Any

import torch


def plain_optimizer_state(state: dict[str, Any]) -> dict[str, Any]:
    """A torch optimizer's ``state_dict`` with string keys and lists only, so it fits a state tree."""
    return {"state": {str(k): {n: (v.cpu().clone() if isinstance(v, torch.Tensor) else v) for n, v in s.items()}
                      for k, s in state["state"].items()},
            "param_groups": [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
                             for g in state["param_groups"]]}


def torch_optimizer_state(plain: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`plain_optimizer_state`, ready for ``optimizer.load_state_dict``."""
    return {"state": {int(k): dict(s) for k, s in plain["state"].items()},
            "param_groups": [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in plain["param_groups"]]}

