"""Online attackers that infer the critic's verdicts (from feedback or from effects) and adapt.

One idea per module: :mod:`.shadow_critic` (an acceptance model learned online), :mod:`.inference`
(verdicts from the model's output movements), :mod:`.policy` (bandit over ε × mode, back-off on
the rate) and :mod:`.attack` (the ``adaptive`` plugin that ties them together).
"""

from attacks.adaptive.attack import Adaptive

__all__ = ["Adaptive"]
