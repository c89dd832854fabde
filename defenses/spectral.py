"""``spectral``: spectral signatures over a sliding per-class window — reject the batch's outliers
along the top singular direction of its class.

Tran, Li & Madry, "Spectral Signatures in Backdoor Attacks", NeurIPS 2018. Poisons that share a
feature (a trigger) and a claimed label leave a trace in the top singular vector of that class's
centred feature matrix; their squared projections on it are outliers. The original runs once over
the whole training set; here each arriving batch is judged per claimed class against a sliding
window of the last ``window`` accepted samples of that class (the trusted split to start): stack
window and batch, centre, take the top right singular vector, and reject batch samples whose
squared projection exceeds ``factor`` × the ``quantile`` of the window samples' own.

``space = "features"`` (default, as in the paper) uses the deployed learner's penultimate features
(:class:`streamsim.core.abilities.Features`), recomputed at every screen since the learner keeps learning;
a learner without them is refused at ``fit`` (use ``space = "input"`` for pixels). Score:
``1 − projection² / threshold`` (higher = more trusted; boundary 0).

Threat model: catches a *cluster* — several poisons of one claimed class that share a direction
(backdoor triggers, a flipped class's images arriving together). Blind to diverse poisons with no
common direction, and to poisons that trickle in a few per batch; poisons it accepts enter the
window and make later ones look ordinary. The SVD makes the score data-dependent and
non-smooth: the defense has no differentiable ``score``.

>>> import torch
>>> from streamsim import Batch, SetupContext
>>> g = torch.Generator().manual_seed(0)
>>> trusted = Batch.clean(torch.randn(64, 1, 28, 28, generator=g) * 0.1, torch.zeros(64, dtype=torch.long))
>>> spectral = SpectralSignatures(space="input", window=64)
>>> spectral.fit(trusted, learner=None, context=SetupContext(seed=0))
>>> x = torch.randn(16, 1, 28, 28, generator=g) * 0.1
>>> x[:6, :, :4, :4] = 1.0                              # six carry a trigger patch
>>> spectral.screen(Batch.clean(x, torch.zeros(16, dtype=torch.long))).accept[:6].any().item()
False
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from streamsim import (
    N_CLASSES,
    Batch,
    ConfigError,
    Defense,
    Features,
    Learner,
    PluginError,
    SetupContext,
    Verdicts,
    require,
    require_trusted,
)

Space = Literal["input", "features"]


class SpectralSignatures(Defense):
    """Reject batch samples that stand out along their class's top singular direction."""

    accepts = ("images", "vectors")

    def __init__(self, window: int = 64, quantile: float = 0.95, factor: float = 1.5,
                 space: Space = "features") -> None:
        if window < 2:
            raise ConfigError(f"window must be >= 2, got {window}")
        if not 0.0 < quantile <= 1.0:
            raise ConfigError(f"quantile must be in (0, 1], got {quantile}")
        if factor <= 0:
            raise ConfigError(f"factor must be > 0, got {factor}")
        if space not in ("input", "features"):
            raise ConfigError(f"space must be 'input' or 'features', got {space!r}")
        self.window = window
        self.quantile = quantile
        self.factor = factor
        self.space = space
        self.learner: Learner | None = None
        self.recent_x: torch.Tensor | None = None  # the window, all classes together
        self.recent_y: torch.Tensor | None = None
        self.n_classes = N_CLASSES  # the data's, from fit

    def fit(self, trusted: Batch, learner: Learner, context: SetupContext) -> None:
        require_trusted(trusted, "spectral")
        if self.space == "features":
            require(learner, Features, "spectral with space='features' (use space='input' otherwise): learner")
        self.learner = learner
        self.n_classes = context.space.n_classes
        self.recent_x, self.recent_y = self._slide(trusted.x, trusted.labels)

    def _slide(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last ``window`` samples of each class, in arrival order."""
        newest_first = torch.arange(len(y) - 1, -1, -1)
        ys = y[newest_first]
        onehot = torch.nn.functional.one_hot(ys, self.n_classes)
        rank = (onehot.cumsum(0) * onehot).sum(1)  # 1 for a class's newest sample, 2 for the next...
        keep = newest_first[rank <= self.window].flip(0)
        return x[keep], y[keep]

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.space == "input":
            return x.flatten(1)
        return self.learner.features(x).flatten(1)

    @property
    def boundary(self) -> float:
        return 0.0

    def screen(self, batch: Batch) -> Verdicts:
        if self.recent_x is None:
            raise PluginError("spectral: screen before fit")
        with torch.no_grad():
            feats = self._embed(torch.cat([self.recent_x, batch.x]))
        ref, new = feats[: len(self.recent_y)], feats[len(self.recent_y):]
        score = torch.ones(len(batch))
        for c in torch.unique(batch.labels).tolist():  # one SVD per class present (≤ 10)
            mine, theirs = batch.labels == c, self.recent_y == c
            if int(theirs.sum()) < 2:
                continue  # no reference for this class: nothing to compare against
            m = torch.cat([ref[theirs], new[mine]])
            centred = m - m.mean(0)
            top = torch.linalg.svd(centred, full_matrices=False).Vh[0]
            spread = (centred @ top) ** 2
            threshold = self.factor * torch.quantile(spread[: int(theirs.sum())], self.quantile).clamp(min=1e-12)
            score[mine] = 1.0 - spread[int(theirs.sum()):] / threshold
        return Verdicts(accept=score >= 0.0, score=score)

    def after_learn(self, accepted: Batch) -> None:
        if len(accepted):
            self.recent_x, self.recent_y = self._slide(torch.cat([self.recent_x, accepted.x]),
                                                       torch.cat([self.recent_y, accepted.labels]))

    def checkpoint_state(self) -> dict[str, Any]:
        return {"recent_x": self.recent_x.clone(), "recent_y": self.recent_y.clone()}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.recent_x, self.recent_y = torch.as_tensor(state["recent_x"]), torch.as_tensor(state["recent_y"])
