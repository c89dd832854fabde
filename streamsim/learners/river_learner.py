"""Runs any river classifier on flattened pixels, batched through ``learn_many`` when it can.

Binary-only river models (e.g. ``linear_model.LogisticRegression``) are wrapped in
``multiclass.OneVsRestClassifier`` automatically.

>>> import torch
>>> from streamsim.base import SetupContext
>>> learner = RiverLearner(model="linear_model.LogisticRegression", pool=4)
>>> x, y = torch.rand(20, 1, 28, 28) * 2 - 1, torch.arange(20) % 10
>>> learner.pretrain(x, y, SetupContext(seed=0))
>>> learner.predict(x[:4]).shape
torch.Size([4])
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pandas as pd
import torch

from streamsim.base import N_CLASSES, Learner, SetupContext
from streamsim.seeds import shuffled_batches


def _river_class(path: str) -> Any:
    module, _, name = path.rpartition(".")
    if not module:
        raise ValueError(f"river model {path!r}: expected module.Class, e.g. linear_model.LogisticRegression")
    try:
        return getattr(importlib.import_module(f"river.{module}"), name)
    except (ImportError, AttributeError):
        raise ValueError(f"river model {path!r} not found in river") from None


class RiverLearner(Learner):
    """Any river classifier (``model`` = its path under ``river.``) on flattened, pooled pixels.

    Not :class:`~streamsim.abilities.Checkpointable`: a river model is a tree of Python objects that
    could only be saved by pickling, which checkpoints never do.
    """


    def __init__(self, model: str = "linear_model.SoftmaxRegression", params: dict[str, Any] | None = None,
                 pool: int = 2, pretrain_epochs: int = 3, pretrain_batch_size: int = 32, update: bool = True) -> None:
        self.model = model
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_batch_size = pretrain_batch_size
        self.params = params or {}
        self.pool = pool
        self.update = update
        _river_class(model)  # fail at configuration time, not mid-run
        if 28 % pool:
            raise ValueError(f"pool must divide 28, got {pool}")
        self.estimator: Any = None
        self.columns: list[int] = []

    def _features(self, x: torch.Tensor) -> np.ndarray:
        if self.pool > 1:
            x = torch.nn.functional.avg_pool2d(x, self.pool)
        return x.reshape(x.shape[0], -1).numpy()

    def _frame(self, x: torch.Tensor) -> pd.DataFrame:
        return pd.DataFrame(self._features(x), columns=self.columns)

    def _rows(self, x: torch.Tensor) -> list[dict[int, float]]:
        # river's per-sample API wants dicts; building them from lists is ~10× cheaper than pandas.
        return [dict(enumerate(row)) for row in self._features(x).tolist()]

    def pretrain(self, x: torch.Tensor, y: torch.Tensor, context: SetupContext) -> None:
        from river import multiclass

        cls = _river_class(self.model)
        params = dict(self.params)
        if "seed" in cls.__init__.__code__.co_varnames and "seed" not in params:
            params["seed"] = context.seed
        est = cls(**params)
        self.estimator = est if est._multiclass else multiclass.OneVsRestClassifier(est)
        self.columns = list(range((28 // self.pool) ** 2))
        # Online models take one step per learn_many call: pretraining walks the split in
        # stream-sized mini-batches, a few shuffled epochs, as the stream itself would.
        for idx in shuffled_batches(x.shape[0], self.pretrain_batch_size, self.pretrain_epochs, context.generator()):
            self._learn(x[idx], y[idx])

    def _learn(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if hasattr(self.estimator, "learn_many"):
            self.estimator.learn_many(self._frame(x), pd.Series(y.numpy()))
        else:
            for row, label in zip(self._rows(x), y.tolist(), strict=True):
                self.estimator.learn_one(row, label)

    def learn(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.update and x.shape[0]:
            self._learn(x, y)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        out = np.zeros((x.shape[0], N_CLASSES), dtype=np.float32)
        if hasattr(self.estimator, "predict_proba_many"):
            probs = self.estimator.predict_proba_many(self._frame(x))
            for c in probs.columns:
                out[:, int(c)] = probs[c].to_numpy()
        else:
            for i, row in enumerate(self._rows(x)):
                for c, p in self.estimator.predict_proba_one(row).items():
                    out[i, int(c)] = p
        total = out.sum(axis=1, keepdims=True)
        # an untrained model returns no classes: fall back to uniform
        out = np.where(total > 0, out / np.where(total > 0, total, 1), 1.0 / N_CLASSES)
        return torch.from_numpy(out)

