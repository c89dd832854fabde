"""``backdoor``: teach the model a trigger — patch or blend, dirty-label or clean-label.

- **Dirty label** (Gu et al., "BadNets", 2017): stamp the trigger on the attacker's samples of other
  classes and claim the ``target`` label. A model that learns enough of them maps the trigger to
  the target class while it keeps its accuracy on clean inputs.
- **Clean label** (Turner et al., "Label-Consistent Backdoor Attacks", 2019): only samples *of* the
  target class are sent, with their true labels, so a label check finds nothing wrong. To make the
  model rely on the trigger rather than on the digit, each is first pushed away from its own class
  by ``clean_eps``-bounded PGD (``clean_steps`` steps) on a surrogate classifier the attacker trains
  on its own pool (no queries: knowledge ``none``), then stamped.

Triggers: ``patch`` — a ``size``×``size`` square of ``value`` in a ``corner`` (on feature vectors:
the last ``size`` features set to ``value`` of their range); ``blend`` (Chen et al., 2017) —
``(1 − blend_alpha)·x + blend_alpha·pattern`` with a fixed uniform-noise pattern drawn from
``pattern_seed``. Success is the ``asr`` probe (:mod:`streamsim.core.probes`): held-out inputs not of
the target class, trigger stamped, classified as ``target``.

>>> import numpy as np, torch
>>> from streamsim import Batch, CraftContext, IMAGES
>>> base = Batch.clean(torch.full((4, 1, 28, 28), -1.0), torch.tensor([0, 1, 2, 3]))
>>> ctx = CraftContext(time=0.0, rng=np.random.default_rng(0), generator=torch.Generator(), view=None)
>>> poison = Backdoor(target=0, size=3).craft(base, ctx)
>>> poison.labels.tolist(), float(poison.x[0, 0, -1, -1]), float(poison.x[0, 0, 0, 0])  # a 0 teaches nothing
([0, 0, 0], 1.0, -1.0)
>>> Backdoor(target=0).harm_probes(base, IMAGES)["asr"].wanted.tolist()
[0, 0, 0]
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from attacks.gradients import classifier_grad, frozen
from streamsim import IMAGES, Attack, Batch, ConfigError, CraftContext, DataSpace, PluginError, Probe, SetupContext
from streamsim.nn import classifier
from streamsim.seeds import seeded, shuffled_batches, torch_generator

Corner = Literal["bottom-right", "bottom-left", "top-right", "top-left"]
CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")


class Backdoor(Attack):
    """Stamp a trigger; claim the target label (dirty) or send perturbed target-class samples (clean)."""

    knowledge = "none"
    accepts = ("images", "vectors")

    def __init__(self, target: int = 0, trigger: Literal["patch", "blend"] = "patch", label: Literal["dirty", "clean"] = "dirty",
                 size: int = 3, corner: Corner = "bottom-right", value: float = 1.0, blend_alpha: float = 0.2,
                 pattern_seed: int = 0, clean_eps: float = 0.3, clean_steps: int = 10, surrogate_epochs: int = 3) -> None:
        if trigger not in ("patch", "blend"):
            raise ConfigError(f"trigger must be 'patch' or 'blend', got {trigger!r}")
        if label not in ("dirty", "clean"):
            raise ConfigError(f"label must be 'dirty' or 'clean', got {label!r}")
        if corner not in CORNERS:
            raise ConfigError(f"corner must be one of {', '.join(CORNERS)}, got {corner!r}")
        if target < 0 or size < 1 or not -1.0 <= value <= 1.0 or not 0.0 < blend_alpha <= 1.0:
            raise ConfigError(f"need target >= 0, size >= 1, value in [-1, 1], blend_alpha in (0, 1]; got {target}, "
                              f"{size}, {value}, {blend_alpha}")
        if clean_eps < 0 or clean_steps < 0 or surrogate_epochs < 1:
            raise ConfigError(f"need clean_eps >= 0, clean_steps >= 0, surrogate_epochs >= 1; got {clean_eps}, "
                              f"{clean_steps}, {surrogate_epochs}")
        self.target, self.trigger, self.label = target, trigger, label
        self.size, self.corner, self.value = size, corner, value
        self.blend_alpha, self.pattern_seed = blend_alpha, pattern_seed
        self.clean_eps, self.clean_steps, self.surrogate_epochs = clean_eps, clean_steps, surrogate_epochs
        self.own_: Batch | None = None  # clean label: its pool samples of the target class
        self.surrogate_: nn.Module | None = None

    def stamp(self, x: torch.Tensor, space: DataSpace = IMAGES) -> torch.Tensor:
        """``x`` with the trigger on it, inside the data's space."""
        if self.trigger == "blend":
            pattern = torch.rand(x.shape[1:], generator=torch_generator(self.pattern_seed))
            pattern = space.lo + pattern * (space.hi - space.lo)  # the same noise in every feature's range
            return space.project((1 - self.blend_alpha) * x + self.blend_alpha * pattern)
        if space.kind == "vectors":
            n = min(self.size, x.shape[1])
            level = space.lo + (self.value + 1) / 2 * (space.hi - space.lo)
            out = x.clone()
            out[:, -n:] = level.expand_as(out)[:, -n:] if level.dim() else level
            return space.project(out)
        if self.size > min(x.shape[-2:]):
            raise ConfigError(f"size {self.size} is larger than the image")
        rows = slice(-self.size, None) if self.corner.startswith("bottom") else slice(0, self.size)
        cols = slice(-self.size, None) if self.corner.endswith("right") else slice(0, self.size)
        out = x.clone()
        out[..., rows, cols] = self.value
        return out

    def check_classes(self, n_classes: int) -> None:
        """``target`` is a class of the data (checked before the run starts)."""
        if self.target >= n_classes:
            raise ConfigError(f"target must be a class 0..{n_classes - 1}, got {self.target}")

    def harm_probes(self, test: Batch, space: DataSpace) -> dict[str, Probe]:
        """``asr``: every held-out input not of the target class, stamped, wanted as the target."""
        self.check_classes(space.n_classes)
        others = test.subset(test.labels != self.target)
        wanted = torch.full((len(others),), self.target, dtype=torch.long)
        return {"asr": Probe(x=self.stamp(others.x, space), wanted=wanted)}

    def prepare(self, context: SetupContext) -> None:
        self.check_classes(context.space.n_classes)
        if self.label == "dirty":
            return
        pool = context.pool
        if pool is None or not bool((pool.labels == self.target).any()):
            raise PluginError(f"backdoor: a clean-label attack needs pool samples of class {self.target}")
        self.own_ = pool.subset(pool.labels == self.target)
        if self.clean_eps > 0 and self.clean_steps > 0:
            self.surrogate_ = train_surrogate(pool, context.space, context.seed, self.surrogate_epochs)

    def craft(self, base: Batch, context: CraftContext) -> Batch:
        space = context.space
        if self.label == "dirty":
            base = base.subset(base.true_labels != self.target)  # a target-class sample would teach nothing
            return base.with_(x=self.stamp(base.x, space), labels=torch.full_like(base.labels, self.target))
        if self.own_ is None:
            raise PluginError("backdoor: call prepare() first")
        base = self.own_.subset(torch.from_numpy(context.rng.integers(0, len(self.own_), size=len(base))))
        x = base.x
        if self.surrogate_ is not None:
            x = pgd_away(self.surrogate_, x, base.labels, self.clean_eps, self.clean_steps, space)
        return base.with_(x=self.stamp(x, space))

    def checkpoint_state(self) -> dict[str, Any]:
        return {}  # set in prepare from the seed; crafting reads only the context's generators

    def restore_state(self, state: dict[str, Any]) -> None:
        pass


def train_surrogate(pool: Batch, space: DataSpace, seed: int, epochs: int) -> nn.Module:
    """A classifier trained on the attacker's own labelled pool (no queries to the target)."""
    with seeded(seed):
        net = classifier("small-cnn", space)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for idx in shuffled_batches(len(pool), 64, epochs, torch_generator(seed)):
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(pool.x[idx]), pool.labels[idx]).backward()
        opt.step()
    return net.eval()


def pgd_away(net: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: float, steps: int,
             space: DataSpace) -> torch.Tensor:
    """``steps`` signed steps up the loss of the true label, within ``eps`` of ``x`` (Turner et al.'s
    hard-to-learn samples: the model must lean on the trigger to fit them)."""
    step, x0, out = 2.5 * eps / steps, x.detach(), x.detach().clone()
    with frozen(net):
        for _ in range(steps):
            out = out + step * classifier_grad(net, out, labels).sign()
            out = space.project(x0 + (out - x0).clamp(-eps, eps))
    return out.detach()
