"""The threat model as data: what each knowledge level lets an attacker see, enforced here.

An attack declares ``knowledge``; the simulator hands it a :class:`TargetView` of that level.

=============  ==========================================================================
level          what the view allows
=============  ==========================================================================
``none``       nothing (blind attacks: label flips, noise)
``effects``    predicted labels of the deployed model on chosen points (probabilities if
               the scenario allows), counted against the query budget; no verdicts
``verdicts``   per-sample accept/reject of its own submissions (maybe delayed and noisy)
``posteriors`` the model's probabilities and the critic's scores on chosen points,
               counted against the query budget (the paper's black-box setting)
``white-box``  the deployed learner and defense objects themselves, gradients included
=============  ==========================================================================

Data is granted apart from the level, per source: every attack gets its own ``attacker`` split
(``SetupContext.pool``), the split it poisons when that is another (``base``), and the target's
training data (``training``) only when the scenario sets the source's ``training_data = true``.

>>> view = TargetView("none", learner=None, defense=None)
>>> view.predict(None)
Traceback (most recent call last):
...
streamsim.errors.ThreatModelError: an attack with knowledge 'none' may not query predictions
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from streamsim.abilities import LabelConditioned, Scoring, has
from streamsim.errors import BudgetExceeded, ThreatModelError

if TYPE_CHECKING:
    from streamsim.base import Defense, Learner

KNOWLEDGE_LEVELS = ("none", "effects", "verdicts", "posteriors", "white-box")
SEES_VERDICTS = frozenset({"verdicts", "white-box"})


class TargetView:
    """The attacker's window onto the deployed learner and defense."""

    def __init__(
        self,
        knowledge: str,
        learner: Learner | None,
        defense: Defense | None,
        query_budget: int | None = None,
        effects_proba: bool = False,
    ) -> None:
        if knowledge not in KNOWLEDGE_LEVELS:
            raise ThreatModelError(f"unknown knowledge level {knowledge!r}; expected one of {', '.join(KNOWLEDGE_LEVELS)}")
        self.knowledge = knowledge
        self._learner = learner
        self._defense = defense
        self.query_budget = query_budget
        self.effects_proba = effects_proba
        self.queries_used = 0

    @property
    def sees_verdicts(self) -> bool:
        return self.knowledge in SEES_VERDICTS

    @property
    def queries_left(self) -> float:
        return float("inf") if self.query_budget is None else self.query_budget - self.queries_used

    def _allow(self, what: str, *levels: str) -> None:
        if self.knowledge not in levels:
            raise ThreatModelError(f"an attack with knowledge {self.knowledge!r} may not {what}")

    def _spend(self, n: int) -> None:
        if self.knowledge == "white-box":
            return  # a white-box attacker holds the model; nothing to count
        if self.query_budget is not None and self.queries_used + n > self.query_budget:
            raise BudgetExceeded(
                f"query budget exhausted: {self.queries_used} used + {n} asked > {self.query_budget}"
            )
        self.queries_used += n

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels of the deployed model (one query per sample)."""
        self._allow("query predictions", "effects", "posteriors", "white-box")
        self._spend(x.shape[0])
        with torch.no_grad():
            return self._learner.predict(x)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior probabilities of the deployed model (one query per sample)."""
        if not (self.knowledge == "effects" and self.effects_proba):
            self._allow("query probabilities", "posteriors", "white-box")
        self._spend(x.shape[0])
        with torch.no_grad():
            return self._learner.predict_proba(x)

    def critic_score(self, x: torch.Tensor, claimed: torch.Tensor, on_claimed: bool = False) -> torch.Tensor | None:
        """The defense's score for submitting ``x`` with these labels (one query per sample).

        ``None`` when the defense has no score (:class:`~streamsim.abilities.Scoring`): the
        queries are spent all the same, as the attacker learns it only by asking. With
        ``on_claimed`` a label-conditioned defense (De-Pois) is scored on the claimed labels
        whatever it conditions on when screening — the reference code queried its critic that way.
        """
        self._allow("query the defense's scores", "posteriors", "white-box")
        self._spend(x.shape[0])
        if not has(self._defense, Scoring):
            return None
        with torch.no_grad():
            if on_claimed and has(self._defense, LabelConditioned):
                return self._defense.conditioned_score(x, claimed).detach()
            return self._defense.score(x, claimed).detach()

    @property
    def learner(self) -> Learner:
        self._allow("hold the deployed learner", "white-box")
        return self._learner

    @property
    def defense(self) -> Defense:
        self._allow("hold the deployed defense", "white-box")
        return self._defense
