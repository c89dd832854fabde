"""Convolutional learners updated incrementally: ``steps_per_batch`` Adam steps per accepted batch.

``paper-cnn`` is the classifier of Oschart et al. (arXiv 2204.01090): Conv2d 256 3×3 stride 2 →
LeakyReLU 0.2 → MaxPool 2 stride 1 → Conv2d 512 3×3 stride 2 → Flatten → Linear 10.
``small-cnn`` (the default) is a tenth of its cost and good enough to watch poisoning bite.

>>> import torch
>>> from streamsim.core.base import SetupContext
>>> learner = SmallCNNLearner(pretrain_epochs=1)
>>> x, y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (64,))
>>> learner.pretrain(x, y, SetupContext(seed=0))
>>> learner.predict_proba(x[:3]).shape
torch.Size([3, 10])
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import torch
from torch import nn

from streamsim.artifacts.cache import cached_fit
from streamsim.core.base import Learner, SetupContext
from streamsim.nn import paper_cnn, small_cnn
from streamsim.seeds import seeded, shuffled_batches
from streamsim.state import plain_optimizer_state, torch_optimizer_state

CACHE_KIND = "pretrained-learner"
CODE_VERSION = "1"  # bump when pretraining changes what given settings produce


class TorchLearner(Learner):
    """A torch classifier trained with Adam (or plain SGD, ``optim = "sgd"``); subclasses say which network.

    Adam scales every parameter's step to about ``lr`` whatever the gradient's size, so one batch
    moves the model only so far; plain SGD steps in proportion to the gradient, which is what an
    attack that crafts one large-gradient batch (``accumulative``'s trigger) relies on.
    """

    def __init__(
        self,
        lr: float = 1e-3,
        steps_per_batch: int = 1,
        pretrain_epochs: int = 3,
        pretrain_batch_size: int = 64,
        update: bool = True,
        optim: Literal["adam", "sgd"] = "adam",
    ) -> None:
        if optim not in ("adam", "sgd"):
            raise ValueError(f"optim must be 'adam' or 'sgd', not {optim!r}")
        if pretrain_batch_size < 1:
            raise ValueError(f"pretrain_batch_size must be at least 1, got {pretrain_batch_size}")
        self.optim = optim
        self.lr = lr
        self.steps_per_batch = steps_per_batch
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_batch_size = pretrain_batch_size
        self.update = update
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._device = torch.device("cpu")  # the context's device, set by pretrain

    @classmethod
    def _unit_test_params(cls) -> dict[str, Any]:
        """Settings cheap enough for a unit test (streamsim.testing): one pretraining epoch."""
        return {"pretrain_epochs": 1}

    def build(self) -> nn.Module:
        raise NotImplementedError

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(self.model(x), y).backward()
        self.optimizer.step()

    def pretrain(self, x: torch.Tensor, y: torch.Tensor, context: SetupContext) -> None:
        """Fresh weights from the seed, then ``pretrain_epochs`` shuffled epochs over the split.

        With a cache in the context, the pretrained weights and optimizer state are stored and
        reused: sweeps over attack settings then pretrain the same learner once.
        """
        self.space, self.n_classes = context.space, context.space.n_classes
        self._device = torch.device(context.device)

        def fit() -> None:
            self._fresh(context.seed)
            self._pretrain_epochs(x.to(self._device), y.to(self._device), context.generator())  # moved once

        def load(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
            self._fresh(context.seed)
            self._load(tensors)

        cached_fit(context.cache, CACHE_KIND, self._cache_key(x, y, context), fit=fit, load=load,
                   save=lambda _: (self._state(), {}))

    def _fresh(self, seed: int) -> None:
        with seeded(seed):
            self.model = self.build().to(self._device)
        make = torch.optim.Adam if self.optim == "adam" else torch.optim.SGD
        self.optimizer = make(self.model.parameters(), lr=self.lr)

    def _cache_key(self, x: torch.Tensor, y: torch.Tensor, context: SetupContext) -> dict[str, object]:
        digest = hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()
        settings = {"lr": self.lr, "pretrain_epochs": self.pretrain_epochs, "batch": self.pretrain_batch_size}
        if self.optim != "adam":  # so the default keeps the keys cached before the option existed
            settings["optim"] = self.optim
        return {"learner": type(self).__name__, "settings": settings, "data": digest, "seed": context.seed,
                "code_version": CODE_VERSION}

    def _state(self) -> dict[str, torch.Tensor]:
        tensors = {f"model.{k}": v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        for i, state in self.optimizer.state_dict()["state"].items():
            for name, value in state.items():
                tensors[f"adam.{i}.{name}"] = torch.as_tensor(value).cpu().clone()
        return tensors

    def _load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Weights and Adam's moments from a cache entry; raises if they do not fit the network."""
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("adam."):
                _, i, name = k.split(".", 2)
                state.setdefault(int(i), {})[name] = v
        self.optimizer.load_state_dict({"state": state, "param_groups": self.optimizer.state_dict()["param_groups"]})
        self.model.eval()

    def _pretrain_epochs(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> None:
        self.model.train()
        for idx in shuffled_batches(x.shape[0], self.pretrain_batch_size, self.pretrain_epochs, gen):
            self._step(x[idx], y[idx])
        self.model.eval()

    def learn(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if not self.update or x.shape[0] == 0:
            return
        self.model.train()
        x, y = x.to(self._device), y.to(self._device)
        for _ in range(self.steps_per_batch):
            self._step(x, y)
        self.model.eval()

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self.model(x.to(self._device)), dim=1).to(x.device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self._device)).to(x.device)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the last linear layer sees (both networks end in Flatten → Linear)."""
        with torch.no_grad():
            return self.model[:-1](x.to(self._device)).to(x.device)

    def checkpoint_state(self) -> dict[str, Any]:
        """Weights and Adam's moments: updates are full-batch steps, so there is no generator to keep."""
        return {"model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
                "optimizer": plain_optimizer_state(self.optimizer.state_dict())}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(torch_optimizer_state(state["optimizer"]))
        self.model.eval()


class SmallCNNLearner(TorchLearner):
    """Small two-layer CNN (the default learner; fast on CPU)."""

    def build(self) -> nn.Module:
        return small_cnn()


class PaperCNNLearner(TorchLearner):
    """The attack paper's CNN (256 and 512 filters; ~10× the cost of small-cnn).

    ``padding = "same"`` is the reference code's Keras padding (see :func:`streamsim.nn.paper_cnn`);
    with ``pretrain_epochs = 5, pretrain_batch_size = 32`` it is the reference's training recipe.
    """

    def __init__(self, lr: float = 1e-3, steps_per_batch: int = 1, pretrain_epochs: int = 3,
                 pretrain_batch_size: int = 64, update: bool = True, padding: Literal["valid", "same"] = "valid") -> None:
        super().__init__(lr=lr, steps_per_batch=steps_per_batch, pretrain_epochs=pretrain_epochs,
                         pretrain_batch_size=pretrain_batch_size, update=update)
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', not {padding!r}")
        self.padding = padding

    def build(self) -> nn.Module:
        return paper_cnn(self.padding)

    def _cache_key(self, x: torch.Tensor, y: torch.Tensor, context: SetupContext) -> dict[str, object]:
        key = super()._cache_key(x, y, context)
        if self.padding != "valid":  # so the default keeps the keys cached before the option existed
            key["settings"] = {**key["settings"], "padding": self.padding}
        return key
