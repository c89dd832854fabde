"""The protocols every learner, defense and attack implements, and the contexts they are handed.

Each role has one or two required methods. Optional abilities (a differentiable ``logits`` or
``score``, checkpoints, verdict beliefs) are not here: a component has one when it defines its
methods, as declared by the protocols in :mod:`streamsim.core.abilities`. Plugins import all of this
from ``streamsim``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from streamsim.core.batch import Batch, Verdicts
from streamsim.core.errors import PluginError
from streamsim.core.progress import ProgressFactory, silent
from streamsim.core.space import IMAGES, DataSpace
from streamsim.seeds import torch_generator

if TYPE_CHECKING:
    from streamsim.artifacts.cache import ArtifactCache
    from streamsim.simulation.threat import TargetView

N_CLASSES = IMAGES.n_classes  # the image datasets' classes; a run's own are its data space's


@dataclass
class SetupContext:
    """What a component receives once, before the stream starts.

    ``seed`` is this component's own child seed (derived from the run seed and the component's
    name), ``data_key`` identifies the dataset and split (for cache keys), ``cache`` is the artifact
    cache or ``None`` when caching is off, ``progress`` opens progress bars, ``space`` is the data's
    sample shape, class count and feature ranges (:mod:`streamsim.core.space`). ``device`` (the
    scenario's resolved ``device``) is where the component keeps its torch networks: data it trains
    on moves there once; the tensors it is handed and returns stay on the CPU.
    """

    seed: int
    data_key: str = ""
    cache: ArtifactCache | None = None
    progress: ProgressFactory = silent
    space: DataSpace = IMAGES
    # attacks only: the attacker's own data pool and its view of the target
    pool: Batch | None = None
    view: TargetView | None = None
    # attacks only: the split its base samples come from when that is not ``pool`` (``pool = "test"``)
    base: Batch | None = None
    # attacks only: the target's training data, when the scenario grants it (``training_data = true``)
    training: Batch | None = None
    # attacks only: its own harm probes (streamsim.core.probes), e.g. the target inputs a targeted attack
    # chose in ``probes`` — what it aims at, which it knows by definition
    probes: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def generator(self) -> torch.Generator:
        return torch_generator(self.seed)


@dataclass
class CraftContext:
    """What an attack receives with every base batch it must poison."""

    time: float
    rng: np.random.Generator
    generator: torch.Generator
    view: TargetView
    extras: dict[str, Any] = field(default_factory=dict)
    space: DataSpace = IMAGES


@dataclass(frozen=True)
class Observation:
    """What an attacker learns after one of its batches went through the gate.

    ``accepted`` is the per-sample verdict as the attacker sees it — ``None`` when its knowledge
    level gives it no verdicts, possibly noisy (flipped) under ``verdicts``; every observation arrives
    ``feedback_delay`` after its batch was screened, and without verdicts it may be withheld altogether
    (``announce_processed = false``, :mod:`streamsim.simulation.threat`).
    ``submitted_at`` is when the batch was screened, ``time`` when this observation arrives.
    """

    time: float
    submitted_at: float
    batch: Batch
    accepted: torch.Tensor | None


class Learner:
    """An incrementally trained classifier.

    Required: :meth:`learn` and :meth:`predict_proba`. :meth:`pretrain` runs once on the pretrain
    split before the stream starts.
    """

    n_classes: int = N_CLASSES
    #: the data kinds it handles (:mod:`streamsim.core.space`); a run on other data is refused before it starts
    accepts: ClassVar[tuple[str, ...]] = ("images",)
    #: the update policies (``learner.update``, :mod:`streamsim.simulation.parts.updates`) it can run; ``None``: every one
    update_policies: ClassVar[tuple[str, ...] | None] = None

    def pretrain(self, x: torch.Tensor, y: torch.Tensor, context: SetupContext) -> None:
        """Train from scratch on the pretrain split. Default: learn it as one batch."""
        self.learn(x, y)

    def learn(self, x: torch.Tensor, y: torch.Tensor) -> None:
        raise NotImplementedError

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities, ``N × n_classes``. Must not change the learner."""
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict_proba(x).argmax(dim=1)


def require_trusted(trusted: Batch, defense: str) -> None:
    """Refuse an empty trusted split in ``fit``, naming the defense and the setting that fixes it.

    >>> require_trusted(Batch.clean(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), "knn")
    Traceback (most recent call last):
    ...
    streamsim.core.errors.PluginError: knn: the trusted split is empty; give data.splits.trusted a share
    """
    if len(trusted) == 0:
        raise PluginError(f"{defense}: the trusted split is empty; give data.splits.trusted a share")


class Defense:
    """Screens every batch before the learner sees it.

    Required: :meth:`screen`. :meth:`fit` runs once on the trusted split (default: nothing).
    """

    accepts: ClassVar[tuple[str, ...]] = ("images",)

    def fit(self, trusted: Batch, learner: Learner, context: SetupContext) -> None:
        pass

    def screen(self, batch: Batch) -> Verdicts:
        raise NotImplementedError

    def after_learn(self, accepted: Batch) -> None:
        """Called with what the learner just learned. Only online defenses use it."""


class Attack:
    """Turns a base batch drawn from the attacker's pool into poison.

    Required: :meth:`craft`. ``knowledge`` declares what the simulator lets it see (see
    :mod:`streamsim.simulation.threat`); the simulator enforces it.
    """

    knowledge: ClassVar[str] = "none"
    accepts: ClassVar[tuple[str, ...]] = ("images",)
    #: its column names in result tables (the leaderboard) by knowledge level, e.g. ``{"posteriors":
    #: "black-box X"}``; without one an attack is named by its plugin name, followed by its knowledge
    #: when that is not the attack's default (``name (posteriors)``)
    labels: ClassVar[dict[str, str]] = {}
    #: True when :meth:`prepare` needs ``context.training``: a scenario that does not grant the
    #: source ``training_data`` is then refused before anything trains
    needs_training_data: bool = False

    def prepare(self, context: SetupContext) -> None:
        """Called once before the stream starts (e.g. to distill shadow models)."""

    def craft(self, base: Batch, context: CraftContext) -> Batch:
        raise NotImplementedError

    def observe(self, observation: Observation) -> None:
        """Feedback after a submitted batch was screened. Default: ignore it."""

    def stats(self) -> dict[str, float]:
        """Numbers worth putting in the run summary (shadow fidelity, ...). Default: none.

        Also polled at every evaluation, so it must change nothing; the values become timeline
        columns ``attack:<source>:<key>``.
        """
        return {}

    def assess(self, x: torch.Tensor, y: torch.Tensor, learner: Learner, defense: Defense) -> dict[str, float]:
        """Measurement only: called by the runner once the attacked run is over, with held-out data
        and the *real* deployed models (e.g. how well shadow models stand in for them). What it
        returns goes into the summary; it must not feed back into crafting. Default: none.
        """
        return {}


__all__ = ["Attack", "CraftContext", "DataSpace", "Defense", "Learner", "Observation", "SetupContext", "Verdicts", "Batch"]
