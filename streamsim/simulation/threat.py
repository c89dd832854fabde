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

One signal is granted apart from the level, per source: **that a batch was processed**. After each
batch it sends, an attacker's ``observe`` is called ``feedback_delay`` time units after the batch
was screened (and learned, if the update policy learns at once), with the verdicts where its level
sees them and ``accepted = None`` otherwise. A real deployment does not announce when it has
processed a submission: ``announce_processed = false`` withholds the call from attackers that see
no verdicts, which then learn about the model only by querying it. The model an attacker queries
changes only at update events (:mod:`streamsim.simulation.parts.updates`); nothing else of the update policy
reaches the attacker.

Data is granted apart from the level, per source: every attack gets its own ``attacker`` split
(``SetupContext.pool``), the split it poisons when that is another (``base``), and the target's
training data (``training``) only when the scenario sets the source's ``training_data = true``.

>>> view = TargetView("none", learner=None, defense=None)
>>> view.predict(None)
Traceback (most recent call last):
...
streamsim.core.errors.ThreatModelError: an attack with knowledge 'none' may not query predictions
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from streamsim.core.abilities import LabelConditioned, Scoring, has
from streamsim.core.errors import BudgetExceeded, ThreatModelError

if TYPE_CHECKING:
    from streamsim.core.base import Defense, Learner

KNOWLEDGE_LEVELS = ("none", "effects", "verdicts", "posteriors", "white-box")
SEES_VERDICTS = frozenset({"verdicts", "white-box"})


@dataclass
class _Target:
    """What a view stands for, kept outside it: the deployed learner and defense, and the queries spent."""

    knowledge: str
    learner: Learner | None
    defense: Defense | None
    query_budget: int | None
    effects_proba: bool
    queries_used: int = 0


# Views are keys here, not holders: nothing reachable from a view's attributes leads to the model.
# Plugins may not import this module (a checked import contract), so this table is out of their reach.
_TARGETS: weakref.WeakKeyDictionary[TargetView, _Target] = weakref.WeakKeyDictionary()


class TargetView:
    """The attacker's window onto the deployed learner and defense: query methods and the query count.

    The view holds no reference to the learner or the defense, and no attribute can be set on it:
    ``view._learner`` raises :class:`AttributeError`, ``view.knowledge = "white-box"`` too. Only a
    white-box view hands the objects over (:attr:`learner`, :attr:`defense`).

    >>> view = TargetView("effects", learner=object(), defense=object(), query_budget=10)
    >>> view._learner
    Traceback (most recent call last):
    ...
    AttributeError: 'TargetView' object has no attribute '_learner'
    >>> view.queries_used = 0
    Traceback (most recent call last):
    ...
    AttributeError: a TargetView is read-only
    >>> view.defense
    Traceback (most recent call last):
    ...
    streamsim.core.errors.ThreatModelError: an attack with knowledge 'effects' may not hold the deployed defense
    """

    __slots__ = ("__weakref__",)

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
        _TARGETS[self] = _Target(knowledge, learner, defense, query_budget, effects_proba)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a TargetView is read-only")

    def __copy__(self) -> TargetView:
        return self  # a handle onto the one deployment: a copy is the same window

    def __deepcopy__(self, memo: dict[int, object]) -> TargetView:
        return self

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a TargetView cannot be pickled (it would carry the deployed model away)")

    def __repr__(self) -> str:
        t = _TARGETS[self]
        return f"TargetView(knowledge={t.knowledge!r}, queries_used={t.queries_used}, query_budget={t.query_budget})"

    @property
    def knowledge(self) -> str:
        return _TARGETS[self].knowledge

    @property
    def query_budget(self) -> int | None:
        return _TARGETS[self].query_budget

    @property
    def effects_proba(self) -> bool:
        return _TARGETS[self].effects_proba

    @property
    def queries_used(self) -> int:
        return _TARGETS[self].queries_used

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
        t = _TARGETS[self]
        if t.knowledge == "white-box":
            return  # a white-box attacker holds the model; nothing to count
        if t.query_budget is not None and t.queries_used + n > t.query_budget:
            raise BudgetExceeded(
                f"query budget exhausted: {t.queries_used} used + {n} asked > {t.query_budget}"
            )
        t.queries_used += n

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels of the deployed model (one query per sample)."""
        self._allow("query predictions", "effects", "posteriors", "white-box")
        self._spend(x.shape[0])
        with torch.no_grad():
            return _TARGETS[self].learner.predict(x)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior probabilities of the deployed model (one query per sample)."""
        if not (self.knowledge == "effects" and self.effects_proba):
            self._allow("query probabilities", "posteriors", "white-box")
        self._spend(x.shape[0])
        with torch.no_grad():
            return _TARGETS[self].learner.predict_proba(x)

    def critic_score(self, x: torch.Tensor, claimed: torch.Tensor, on_claimed: bool = False) -> torch.Tensor | None:
        """The defense's score for submitting ``x`` with these labels (one query per sample).

        ``None`` when the defense has no score (:class:`~streamsim.core.abilities.Scoring`): the
        queries are spent all the same, as the attacker learns it only by asking. With
        ``on_claimed`` a label-conditioned defense (De-Pois) is scored on the claimed labels
        whatever it conditions on when screening — the reference code queried its critic that way.
        """
        self._allow("query the defense's scores", "posteriors", "white-box")
        self._spend(x.shape[0])
        defense = _TARGETS[self].defense
        if not has(defense, Scoring):
            return None
        with torch.no_grad():
            if on_claimed and has(defense, LabelConditioned):
                return defense.conditioned_score(x, claimed).detach()
            return defense.score(x, claimed).detach()

    @property
    def learner(self) -> Learner:
        self._allow("hold the deployed learner", "white-box")
        return _TARGETS[self].learner

    @property
    def defense(self) -> Defense:
        self._allow("hold the deployed defense", "white-box")
        return _TARGETS[self].defense


def hears_processed(knowledge: str, announce_processed: bool) -> bool:
    """Whether an attacker is told that its batch was processed: verdicts say so themselves; without
    them, only when its source sets ``announce_processed`` (the default).

    >>> hears_processed("verdicts", False), hears_processed("effects", False), hears_processed("effects", True)
    (True, False, True)
    """
    return knowledge in SEES_VERDICTS or announce_processed


def restore_queries(view: TargetView, used: int) -> None:
    """Set a view's query count (a restored checkpoint): the simulator's, never the attacker's, to change."""
    _TARGETS[view].queries_used = int(used)
