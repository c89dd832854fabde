"""The stream path's shortcuts change no numbers: rows built once per batch, index_select subsets,
all-accepted batches learned as is."""

from __future__ import annotations

import torch

from streamsim.core.base import SetupContext
from streamsim.core.batch import Batch
from streamsim.core.space import DataSpace
from streamsim.learners.river_learner import RiverLearner


def _learner() -> tuple[RiverLearner, torch.Tensor, torch.Tensor]:
    space = DataSpace.vectors(2, ("real",) * 3, ("a", "b", "c"))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 3, generator=g) * 2 - 1, torch.randint(0, 2, (64,), generator=g)
    learner = RiverLearner(model="linear_model.LogisticRegression", api="one")
    learner.pretrain(x[:16], y[:16], SetupContext(seed=0, space=space))
    return learner, x, y


def test_a_batch_is_turned_into_rows_once_and_again_after_an_in_place_change() -> None:
    learner, x, y = _learner()
    calls = []
    features = learner._features
    learner._features = lambda t: calls.append(1) or features(t)  # type: ignore[method-assign]
    batch = x[16:48]
    learner.predict_proba(batch)
    learner.learn(batch, y[16:48])
    assert len(calls) == 1
    batch.mul_(-1)  # same tensor, new values: its version counter moved, the rows are rebuilt
    learner.predict_proba(batch)
    assert len(calls) == 2
    assert learner._rows(batch)[0] == dict(zip(learner.columns, batch[0].tolist(), strict=True))


def test_shared_rows_learn_and_predict_as_fresh_ones() -> None:
    a, x, y = _learner()
    b, _, _ = _learner()
    for lo in range(16, 64, 16):
        xa, xb = x[lo:lo + 16], x[lo:lo + 16].clone()  # b never sees the same tensor twice
        pa = a.predict_proba(xa)
        a.learn(xa, y[lo:lo + 16])
        pb = b.predict_proba(xb)
        b.learn(x[lo:lo + 16].clone(), y[lo:lo + 16])
        assert torch.equal(pa, pb)
    assert torch.equal(a.predict_proba(x), b.predict_proba(x.clone()))


def test_subset_by_mask_or_index_takes_the_same_samples_as_indexing() -> None:
    g = torch.Generator().manual_seed(1)
    b = Batch(x=torch.rand(10, 1, 28, 28, generator=g), labels=torch.arange(10), true_labels=torch.arange(10) % 3,
              is_poison=torch.arange(10) % 2 == 0, ids=torch.arange(100, 110), source="s")
    mask, index = torch.rand(10, generator=g) > 0.5, torch.tensor([7, 2, 2, 9])
    for m in (mask, index, index.to(torch.int32), torch.zeros(10, dtype=torch.bool)):
        got = b.subset(m)
        for name in ("x", "labels", "true_labels", "is_poison", "ids"):
            assert torch.equal(getattr(got, name), getattr(b, name)[m]), name
        assert got.source == "s"
