"""Label-inconsistent canaries: submitted points whose claimed label the model does not predict.

A poison that keeps its true label and that the model already fits moves nothing when it is
learned: the loss gradient at a confident, correct point is almost zero. A *canary* is built to
do the opposite. It is a clean pool point sent with a claimed label the deployed model does not
predict for it, so its loss — and therefore the learning step's pull on the model's output at
that very point — is large and one-sided: if the learner took it, the claimed label's log-odds
there jump; if it did not, they move only as much as any other point (the controls' noise).

Cost to the attacker: one prediction query per canary (to choose a label the model does not
predict), the canary itself out of the sample budget, and exposure — a label that contradicts
the image is exactly what a label-aware critic such as De-Pois (``condition = "claimed"``)
rejects, so canaries are rejected more often than poisons, and a defense could learn to spot
them. Never-submitted twins built the same way are the controls.

>>> import torch
>>> from streamsim import TargetView
>>> class Zero:  # a model that predicts class 0 everywhere
...     def predict(self, x): return torch.zeros(len(x), dtype=torch.long)
>>> view = TargetView("effects", Zero(), None, query_budget=100)
>>> x, y = label_inconsistent(torch.rand(20, 1, 28, 28), torch.zeros(20, dtype=torch.long), view, 6,
...                           torch.Generator().manual_seed(0))
>>> x.shape[0], bool((y != 0).all()), view.queries_used
(6, True, 6)
"""

from __future__ import annotations

import torch

from streamsim import TargetView

N_CLASSES = 10


def label_inconsistent(pool_x: torch.Tensor, pool_y: torch.Tensor, view: TargetView, n: int,
                       generator: torch.Generator, shared: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` pool points, each claimed as a label the deployed model does not predict (``n`` queries).

    ``shared``: every canary of the call claims the same label, drawn at random, and the points
    are drawn among those of other true classes. Learning any of them then shifts the model
    towards that one label everywhere, a common movement the controls (claimed the same way)
    measure and the inference subtracts, leaving each canary's own pull.
    """
    if shared:
        label = int(torch.randint(N_CLASSES, (1,), generator=generator))
        others = torch.nonzero(pool_y != label).flatten()
        pick = others[torch.randperm(len(others), generator=generator)[:n]]
    else:
        pick = torch.randperm(len(pool_x), generator=generator)[:n]
    x = pool_x[pick]
    predicted = view.predict(x)
    if shared:
        claimed = torch.full((len(x),), label, dtype=torch.long)
        # the rare point the model already gives that label: claim the next label instead
        return x, torch.where(predicted == claimed, (claimed + 1) % N_CLASSES, claimed)
    shift = torch.randint(1, N_CLASSES, (len(x),), generator=generator)
    return x, (predicted + shift) % N_CLASSES
