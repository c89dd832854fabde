"""An online shadow critic: a differentiable guess of "would the defense accept this ``(x, y)``?".

The paper's black-box attacker distils a shadow of De-Pois's critic once, from bought critic
scores (:mod:`attacks.shadow`). An online attacker has no scores: it sees, batch after batch,
accept/reject verdicts on its own submissions (``verdicts``) or verdicts it inferred from the
model's behaviour (``effects``). So the shadow here is a classifier of acceptance trained
incrementally with binary cross-entropy on those labels, noisy as they are: label noise that does
not depend on ``x`` shrinks the logits but leaves the decision rule where it was.

It has De-Pois's critic shape (:class:`attacks.shadow.ConditionalCritic`, flattened image ⊙ label
embedding → hidden → one logit) plus a linear term in the image alone: the gated path learns one
rule per class from a tenth of the feedback each, while many defenses' rules (or a critic
conditioned on the model's prediction) are mostly label-free. Its input gradient stands in for the
real critic's in FGSM/PGD (:func:`attacks.gradients.critic_grad` on :meth:`OnlineShadowCritic.score`).

Every :meth:`~OnlineShadowCritic.update` appends the labelled samples to a bounded replay buffer
(old ones fall out, so the shadow follows a defense that changes) and takes a few Adam steps on
minibatches drawn from it.

>>> import torch
>>> shadow = OnlineShadowCritic(hidden=(16,), steps=100, seed=0)
>>> x = torch.rand(64, 1, 28, 28) * 2 - 1
>>> y = torch.zeros(64, dtype=torch.long)
>>> bright = x.flatten(1).mean(1) > 0            # a toy defense: accept the brighter half
>>> shadow.update(x, y, bright)
>>> bool(((shadow.logit(x, y) > 0) == bright).float().mean() > 0.9)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attacks.shadow import IMAGE_PIXELS, ConditionalCritic
from streamsim import IMAGES, N_CLASSES, ConfigError, DataSpace
from streamsim.seeds import seeded, torch_generator
from streamsim.state import plain_optimizer_state, torch_optimizer_state


class AcceptanceNet(nn.Module):
    """Acceptance logit: a De-Pois-shaped conditional critic plus a label-free linear term."""

    def __init__(self, hidden: Sequence[int], n_classes: int = N_CLASSES, in_features: int = IMAGE_PIXELS) -> None:
        super().__init__()
        self.conditional = ConditionalCritic(hidden, n_classes, in_features)
        self.linear = nn.Linear(in_features, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.conditional(x, labels) + self.linear(x.flatten(1)).squeeze(1)


@dataclass(frozen=True)
class OnlineShadowSettings:
    """The ``adaptive`` attack's ``shadow`` table: its online shadow critic.

    ``hidden`` layer widths, ``steps`` Adam steps of learning rate ``lr`` per update on a replay
    buffer of ``buffer`` samples; ``warm_start`` pool points (and as many noisy copies) seed it
    with the prior "clean is accepted, noise is rejected" (0: no prior).
    """

    hidden: Sequence[int] = (256, 32)
    steps: int = 20
    lr: float = 3e-3
    buffer: int = 1024
    warm_start: int = 128

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if any(width < 1 for width in self.hidden):
            raise ConfigError(f"hidden must be layer widths >= 1, got {list(self.hidden)}")
        if self.steps < 0 or self.warm_start < 0:
            raise ConfigError(f"steps and warm_start must be >= 0, got {self.steps} and {self.warm_start}")
        if self.buffer < 1:
            raise ConfigError(f"buffer must be >= 1, got {self.buffer}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")


class OnlineShadowCritic:
    """Acceptance logit of ``(x, y)``, learned from (possibly noisy) verdicts as they come in."""

    def __init__(self, hidden: Sequence[int] = (256, 32), lr: float = 1e-3, steps: int = 20,
                 batch_size: int = 128, buffer: int = 2048, seed: int = 0, space: DataSpace = IMAGES) -> None:
        self.hidden = tuple(hidden)
        self.lr = lr
        self.steps = steps
        self.batch_size = batch_size
        self.buffer = buffer
        self.generator = torch_generator(seed)
        with seeded(seed):  # seeded initialisation, caller's global RNG untouched
            self.net = AcceptanceNet(self.hidden, space.n_classes, space.n_features).eval()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.x = torch.empty(0, *space.shape)
        self.y = torch.empty(0, dtype=torch.long)
        self.target = torch.empty(0)
        self.updates = 0

    @property
    def ready(self) -> bool:
        """Whether it has seen both an accepted and a rejected sample (else its gradient means nothing)."""
        return bool(len(self.target)) and 0 < float(self.target.mean()) < 1

    def score(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Differentiable acceptance logit (higher = more likely accepted); the critic stand-in."""
        return self.net(x, y.long())

    @torch.no_grad()
    def logit(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The acceptance logit with dropout off, without touching the network's mode."""
        mode = self.net.training
        self.net.eval()
        try:
            return self.net(x, y.long())
        finally:
            self.net.train(mode)

    def update(self, x: torch.Tensor, y: torch.Tensor, accepted: torch.Tensor) -> None:
        """Add labelled samples to the replay buffer and take ``steps`` Adam steps on it."""
        self.x = torch.cat([self.x, x.detach().float()])[-self.buffer:]
        self.y = torch.cat([self.y, y.long()])[-self.buffer:]
        self.target = torch.cat([self.target, accepted.float()])[-self.buffer:]
        n = len(self.target)
        # Dropout draws from torch's global RNG: seed it from our own generator, inside a fork so the
        # caller's global state is untouched, and the run repeats from its seed.
        dropout_seed = int(torch.randint(2**62, (1,), generator=self.generator))
        with seeded(dropout_seed):
            self.net.train()
            for _ in range(self.steps):
                idx = torch.randint(n, (min(self.batch_size, n),), generator=self.generator)
                loss = F.binary_cross_entropy_with_logits(self.net(self.x[idx], self.y[idx]), self.target[idx])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
            self.net.eval()
        self.updates += 1

    def checkpoint_state(self) -> dict[str, Any]:
        """Weights, optimizer moments, replay buffer and sampling generator (run checkpoints)."""
        return {"net": {k: v.detach().clone() for k, v in self.net.state_dict().items()},
                "optimizer": plain_optimizer_state(self.optimizer.state_dict()),
                "generator": self.generator.get_state(), "x": self.x.clone(), "y": self.y.clone(),
                "target": self.target.clone(), "updates": self.updates}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(torch_optimizer_state(state["optimizer"]))
        self.generator.set_state(state["generator"])
        self.x, self.y, self.target = state["x"].clone(), state["y"].clone(), state["target"].clone()
        self.updates = int(state["updates"])

