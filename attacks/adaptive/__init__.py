"""Online attackers that infer the critic's verdicts (from feedback or from effects) and adapt.

One idea per module: :mod:`.shadow_critic` (an acceptance model learned online), :mod:`.inference`
(verdicts from the model's output movements), :mod:`.policy` (bandit over ε × mode × probe design,
back-off on the rate) and :mod:`.attack` (the ``adaptive`` plugin that ties them together). Active
probing for ``effects`` attackers: :mod:`.probing` (probes in a batch, their twins and costs),
:mod:`.canary` (label-inconsistent canaries), :mod:`.boundary` (points bisected onto the decision
boundary) and :mod:`.group` (was anything learned? from whether the model changed). Attribution (a
learning step's movements split over the learned points through the surrogate's gradients) was
measured and is not used by the attack: ``experiments/attribution.py``, ``experiments/probe_signal.py``.
"""

from attacks.adaptive.attack import Adaptive

__all__ = ["Adaptive"]
