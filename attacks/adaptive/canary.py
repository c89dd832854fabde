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
>>> claimed = label_inconsistent(torch.rand(6, 1, 28, 28), view, torch.Generator().manual_seed(0), n_classes=10)
>>> len(claimed), bool((claimed != 0).all()), view.queries_used
(6, True, 6)
"""

from __future__ import annotations

import torch

from streamsim import TargetView


def label_inconsistent(x: torch.Tensor, view: TargetView, generator: torch.Generator, n_classes: int,
                       shared: bool = False) -> torch.Tensor:
    """A claimed label for each point that the deployed model does not predict for it (``len(x)`` queries);
    labels are ``0..n_classes-1`` (the data space's classes).

    ``shared``: every point claims the same label, drawn at random (the rare point the model already
    gives that label claims the next one). Learning any of them then shifts the model towards that
    one label everywhere, a common movement the controls (claimed the same way) measure and the
    inference subtracts. Measured: it does not help (``experiments/probe_signal.py``), as the
    canaries' own pulls shrink with the common part.
    """
    predicted = view.predict(x)
    if shared:
        claimed = torch.full((len(x),), int(torch.randint(n_classes, (1,), generator=generator)))
        return torch.where(predicted == claimed, (claimed + 1) % n_classes, claimed)
    shift = torch.randint(1, n_classes, (len(x),), generator=generator)
    return (predicted + shift) % n_classes
