"""Feature-vector data end to end: datasets without download, scaling, ordered streams with their
concept changes, validation of what a component can handle, De-Pois on vectors, runs and reports."""

from __future__ import annotations

import hashlib
import json
import tomllib
from typing import Any

import numpy as np
import pytest
import tomli_w
import torch
from typer.testing import CliRunner

import streamsim
from streamsim import Batch, ConfigError, DataError, SetupContext
from streamsim.data.datasets import RawData
from streamsim.data.splits import cut
from streamsim.data.tabular import load
from streamsim.presentation.cli import app
from streamsim.running.preflight import check
from streamsim.scenario.config import load_scenario

runner = CliRunner()


def first_rows(raw: RawData, n: int = 5) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(raw.x[:n], dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(raw.y[:n], dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


# (dataset, params, shape, classes, sha256 of the first 5 rows and labels): bundled files and seeded
# generators, so the same on every machine with the pinned river / scikit-learn.
DATASETS = [
    ("river:Phishing", {}, (1250, 9), 2, "238e32042e0049f3"),
    ("river:Shuttle", {}, (49097, 9), 2, "13c8c89cdf01a6dc"),
    ("river:ImageSegments", {}, (2310, 18), 7, "24bb5441e04ac482"),
    ("river:Bananas", {}, (5300, 2), 2, "0b371d5c926edb5d"),
    ("sklearn:breast_cancer", {}, (569, 30), 2, "1401e6841b7c8baa"),
    ("sklearn:wine", {}, (178, 13), 3, "43c4b66131de201e"),
    ("sklearn:digits", {}, (1797, 64), 10, "3116e5d4afaa9806"),
    ("sklearn:iris", {}, (150, 4), 3, "ed232fe525236465"),
    ("river.synth:SEA", {"size": 300}, (300, 3), 2, "e9372646603d6049"),
    ("river.synth:Agrawal", {"size": 300}, (300, 9), 2, "8e7c5975c4eb343f"),
    ("river.synth:Hyperplane", {"size": 300}, (300, 10), 2, "079d99f3ebf89893"),
    ("river.synth:RandomRBFDrift", {"size": 300}, (300, 10), 2, "d45913b546a49501"),
    ("river.synth:LED", {"size": 300}, (300, 7), 10, "8153ad989dc42a5b"),
    ("river.synth:ConceptDriftStream", {"size": 300, "position": 150, "width": 10}, (300, 9), 2, "8e7c5975c4eb343f"),
]


@pytest.mark.parametrize(("ref", "params", "shape", "classes", "digest"), DATASETS)
def test_each_dataset_loads_offline_with_its_shape_classes_and_first_rows(ref, params, shape, classes, digest):
    raw = load(ref, params, seed=0)
    assert raw.x.shape == shape and raw.n_classes == classes and raw.is_vectors
    assert len(raw.feature_names) == shape[1] and np.isfinite(raw.x).all()
    assert set(np.unique(raw.y).tolist()) <= set(range(classes))
    assert first_rows(raw) == digest
    assert raw.ordered == ref.startswith("river.synth:")


def test_generators_are_seeded_by_the_run_and_say_where_their_concept_changes():
    a, b, c = (load("river.synth:SEA", {"size": 50}, s) for s in (1, 1, 2))
    assert np.array_equal(a.x, b.x) and not np.array_equal(a.x, c.x)
    drift = load("river.synth:ConceptDriftStream", {"size": 400, "position": 300, "width": 20,
                                                    "stream": {"name": "SEA", "variant": 0},
                                                    "drift_stream": {"name": "SEA", "variant": 3}}, 0)
    assert drift.concept_changes == (300,) and drift.x.shape == (400, 3)


@pytest.mark.parametrize(("ref", "params", "message"), [
    ("river:Nope", {}, "unknown; known: Bananas"),
    ("sklearn:wine", {"variant": 1}, "takes only size"),
    ("river.synth:SEA", {"size": 0}, "data.params.size"),
    ("river.synth:SEA", {"threshold": 3}, "data.params.threshold: river.synth.SEA has no such parameter"),
    ("river.synth:ConceptDriftStream", {"stream": "SEA"}, "expected a table naming a generator"),
    ("river.synth:os", {}, "unknown; known"),
])
def test_bad_dataset_settings_are_one_line_data_errors(ref, params, message):
    with pytest.raises(DataError, match=message) as e:
        load(ref, params, 0)
    assert "\n" not in str(e.value)


def test_scaling_is_fitted_on_pretrain_only_and_features_get_kinds():
    x = np.array([[0.0, 5, 1], [1, 7, 0], [2, 6, 1], [100, 9, 0]] * 10)
    y = np.arange(40) % 2
    data = cut(RawData(x, y, "toy", n_classes=2), {"pretrain": .5, "trusted": 0, "stream": 0, "attacker": 0,
                                                   "test": .5}, seed=0)
    pre = x[data.splits["pretrain"].ids.numpy()]
    assert data.scaling["lo"] == pre.min(0).tolist() and data.scaling["hi"] == pre.max(0).tolist()
    assert data.scaling["kinds"] == ["integer", "integer", "binary"]
    for split in (data.splits["pretrain"], data.splits["test"]):
        assert split.x.min() >= -1 and split.x.max() <= 1 and data.space.contains(split.x)
    # a scaling given by the scenario is used as is (values beyond it are clipped to its range)
    given = {"lo": [0.0, 5, 0], "hi": [2.0, 9, 1], "kinds": ["real", "integer", "binary"]}
    again = cut(RawData(x, y, "toy", n_classes=2), {"pretrain": .5, "trusted": 0, "stream": 0, "attacker": 0,
                                                    "test": .5}, seed=0, scaling=given)
    assert again.scaling == given and float(again.splits["test"].x[:, 0].max()) == 1.0


def test_an_ordered_stream_keeps_its_order_and_its_concept_change_lands_in_the_stream():
    raw = load("river.synth:ConceptDriftStream", {"size": 1000, "position": 800, "width": 10,
                                                  "stream": {"name": "SEA"}, "drift_stream": {"name": "SEA", "variant": 3}}, 0)
    data = cut(raw, {"pretrain": .2, "trusted": .2, "stream": .4, "attacker": .1, "test": .1}, seed=0)
    assert data.splits["stream"].ids.tolist() == list(range(600, 1000))
    assert data.stream_changes == (200,) and data.ordered
    others = torch.cat([data.splits[r].ids for r in ("pretrain", "trusted", "attacker", "test")])
    assert others.max() < 600 and len(set(others.tolist())) == len(others)  # the past, shuffled, no overlap


def _vector_scenario(**changes: Any) -> dict[str, Any]:
    sc = {
        "name": "tabular-test", "seed": 0, "duration": 12.0, "eval_every": 4.0,
        "data": {"dataset": "river.synth:ConceptDriftStream",
                 "params": {"size": 1200, "position": 1000, "width": 10, "stream": {"name": "SEA", "variant": 2},
                            "drift_stream": {"name": "SEA", "variant": 3}},
                 "splits": {"pretrain": 0.2, "trusted": 0.2, "stream": 0.4, "attacker": 0.1, "test": 0.1}},
        "learner": {"name": "river", "params": {"model": "linear_model.LogisticRegression", "pretrain_epochs": 1}},
        "defense": {"name": "centroid"},
        "clean": [{"name": "clean", "batch_size": 40}],
        "attackers": [{"name": "noise", "batch_size": 8, "attack": {"name": "noise", "params": {"scale": 0.3}}}],
    }
    sc.update(changes)
    return sc


def test_a_vector_run_states_its_scaling_marks_the_concept_change_and_repeats(tmp_path):
    result = streamsim.run(_vector_scenario(), out=tmp_path / "run")
    s = result.summary
    assert s["concept_change_times"] == [7.0]  # see the next test
    resolved = tomllib.loads((tmp_path / "run" / "scenario.resolved.toml").read_text())
    assert len(resolved["data"]["scaling"]["lo"]) == 3 and resolved["data"]["scaling"]["kinds"] == ["real"] * 3
    again = streamsim.run(tmp_path / "run" / "scenario.resolved.toml", out=None)
    assert again.summary["ca"] == s["ca"] and again.timeline["accuracy"].tolist() == result.timeline["accuracy"].tolist()
    res = runner.invoke(app, ["report", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "figures" / "accuracy.png").is_file()
    assert "concept changes" in (tmp_path / "run" / "report.md").read_text()


def test_the_concept_change_is_announced_when_the_in_order_stream_reaches_it():
    # 1,200 samples, stream = the last 480 (positions 720..1199); the change at 1000 is stream sample 280,
    # in the 8th batch of 40 (samples 280..319), sent at t = 7. The stream has run out at t = 12: it
    # starts over, back to the old concept (a change too), and meets the new one again at t = 19.
    result = streamsim.run(_vector_scenario(duration=20.0), out=None, baseline=False)
    assert result.summary["concept_change_times"] == [7.0, 12.0, 19.0]


@pytest.mark.parametrize(("changes", "message"), [
    ({"learner": {"name": "small-cnn"}}, "learner: SmallCNNLearner handles images only, but dataset "
                                         "'river.synth:ConceptDriftStream' is feature vectors (d = 3)"),
    ({"clean": [{"name": "c", "drift": {"rotation_per_time": 1.0}}]}, "rotation is for images"),
    ({"clean": [{"name": "c", "drift": {"prior_shift": {"at": 1.0, "priors": [1.0] * 10}}}]},
     "10 weights, but the data has 2 classes"),
])
def test_validation_says_in_one_line_when_a_component_cannot_handle_the_data(changes, message, tmp_path):
    sc = load_scenario(_vector_scenario(**changes))
    with pytest.raises(ConfigError) as e:
        check(sc)
    assert message in str(e.value) and "\n" not in str(e.value)
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(_vector_scenario(**changes)))
    res = runner.invoke(app, ["validate", str(path)])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_an_image_scenario_refuses_data_params_and_vector_scaling(tiny):
    tiny["data"]["params"] = {"size": 10}
    with pytest.raises(ConfigError, match="data.params: dataset 'mnist-5k' takes no params"):
        check(load_scenario(tiny))


def test_a_river_tree_refuses_checkpoints_up_front_and_a_logistic_regression_resumes(tmp_path):
    tree = _vector_scenario(learner={"name": "river", "params": {"model": "tree.HoeffdingTreeClassifier"}})
    with pytest.raises(streamsim.PluginError, match="RiverLearner cannot be checkpointed"):
        streamsim.run(tree, out=tmp_path / "tree", checkpoint_every=4.0)
    whole = streamsim.run(_vector_scenario(), out=None)
    checkpointed = streamsim.run(_vector_scenario(), out=tmp_path / "lr", checkpoint_every=4.0)
    assert checkpointed.summary["ca"] == whole.summary["ca"]
    assert checkpointed.timeline["accuracy"].tolist() == whole.timeline["accuracy"].tolist()


@pytest.mark.slow  # the tabular preset as shipped: ~20 s idle, a minute on busy cores
def test_depois_on_vectors_rejects_label_flips_well_above_its_clean_false_rejection_rate():
    """A toy stream: two classes, four features, the class shifts the mean of every feature."""
    from defenses.depois import DePois

    g = torch.Generator().manual_seed(0)
    y = torch.arange(600) % 2
    x = ((y[:, None].float() * 2 - 1) * 0.4 + 0.25 * torch.randn(600, 4, generator=g)).clamp(-1, 1)
    space = streamsim.DataSpace.vectors(2, ("real",) * 4)
    trusted, test = Batch.clean(x[:400], y[:400]), Batch.clean(x[400:], y[400:])
    depois = DePois(preset="tabular")
    depois.fit(trusted, learner=None, context=SetupContext(seed=0, space=space))
    clean_frr = 1 - depois.screen(test).accept.float().mean().item()
    flip_rejected = 1 - depois.screen(test.with_(labels=1 - test.labels)).accept.float().mean().item()
    assert clean_frr < 0.3 and flip_rejected > clean_frr + 0.4, (clean_frr, flip_rejected)


def test_the_image_path_is_unchanged_by_the_vector_networks():
    """De-Pois's image networks are built exactly as before (same parameter names and shapes)."""
    from defenses.depois import vector_networks
    from defenses.depois.networks import Critic, Generator

    assert type(vector_networks.critic(streamsim.IMAGES)) is Critic
    assert type(vector_networks.generator(streamsim.IMAGES, 100)) is Generator
    x = torch.linspace(-2, 2, 12).reshape(3, 4)
    assert torch.equal(streamsim.IMAGES.project(x), x.clamp(-1, 1))


def test_summary_json_of_a_vector_run_is_plain_json(tmp_path):
    streamsim.run(_vector_scenario(duration=4.0), out=tmp_path / "r")
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["data"].startswith("river.synth:ConceptDriftStream")
