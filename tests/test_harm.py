"""Poisons that hurt: the backdoor, targeted and accumulative attacks do what they are built for,
respect their budgets, refuse bad settings in one line, and their harm reaches every output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from attacks.accumulative import Accumulative
from attacks.backdoor import Backdoor
from attacks.gradient_matching import flat_grad, param_grads
from attacks.targeted import Targeted
from streamsim import Batch, ConfigError, CraftContext, DataSpace, Learner, Probe, SetupContext, TargetView, run
from streamsim.core.records import EvalRecord
from streamsim.presentation.cli import app
from streamsim.presentation.dashboard import DashboardState, render
from streamsim.presentation.report import write_report
from streamsim.simulation.simulator import merge_probes

runner = CliRunner()


class LinearLearner(Learner):
    """A differentiable toy target: one linear layer over flattened inputs."""

    def __init__(self, d: int, k: int, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(d, k))
        self.n_classes = k

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(x).softmax(1)

    def learn(self, x: torch.Tensor, y: torch.Tensor) -> None:
        pass


def _blobs(n: int, d: int = 6, k: int = 3, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    centres = torch.eye(k, d) * 0.6
    x = (centres[y] + 0.2 * torch.randn(n, d, generator=g)).clamp(-1, 1)
    return Batch.clean(x, y, ids=torch.arange(n))


def _context(view: TargetView, space: DataSpace, pool: Batch, probes=None) -> SetupContext:
    return SetupContext(seed=0, space=space, pool=pool, view=view, probes=probes or {})


def _craft(attack, view, space, base, time=0.0):
    ctx = CraftContext(time=time, rng=np.random.default_rng(0), generator=torch.Generator().manual_seed(0), view=view,
                       space=space)
    return attack.craft(base, ctx)


SPACE = DataSpace.vectors(3, ("real",) * 6)


def _sgd_step(learner: LinearLearner, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
    grads = param_grads(learner.model, list(learner.model.parameters()), x, y)
    with torch.no_grad():
        for p, g in zip(learner.model.parameters(), grads, strict=True):
            p -= lr * g


# --- end to end on the tiny stream, undefended --------------------------------------------------------


def test_a_dirty_label_backdoor_teaches_the_trigger(tiny):
    tiny["learner"]["params"] = {"pretrain_epochs": 2, "steps_per_batch": 2}
    tiny["attackers"][0].update(batch_size=16, attack={"name": "backdoor", "params": {"target": 0, "size": 7}})
    result = run(tiny, out=None)
    s = result.summary
    assert s["asr"] > 0.5 and s["baseline_asr"] < 0.1  # far above what the same triggered inputs reach unpoisoned
    assert s["max_asr"] >= s["asr"]
    assert {"asr", "baseline_asr", "accuracy_class_0"} <= set(result.timeline.columns)
    assert len(s["per_class_accuracy"]) == 10 and s["worst_class"] in range(10)
    assert s["harm_per_1k_accepted"] == pytest.approx(1000 * s["accuracy_drop"] / s["accepted_poisons"])


def test_targeted_poisoning_moves_its_victims_and_reports_it(tiny, tmp_path):
    tiny["attackers"][0].update(batch_size=16, attack={"name": "targeted", "params": {
        "target": 9, "source_class": 4, "n_victims": 8, "eps": 0.5, "steps": 4}})
    result = run(tiny, out=tmp_path / "run")
    s = result.summary
    assert s["targeted_success"] > s["baseline_targeted_success"]
    assert "targeted_success" in result.timeline and "baseline_targeted_success" in result.timeline
    assert 0 < s["attackers"]["flipper"]["match_cosine"] <= 1
    report = write_report(tmp_path / "run")
    assert "Harm over time" in report.read_text() and (tmp_path / "run" / "figures" / "harm.png").exists()


def test_the_accumulative_source_sends_its_phase_then_one_trigger_then_nothing(tiny):
    tiny["attackers"][0].update(batch_size=8, arrival="fixed", interval=1.0, start=2.0, attack={
        "name": "accumulative", "params": {"trigger_at": 6.0, "trigger_size": 20, "steps": 1, "val_size": 32}})
    alone = json.loads(json.dumps(tiny))
    alone["attackers"][0]["attack"]["params"]["accumulate"] = False
    primed, control = run(tiny, out=None, baseline=False).summary, run(alone, out=None, baseline=False).summary
    assert primed["poisons"] == 4 * 8 + 20  # t = 2..5 primes, t = 6 triggers, later arrivals send nothing
    assert control["poisons"] == 20
    assert primed["attackers"]["flipper"]["triggered"] == 1.0


# --- the mechanisms, on a toy linear target -----------------------------------------------------------


def test_matched_poisons_step_the_model_towards_the_victims_wanted_class():
    pool, test = _blobs(120), _blobs(60, seed=1)
    learner = LinearLearner(6, 3)
    view = TargetView("white-box", learner, None)
    attack = Targeted(target=2, source_class=0, n_victims=5, eps=0.4, steps=20)
    probe = attack.harm_probes(test, SPACE)["targeted_success"]
    attack.prepare(_context(view, SPACE, pool, {"targeted_success": probe}))
    base = pool.subset(torch.arange(12))
    poison = _craft(attack, view, SPACE, base)
    assert bool((poison.labels == 2).all())  # clean label: its own samples of the target class
    own = attack.own_.subset(torch.arange(12))

    def wanted_logprob_after(x: torch.Tensor) -> float:
        model = LinearLearner(6, 3)
        model.model.load_state_dict(learner.model.state_dict())
        _sgd_step(model, x, poison.labels, lr=0.5)
        with torch.no_grad():
            return float(model.model(probe.x).log_softmax(1)[:, 2].mean())

    assert wanted_logprob_after(poison.x) > wanted_logprob_after(own.x)


def test_priming_makes_the_trigger_raise_the_validation_loss_more():
    pool = _blobs(200)
    learner = LinearLearner(6, 3, seed=1)
    view = TargetView("white-box", learner, None)
    attack = Accumulative(eps=0.4, steps=20, trigger_at=100.0, trigger_size=30, val_size=60)
    attack.prepare(_context(view, SPACE, pool))
    base = pool.subset(torch.arange(100, 140))
    params = list(learner.model.parameters())

    def h_after(x: torch.Tensor) -> float:  # ⟨g_val, g_trig⟩ after one step on x: the lower, the more the trigger hurts
        saved = {k: v.clone() for k, v in learner.model.state_dict().items()}
        _sgd_step(learner, x, base.labels, lr=0.5)
        g_val = flat_grad(param_grads(learner.model, params, attack.val_.x, attack.val_.labels))
        g_trig = flat_grad(param_grads(learner.model, params, attack.trigger_.x, attack.trigger_.labels))
        learner.model.load_state_dict(saved)
        return float(g_val @ g_trig)

    poison = _craft(attack, view, SPACE, base)
    assert h_after(poison.x) < h_after(base.x)


@pytest.mark.parametrize("make", [
    lambda: Targeted(target=2, source_class=0, n_victims=4, eps=0.1, steps=5),
    lambda: Accumulative(eps=0.1, steps=5, trigger_at=100.0, trigger_size=10, val_size=20),
])
def test_matching_attacks_stay_within_eps_and_the_feature_ranges(make):
    pool, learner = _blobs(90), LinearLearner(6, 3)
    space = DataSpace.vectors(3, ("real",) * 6, lo=torch.full((6,), -0.5), hi=torch.full((6,), 0.5))
    pool = pool.with_(x=space.project(pool.x))
    view = TargetView("white-box", learner, None)
    attack = make()
    attack.prepare(_context(view, space, pool, {"targeted_success": Probe(pool.x[:4], torch.full((4,), 2))}))
    base = pool.subset(torch.arange(10))
    poison = _craft(attack, view, space, base)
    origin = attack.own_ if isinstance(attack, Targeted) else pool
    start = origin.x[torch.searchsorted(origin.ids, poison.ids)]
    assert float((poison.x - start).abs().max()) <= 0.1 + 1e-6
    assert space.contains(poison.x)


def test_the_backdoor_stamps_images_and_vectors_inside_their_ranges():
    images = Batch.clean(torch.full((6, 1, 28, 28), -1.0), torch.tensor([0, 1, 2, 3, 4, 5]))
    from streamsim import IMAGES
    probe = Backdoor(target=1, trigger="blend", blend_alpha=0.3).harm_probes(images, IMAGES)["asr"]
    assert len(probe) == 5 and probe.x.min() >= -1 and probe.x.max() <= 1 and float(probe.x.std()) > 0
    vectors = _blobs(9)
    space = DataSpace.vectors(3, ("real",) * 6, lo=torch.full((6,), -0.5), hi=torch.full((6,), 0.5))
    stamped = Backdoor(target=0, size=2, value=1.0).stamp(space.project(vectors.x), space)
    assert torch.equal(stamped[:, -2:], torch.full((9, 2), 0.5)) and space.contains(stamped)


def test_a_clean_label_backdoor_keeps_true_labels_and_perturbs_within_eps():
    pool = Batch.clean(torch.rand(60, 1, 28, 28) * 2 - 1, torch.arange(60) % 10, ids=torch.arange(60))
    from streamsim import IMAGES
    attack = Backdoor(target=3, label="clean", clean_eps=0.2, clean_steps=2, surrogate_epochs=1, size=3)
    attack.prepare(SetupContext(seed=0, space=IMAGES, pool=pool))
    poison = _craft(attack, None, IMAGES, pool.subset(torch.arange(8)))
    assert bool((poison.labels == 3).all()) and bool((poison.true_labels == 3).all())
    start = pool.x[poison.ids]
    inside = poison.x[..., :-3, :]  # away from the patch the image moved by at most eps
    assert float((inside - start[..., :-3, :]).abs().max()) <= 0.2 + 1e-6
    assert bool((poison.x[..., -3:, -3:] == 1.0).all())


# --- bad settings, and the outputs --------------------------------------------------------------------


@pytest.mark.parametrize("attack, needle", [
    ({"name": "backdoor", "params": {"trigger": "star"}}, "params.trigger: Input should be 'patch' or 'blend'"),
    ({"name": "backdoor", "params": {"target": 12}}, "target must be a class 0..9"),
    ({"name": "targeted", "params": {"target": 3, "source_class": 3}}, "other than the target"),
    ({"name": "accumulative", "params": {"trigger_size": 0}}, "trigger_size >= 1"),
    ({"name": "accumulative", "params": {"shadow": {"colour": 1}}}, "params.shadow.colour: unknown setting"),
    ({"name": "targeted", "params": {"knowledge": "verdicts"}}, "params.knowledge: Input should be"),
])
def test_bad_settings_are_one_line_exit_2(tmp_path, tiny, attack, needle):
    import tomli_w
    tiny["attackers"][0]["attack"] = attack
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(tiny))
    res = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "run"), "--no-live"])
    assert res.exit_code == 2, res.output
    assert needle in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_two_sources_may_not_define_the_same_probe():
    probe = Probe(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ConfigError, match="both define the harm probe 'asr'"):
        merge_probes({"a": {"asr": probe}, "b": {"asr": probe}})


def test_the_dashboard_shows_only_the_probes_the_attack_defines():
    state = DashboardState()
    state.run = "attack"
    state.update(EvalRecord("baseline", 5.0, 0.9, 10, (), {"asr": 0.01}), 0.0)
    state.update(EvalRecord("attack", 5.0, 0.8, 10, (), {"asr": 0.93}), 0.0)
    from rich.console import Console
    console = Console(width=160, record=True)
    console.print(render(state))
    text = console.export_text()
    assert "ASR 0.930 (baseline 0.010)" in text and "targeted" not in text


class Brightness:
    """A toy critic: the brighter (higher mean feature), the more trusted."""

    boundary = 0.3

    def screen(self, batch):  # pragma: no cover - never screened here
        raise NotImplementedError

    def score(self, x: torch.Tensor, claimed: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).mean(1)


def test_the_critic_term_keeps_matched_poisons_above_the_boundary():
    pool, learner = _blobs(90), LinearLearner(6, 3)
    view = TargetView("white-box", learner, Brightness())
    scores = {}
    for weight in (0.0, 50.0):
        attack = Accumulative(eps=0.3, steps=10, trigger_at=100.0, trigger_size=10, val_size=20, critic_weight=weight)
        attack.prepare(_context(view, SPACE, pool))
        poison = _craft(attack, view, SPACE, pool.subset(torch.arange(30, 60)))
        scores[weight] = float((Brightness().score(poison.x, poison.labels) >= Brightness.boundary).float().mean())
        assert attack.stats().get("critic_stage_skipped", 0.0) == 0.0
    assert scores[50.0] > scores[0.0]


def test_black_box_matching_distils_a_shadow_within_the_query_budget():
    pool, learner = _blobs(120), LinearLearner(6, 3)
    view = TargetView("posteriors", learner, None, query_budget=80)
    attack = Accumulative(eps=0.2, steps=3, trigger_at=100.0, trigger_size=10, val_size=20, knowledge="posteriors",
                          shadow={"epochs": 2})
    attack.prepare(_context(view, SPACE, pool))
    assert view.queries_used <= 80 and attack.stats()["shadow_queries"] == view.queries_used
    poison = _craft(attack, view, SPACE, pool.subset(torch.arange(40, 60)))
    assert float((poison.x - pool.x[40:60]).abs().max()) <= 0.2 + 1e-6
    with pytest.raises(Exception, match="may not hold the deployed learner"):
        view.learner  # noqa: B018 - the black-box attack never needed it
