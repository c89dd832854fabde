"""Boundary probes: points the attacker places on the target's decision boundary by bisection.

Between two pool points the deployed model labels differently, the model's answer flips
somewhere on the segment joining them. A few label queries bisect the segment; the probe is the
point just on the far side of the flip, claimed as the label on the near side. Learning it pulls
the boundary across the probe, so its predicted label flips to the claimed one — visible even to
an attacker who may only query labels — while a never-submitted twin probe (a control) flips only
if the step moved the boundary everywhere.

Cost to the attacker: ``2 + steps`` label queries per probe (both ends, then each bisection step;
its twins cost the same), the probe out of the sample budget, and exposure — a blend of two
digits is unlike clean data, so a critic that models clean data rejects many probes, and a
defense could learn their look.

>>> import torch
>>> from streamsim import TargetView
>>> class Bright:  # a model that predicts 1 where the mean pixel is positive, else 0
...     def predict(self, x): return (x.flatten(1).mean(1) > 0).long()
>>> view = TargetView("effects", Bright(), None, query_budget=1000)
>>> pool = torch.cat([-torch.ones(4, 1, 28, 28), torch.ones(4, 1, 28, 28)])
>>> labels = torch.tensor([0] * 4 + [1] * 4)
>>> x, y = boundary_probes(pool[:4], labels[:4], pool, labels, view, torch.Generator().manual_seed(0), steps=8)
>>> bool((x.flatten(1).mean(1).abs() < 0.01).all()), bool((Bright().predict(x) != y).all()), view.queries_used
(True, True, 40)
"""

from __future__ import annotations

import torch

from streamsim import TargetView


def boundary_probes(x: torch.Tensor, y: torch.Tensor, pool_x: torch.Tensor, pool_y: torch.Tensor,
                    view: TargetView, generator: torch.Generator, steps: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """From each point ``x`` towards a pool point of another (true) class, the point just past the
    model's boundary, claimed as the near side's label (``(2 + steps) len(x)`` label queries, batched:
    one query call per bisection step)."""
    partner = torch.randint(len(pool_x), (len(x),), generator=generator)
    clash = pool_y[partner] == y
    partner[clash] = torch.argmax((pool_y[None, :] != y[clash, None]).int(), dim=1)  # first other-class point
    a, b = x, pool_x[partner]
    near, far = view.predict(a), view.predict(b)
    lo, hi = torch.zeros(len(a)), torch.ones(len(a))  # invariant: answer(lo) == near, answer(hi) != near

    def blend(t: torch.Tensor) -> torch.Tensor:
        return a + t.view(-1, *([1] * (a.dim() - 1))) * (b - a)  # images or feature vectors

    for _ in range(steps):
        mid = (lo + hi) / 2
        same = view.predict(blend(mid)) == near
        lo, hi = torch.where(same, mid, lo), torch.where(same, hi, mid)
    # where both ends get the same answer there is no flip on the segment: the probe is then the far
    # end claimed as a label the model does not give it, a plain label-inconsistent point
    claimed = torch.where(far == near, (near + 1) % 10, near)
    return blend(hi).clamp(-1, 1), claimed
