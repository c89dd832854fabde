"""Runs any river classifier on feature vectors (or flattened, pooled pixels), batched through
``learn_many`` when the model has it.

``api = "many"`` (the default) learns a batch with river's mini-batch ``learn_many`` (one update per
batch) where the model has it; ``"one"`` learns it sample by sample with ``learn_one``, the updates
river's own ``progressive_val_score`` makes — and, for small batches, faster: river 0.26's mini-batch
calls convert through pandas and narwhals, ~5 ms a call.

``model`` is the classifier's import path, with or without the ``river.`` prefix
(``"river.linear_model.LogisticRegression"``, ``"tree.HoeffdingTreeClassifier"``,
``"forest.ARFClassifier"``), ``params`` its settings. A binary-only model (logistic regression)
is used as is on two-class data and wrapped in ``multiclass.OneVsRestClassifier`` on more.
Models that take a ``seed`` get the learner's.

Checkpoints never pickle: logistic regression and the perceptron (alone or one per class) save
their weights, intercept and step count as arrays; any other river model is a tree of Python
objects and is refused up front by ``run --checkpoint-every`` (it is not
:class:`~streamsim.core.abilities.Checkpointable`).

>>> import torch
>>> from streamsim.core.base import SetupContext
>>> learner = RiverLearner(model="linear_model.LogisticRegression", pool=4)
>>> x, y = torch.rand(20, 1, 28, 28) * 2 - 1, torch.arange(20) % 10
>>> learner.pretrain(x, y, SetupContext(seed=0))
>>> learner.predict(x[:4]).shape
torch.Size([4])

On feature vectors, with a checkpoint that restores the model exactly:

>>> from streamsim.core.space import DataSpace
>>> space = DataSpace.vectors(2, ("real",) * 3, ("a", "b", "c"))
>>> v, labels = torch.rand(40, 3) * 2 - 1, (torch.arange(40) % 2)
>>> lr = RiverLearner(model="river.linear_model.LogisticRegression")
>>> lr.pretrain(v, labels, SetupContext(seed=0, space=space))
>>> state = lr.checkpoint_state()
>>> before = lr.predict_proba(v)
>>> lr.learn(v, 1 - labels); lr.restore_state(state)
>>> torch.equal(lr.predict_proba(v), before), before.shape
(True, torch.Size([40, 2]))
"""

from __future__ import annotations

import importlib
import inspect
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from streamsim.core.base import Learner, SetupContext
from streamsim.core.errors import ConfigError
from streamsim.core.space import IMAGES, DataSpace
from streamsim.seeds import shuffled_batches

DEFAULT_MODEL = "linear_model.SoftmaxRegression"
#: river models whose whole state is a weight vector, an intercept and a step count (with the default SGD)
LINEAR = ("linear_model.LogisticRegression", "linear_model.Perceptron")


def _path(model: str) -> str:
    return model.removeprefix("river.")


def _river_class(path: str) -> Any:
    module, _, name = _path(path).rpartition(".")
    if not module:
        raise ValueError(f"river model {path!r}: expected module.Class, e.g. linear_model.LogisticRegression")
    try:
        cls = getattr(importlib.import_module(f"river.{module}"), name)
    except (ImportError, AttributeError):
        raise ValueError(f"river model {path!r} not found in river") from None
    if not isinstance(cls, type) or not hasattr(cls, "predict_proba_one"):
        raise ValueError(f"river model {path!r} is not a river classifier")
    return cls


def _check_settings(cls: type, params: dict[str, Any], model: str) -> None:
    """``params`` are settings ``cls`` takes, and it can be built with them (river's constructors only store
    them): a typo fails when the scenario is checked, not when the run pretrains."""
    accepted = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ValueError(f"params.{unknown[0]}: river model {model!r} has no such setting "
                             f"(it takes {', '.join(accepted) or 'none'})")
    try:
        cls(**params)
    except Exception as e:  # river checks its settings with asserts, ValueErrors and TypeErrors alike
        raise ValueError(f"params: river model {model!r} refuses them ({type(e).__name__}: {e})") from None


class RiverLearner(Learner):
    """Any river classifier (``model`` = its path under ``river.``) on feature vectors or flattened, pooled pixels."""

    accepts = ("images", "vectors")
    # river learns a sample (learn_one) or a batch (learn_many) in one call: no mini-batches of its own
    update_policies = ("per-batch", "per-sample")

    def __new__(cls, *args: Any, **kwargs: Any) -> RiverLearner:
        # Linear models can be checkpointed without pickling: they get the subclass that can.
        model = kwargs.get("model", args[0] if args else DEFAULT_MODEL)
        if cls is RiverLearner and isinstance(model, str) and _path(model) in LINEAR and "optimizer" not in (
                kwargs.get("params") or {}):
            cls = LinearRiverLearner
        return super().__new__(cls)

    def __init__(self, model: str = DEFAULT_MODEL, params: dict[str, Any] | None = None,
                 pool: int = 2, pretrain_epochs: int = 3, pretrain_batch_size: int = 32, update: bool = True,
                 api: Literal["many", "one"] = "many") -> None:
        if api not in ("many", "one"):
            raise ValueError(f"api must be 'many' (river's mini-batch learn_many) or 'one' (learn_one per sample), not {api!r}")
        self.api = api
        self.model = model
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_batch_size = pretrain_batch_size
        self.params = params or {}
        self.pool = pool
        self.update = update
        cls = _river_class(model)  # fail at configuration time, not mid-run
        _check_settings(cls, self.params, model)
        if pool < 1:
            raise ValueError(f"pool must be at least 1, got {pool}")
        if pretrain_batch_size < 1:
            raise ValueError(f"pretrain_batch_size must be at least 1, got {pretrain_batch_size}")
        self.estimator: Any = None
        self.columns: list[Any] = []
        self.space: DataSpace = IMAGES
        self.binary = False  # a binary river model used as is: it learns booleans
        # The last tensor turned into rows, its version counter and the rows: the gate predicts a
        # batch and then learns it, and both want the same dicts (river's models never modify x).
        self._converted: tuple[torch.Tensor, int, list[dict[Any, float]]] | None = None

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """The pooling window divides the images (run before anything, by ``streamsim validate``)."""
        height, width = shape[-2:]
        if height % self.pool or width % self.pool:
            raise ConfigError(f"pool: {self.pool} does not divide the {height}×{width} images")

    @classmethod
    def _unit_test_params(cls) -> dict[str, Any]:
        """Settings cheap enough for a unit test (streamsim.testing): 7×7 pooled pixels, one pretraining epoch."""
        return {"pool": 4, "pretrain_epochs": 1}

    def _features(self, x: torch.Tensor) -> np.ndarray:
        if self.space.kind == "vectors":
            return x.numpy()
        if self.pool > 1:
            x = torch.nn.functional.avg_pool2d(x, self.pool)
        return x.reshape(x.shape[0], -1).numpy()

    def _frame(self, x: torch.Tensor) -> pd.DataFrame:
        return pd.DataFrame(self._features(x), columns=self.columns)

    def _rows(self, x: torch.Tensor) -> list[dict[Any, float]]:
        # river's per-sample API wants dicts; building them from lists is ~10× cheaper than pandas.
        # The same tensor, unchanged since (its version counter), gets the same rows back.
        cached = self._converted
        if cached is not None and cached[0] is x and cached[1] == x._version:
            return cached[2]
        rows = list(map(dict, map(zip, repeat(self.columns), self._features(x).tolist())))
        self._converted = (x, x._version, rows)
        return rows

    def _targets(self, y: torch.Tensor) -> np.ndarray:
        return y.numpy().astype(bool) if self.binary else y.numpy()

    def pretrain(self, x: torch.Tensor, y: torch.Tensor, context: SetupContext) -> None:
        from river import multiclass

        self.space = context.space
        self.n_classes = context.space.n_classes
        self._converted = None  # rows depend on the columns set here
        cls = _river_class(self.model)
        params = dict(self.params)
        if "seed" in cls.__init__.__code__.co_varnames and "seed" not in params:
            params["seed"] = context.seed
        est = cls(**params)
        # `_multiclass` (and `_weights` below) are river's private names: pyproject.toml bounds river for them
        self.binary = not est._multiclass and self.n_classes == 2
        self.estimator = est if est._multiclass or self.binary else multiclass.OneVsRestClassifier(est)
        if self.space.kind == "vectors":
            self.columns = list(self.space.feature_names)
        else:
            self.check_shape(self.space.shape)
            height, width = self.space.shape[-2:]
            self.columns = list(range((height // self.pool) * (width // self.pool)))
        # Online models take one step per learn_many call: pretraining walks the split in
        # stream-sized mini-batches, a few shuffled epochs, as the stream itself would.
        for idx in shuffled_batches(x.shape[0], self.pretrain_batch_size, self.pretrain_epochs, context.generator()):
            self._learn(x[idx], y[idx])

    def _learn(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.api == "many" and hasattr(self.estimator, "learn_many"):
            self.estimator.learn_many(self._frame(x), pd.Series(self._targets(y)))
        else:
            for row, label in zip(self._rows(x), self._targets(y).tolist(), strict=True):
                self.estimator.learn_one(row, label)

    def learn(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.update and x.shape[0]:
            self._learn(x, y)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        k = self.n_classes
        out = np.zeros((x.shape[0], k), dtype=np.float32)
        if self.api == "many" and hasattr(self.estimator, "predict_proba_many"):
            probs = self.estimator.predict_proba_many(self._frame(x))
            for c in probs.columns:
                if 0 <= int(c) < k:
                    out[:, int(c)] = probs[c].to_numpy()
        elif x.shape[0]:
            # one list of per-class probabilities per row (a binary model's False/True keys are 0/1)
            probs = list(map(self.estimator.predict_proba_one, self._rows(x)))
            try:  # most models name every class in every answer: pick them all at once
                picked = chain.from_iterable(map(itemgetter(*range(k)), probs)) if k > 1 else map(itemgetter(0), probs)
                out = np.fromiter(picked, dtype=np.float32, count=len(probs) * k).reshape(-1, k)
            except KeyError:
                out = np.array([[p.get(c, 0.0) for c in range(k)] for p in probs], dtype=np.float32)
        total = out.sum(axis=1, keepdims=True)
        # an untrained model returns no classes: fall back to uniform
        out = np.where(total > 0, out / np.where(total > 0, total, 1), 1.0 / k)
        return torch.from_numpy(out)


class LinearRiverLearner(RiverLearner):
    """A river logistic regression or perceptron (one, or one per class): checkpointed as arrays.

    Constructed by :class:`RiverLearner` itself when its ``model`` is one of :data:`LINEAR`.
    """

    def _models(self) -> dict[str, Any]:
        if self.binary:
            return {"binary": self.estimator}
        return {str(c): m for c, m in self.estimator.classifiers.items()}

    def checkpoint_state(self) -> dict[str, Any]:
        """Per model: its weights in the order river added them (the dot product sums in that order),
        the intercept and the optimizer's step count."""
        index = {c: i for i, c in enumerate(self.columns)}
        out: dict[str, Any] = {}
        for key, m in self._models().items():
            weights = dict(m._weights)
            out[key] = {"order": torch.tensor([index[c] for c in weights], dtype=torch.int64),
                        "weights": torch.tensor(list(weights.values()), dtype=torch.float64),
                        "intercept": float(m.intercept), "n_iterations": int(m.optimizer.n_iterations)}
        return {"models": out}

    def restore_state(self, state: dict[str, Any]) -> None:
        from river import multiclass

        models = state["models"]
        if not self.binary:  # one-vs-rest grows a model per class it has seen: rebuild exactly those
            cls = _river_class(self.model)
            template = self.estimator.classifier
            self.estimator = multiclass.OneVsRestClassifier(template)
            for key in models:
                self.estimator.classifiers[int(key)] = template.clone() if hasattr(template, "clone") else cls(**self.params)
        for key, m in self._models().items():
            s = models[key]
            order, weights = s["order"].tolist(), s["weights"].tolist()
            m._weights = type(m._weights)({self.columns[i]: w for i, w in zip(order, weights, strict=True)})
            m.intercept = float(s["intercept"])
            m.optimizer.n_iterations = int(s["n_iterations"])
