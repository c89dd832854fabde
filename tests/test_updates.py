"""Update regimes (``learner.update``): what each policy learns and when, checkpoints, refusals,
and what an attacker can see of them (update events, delayed callbacks, a view with no model inside)."""

from __future__ import annotations

import copy
import gc
import json
from typing import Any

import pandas as pd
import pytest
import tomli_w
import torch
from typer.testing import CliRunner

import streamsim
import streamsim.running.experiment as experiment
from streamsim import Attack, SetupContext
from streamsim.artifacts.checkpoint import load_checkpoint, save_checkpoint
from streamsim.artifacts.diagnostics import WALL_CLOCK_KEYS
from streamsim.core.records import UpdateRecord
from streamsim.core.space import DataSpace
from streamsim.learners.mlp import MLPLearner
from streamsim.presentation.cli import app
from streamsim.running.experiment import load_data
from streamsim.running.preflight import build_components
from streamsim.scenario.config import Buffered, PerBatch, PerSample, Replay, WindowRetrain, load_scenario
from streamsim.simulation.parts.updates import Policy, build_policy
from streamsim.simulation.simulator import Simulation
from streamsim.simulation.threat import TargetView

runner = CliRunner()
SPACE = DataSpace.vectors(3, ("real",) * 5)


def _learner() -> MLPLearner:
    learner = MLPLearner(hidden=[8], pretrain_epochs=2)
    x = torch.linspace(-1, 1, 60 * 5).reshape(60, 5)
    learner.pretrain(x, torch.arange(60) % 3, SetupContext(seed=0, space=SPACE))
    return learner


def _batch(i: int, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(i)
    return torch.rand(n, 5, generator=g) * 2 - 1, torch.randint(0, 3, (n,), generator=g)


def _weights(learner: MLPLearner) -> list[torch.Tensor]:
    return [p.detach().clone() for p in learner.model.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


class Calls:
    """A learner that only records the batches it is asked to learn."""

    def __init__(self) -> None:
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def learn(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.batches.append((x.clone(), y.clone()))


def test_buffered_leaves_the_model_unchanged_until_the_buffer_fills():
    learner = _learner()
    updates = build_policy(Buffered(policy="buffered", every=10, steps=3, batch_size=4), learner, seed=0, run="attack")
    before = _weights(learner)
    assert updates.accepted(*_batch(0), now=1.0) is None
    assert updates.accepted(*_batch(1), now=2.0) is None
    assert _same(_weights(learner), before)  # 8 of 10 buffered: not a single step yet
    assert updates.accepted(*_batch(2), now=3.0) == UpdateRecord("attack", 3.0, samples=12, steps=3)
    assert not _same(_weights(learner), before)
    assert updates.accepted(*_batch(3), now=4.0) is None  # the buffer was emptied by the update


def test_buffered_on_an_interval_updates_on_the_clock_and_only_with_something_buffered():
    calls = Calls()
    updates = build_policy(Buffered(policy="buffered", interval=5.0, steps=2, batch_size=3), calls, seed=0, run="attack")
    assert updates.tick(5.0) is None and calls.batches == []
    updates.accepted(*_batch(0, 2), now=6.0)
    assert calls.batches == []
    assert updates.tick(10.0) == UpdateRecord("attack", 10.0, samples=2, steps=2)
    assert [len(x) for x, _ in calls.batches] == [2, 2]  # mini-batches never larger than the buffer


def test_per_sample_takes_one_step_per_sample_in_arrival_order():
    a, b = _learner(), _learner()
    x, y = _batch(0, 5)
    record = build_policy(PerSample(policy="per-sample"), a, seed=0, run="attack").accepted(x, y, now=1.0)
    for i in range(5):
        b.learn(x[i:i + 1], y[i:i + 1])
    assert record == UpdateRecord("attack", 1.0, samples=5, steps=5) and _same(_weights(a), _weights(b))
    c = _learner()
    c.learn(x.flip(0), y.flip(0))  # order matters: a per-batch step is another model
    assert not _same(_weights(a), _weights(c))


def test_per_batch_is_the_learners_own_step_on_the_accepted_batch():
    a, b = _learner(), _learner()
    x, y = _batch(0, 6)
    assert build_policy(PerBatch(), a, seed=0, run="attack").accepted(x, y, now=2.0) == UpdateRecord("attack", 2.0, 6, 1)
    b.learn(x, y)
    assert _same(_weights(a), _weights(b))
    assert build_policy(PerBatch(), a, seed=0, run="attack").accepted(x[:0], y[:0], now=3.0) is None  # nothing accepted


def test_replay_mixes_each_batch_with_a_bounded_reservoir_of_earlier_accepted_samples():
    calls = Calls()
    updates = build_policy(Replay(policy="replay", capacity=10, mix=0.5), calls, seed=0, run="attack")
    sent = [_batch(i) for i in range(8)]
    for i, (x, y) in enumerate(sent):
        assert updates.accepted(x, y, now=float(i)) == UpdateRecord("attack", float(i), 4, 1)
    sizes = [len(x) for x, _ in calls.batches]
    assert sizes == [4, 8, 8, 8, 8, 8, 8, 8]  # mix 0.5: as many replayed as new, once the reservoir has them
    everything = torch.cat([x for x, _ in sent])
    for i, (x, _) in enumerate(calls.batches[1:], start=1):
        assert torch.equal(x[:4], sent[i][0])  # the new samples, as they came
        earlier = torch.cat([s[0] for s in sent[:i]])
        assert all((earlier == row).all(1).any() for row in x[4:])  # replayed: accepted before, never new
    reservoir = updates.checkpoint_state()["x"]
    assert len(reservoir) == 10 and all((everything == row).all(1).any() for row in reservoir)
    assert updates.seen == 32


def test_window_retrain_forgets_data_older_than_the_window():
    config = WindowRetrain(policy="window-retrain", interval=10.0, window=4, epochs=3, batch_size=2)
    a = _learner()
    old, recent = _batch(0), _batch(1)
    updates = build_policy(config, a, seed=0, run="attack")
    updates.accepted(*old, now=1.0)
    updates.accepted(*recent, now=2.0)
    assert updates.tick(10.0) == UpdateRecord("attack", 10.0, samples=4, steps=6)
    # the same retraining having seen only the window's samples: the very same model
    b = _learner()
    only_recent = build_policy(config, b, seed=0, run="attack")
    only_recent.accepted(*recent, now=2.0)
    only_recent.tick(10.0)
    assert _same(_weights(a), _weights(b))
    # and the pretrained weights were the start: learning the old batch before retraining changes nothing
    c = _learner()
    c.learn(*old)
    again = build_policy(config, _learner(), seed=0, run="attack")
    again.learner = c
    again.accepted(*recent, now=2.0)
    again.tick(10.0)
    assert _same(_weights(c), _weights(b))


POLICIES = [PerBatch(), PerSample(policy="per-sample"), Buffered(policy="buffered", every=6, interval=3.0, steps=2, batch_size=4),
            Replay(policy="replay", capacity=6, mix=0.4), WindowRetrain(policy="window-retrain", interval=3.0, window=6, epochs=2, batch_size=4)]


def _drive(updates: Policy, start: int, stop: int) -> list[UpdateRecord | None]:
    out = []
    for i in range(start, stop):
        out.append(updates.accepted(*_batch(i, 3), now=float(i)))
        if updates.interval is not None and i % 3 == 2:
            out.append(updates.tick(float(i)))
    return out


@pytest.mark.parametrize("config", POLICIES, ids=lambda c: c.policy)
def test_each_policy_checkpoints_and_resumes_bit_identically(config, tmp_path):
    whole = build_policy(config, _learner(), seed=1, run="attack")
    straight = _drive(whole, 0, 12)
    first = build_policy(config, _learner(), seed=1, run="attack")
    records = _drive(first, 0, 5)
    save_checkpoint(tmp_path / "c", {"learner": first.learner.checkpoint_state(), "updates": first.checkpoint_state()}, {})
    state, _ = load_checkpoint(tmp_path / "c")
    resumed = build_policy(config, _learner(), seed=1, run="attack")  # built as at the start, then restored
    resumed.learner.restore_state(state["learner"])
    resumed.restore_state(state["updates"], [])
    records += _drive(resumed, 5, 12)
    assert records == straight and any(r is not None for r in records)
    assert _same(_weights(resumed.learner), _weights(whole.learner))


# --- whole runs ---------------------------------------------------------------------------------
def _timed(tiny: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    tiny.update(duration=10.0, eval_every=2.5)
    tiny["learner"]["update"] = update
    return tiny


@pytest.mark.parametrize("update", [{"policy": "buffered", "interval": 2.0, "steps": 2},
                                    {"policy": "window-retrain", "interval": 3.0, "window": 96}], ids=["buffered", "window"])
def test_a_run_with_a_timed_policy_resumes_to_exactly_the_uninterrupted_run(tiny, tmp_path, monkeypatch, update):
    sc = _timed(tiny, update)
    real_save, saved = experiment.save_checkpoint, {"n": 0}

    class Stop(Exception):
        pass

    def save_then_stop(*args: Any, **kwargs: Any) -> None:
        real_save(*args, **kwargs)
        saved["n"] += 1
        if saved["n"] == 5:  # in the attacked run, with a policy tick pending
            raise Stop

    monkeypatch.setattr(experiment, "save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        experiment.run(sc, out=tmp_path / "stopped", checkpoint_every=2.5)
    monkeypatch.setattr(experiment, "save_checkpoint", real_save)
    state, meta = load_checkpoint(tmp_path / "stopped" / "checkpoint")
    assert meta["phase"] == "attack" and "updates" in dict(state["simulation"]["wakes"])
    resumed = experiment.resume(tmp_path / "stopped")
    reference = experiment.run(sc, out=tmp_path / "reference")
    a, b = (json.loads((r.run_dir / "summary.json").read_text()) for r in (resumed, reference))
    for key in WALL_CLOCK_KEYS:
        a.pop(key), b.pop(key)
    assert a == b and a["model_updates"] > 0
    timeline = pd.read_csv(reference.run_dir / "timeline.csv")  # update events counted at every evaluation
    assert timeline["model_updates"].is_monotonic_increasing and timeline["model_updates"].iloc[-1] <= a["model_updates"]
    for name in ("timeline.csv", "events.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(resumed.run_dir / name), pd.read_csv(reference.run_dir / name),
                                      check_exact=True)


def test_the_default_policy_is_per_batch_and_is_written_to_the_resolved_scenario(tiny):
    sc = load_scenario(tiny)
    assert sc.learner.update == PerBatch()
    assert '[learner.update]\npolicy = "per-batch"' in sc.resolved_toml()


@pytest.mark.parametrize(("setting", "needle"), [
    ('learner.update={policy = "bogus"}', "learner.update: Input tag 'bogus'"),
    ('learner.update={policy = "buffered"}', "learner.update.buffered: Value error, buffered updates need every (samples) or interval"),
    ('learner.update={every = 3}', "learner.update: missing the key 'policy'"),
    ('learner.update={policy = "buffered", every = 0}', "learner.update.buffered.every"),
    ('learner.update={policy = "replay", capacity = 8, size = 3}', "learner.update.replay.size: unknown key"),
    ('learner.update={policy = "replay", mix = 1.0}', "learner.update.replay.mix"),
    ('learner.update={policy = "window-retrain", window = 8}', "learner.update.window-retrain.interval: Field required"),
    ('learner.update={policy = "buffered", interval = 1e-9}', "learner.update.interval: 1e-09 means 1e+10 updates"),
])
def test_bad_update_settings_are_one_line_errors_with_exit_2(tiny, tmp_path, setting, needle):
    (tmp_path / "s.toml").write_text(tomli_w.dumps(tiny))
    result = runner.invoke(app, ["run", str(tmp_path / "s.toml"), "--set", setting, "--out", str(tmp_path / "o"), "--no-live"])
    assert result.exit_code == 2, result.output
    assert needle in result.output and len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("policy", ["buffered", "replay", "window-retrain"])
def test_river_learners_refuse_mini_batch_policies_in_one_line(tiny, tmp_path, policy):
    tiny["learner"] = {"name": "river", "params": {"pool": 4},
                       "update": {"policy": policy, "interval": 2.0} if policy != "replay" else {"policy": policy}}
    (tmp_path / "s.toml").write_text(tomli_w.dumps(tiny))
    result = runner.invoke(app, ["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"), "--no-live"])
    assert result.exit_code == 2, result.output
    assert f"learner.update: RiverLearner does not run policy {policy!r}" in result.output
    assert "use 'per-batch' or 'per-sample'" in result.output and len(result.output.strip().splitlines()) == 1


def test_a_river_learner_learns_per_sample(tiny):
    tiny["learner"] = {"name": "river", "params": {"pool": 4, "api": "one"}, "update": {"policy": "per-sample"}}
    tiny.update(duration=3.0, eval_every=3.0)
    s = streamsim.run(tiny, out=None, baseline=False).summary
    assert s["model_updates"] == 2 * 3  # every batch of the clean and the attacker source, at t = 0, 1, 2


# --- what the attacker sees ---------------------------------------------------------------------
class Prober(Attack):
    """An effects attacker that queries the same points at every arrival and notes when it is called back."""

    knowledge = "effects"

    def __init__(self) -> None:
        self.points = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
        self.seen: list[tuple[float, torch.Tensor]] = []
        self.called_back: list[tuple[float, float]] = []  # (simulated time of the call, batch screened at)
        self.clock: Any = None

    def craft(self, base, context):
        self.seen.append((context.time, context.view.predict_proba(self.points)))
        return base

    def observe(self, observation):
        self.called_back.append((self.clock.env.now, observation.submitted_at))


def _probe_run(tiny: dict[str, Any], update: dict[str, Any] | None = None, **source: Any) -> tuple[Prober, list[Any]]:
    tiny.update(duration=12.0, eval_every=6.0)
    if update is not None:
        tiny["learner"]["update"] = update
    tiny["attackers"] = [{"name": "probe", "batch_size": 8, "arrival": "poisson", "rate": 1.5,
                          "attack": {"name": "label-flip"}, "effects_proba": True, **source}]
    sc = load_scenario(tiny)
    learner, defense, _, _ = build_components(sc)
    splits, _ = load_data(sc.data, sc.seed)
    learner.pretrain(splits["pretrain"].x[:64], splits["pretrain"].labels[:64], SetupContext(seed=0))
    attack = Prober()
    view = TargetView("effects", learner, defense, effects_proba=True)
    records: list[Any] = []
    sim = Simulation(sc, splits, learner, defense, {"probe": (attack, view)}, records.append)
    attack.clock = sim.clock
    sim.run_to_end()
    return attack, records


def test_an_effects_attacker_is_called_back_no_earlier_than_its_feedback_delay(tiny):
    attack, _ = _probe_run(tiny, feedback_delay=5.0)
    assert attack.called_back
    for called, submitted in attack.called_back:
        assert called >= submitted + 5.0 - 1e-9
    assert max(s for _, s in attack.called_back) <= 12.0 - 5.0 + 1e-9  # later ones would land after the run


def test_withholding_the_processed_signal_leaves_an_effects_attacker_uncalled(tiny):
    attack, records = _probe_run(copy.deepcopy(tiny), announce_processed=False)
    assert attack.called_back == [] and attack.seen  # it still crafts and queries
    told, _ = _probe_run(tiny)
    assert told.called_back and all(c == s for c, s in told.called_back)  # announced at once by default


def test_under_buffered_updates_the_attackers_queries_change_only_at_update_events(tiny):
    attack, records = _probe_run(tiny, {"policy": "buffered", "every": 96, "steps": 2})
    updates = [r.time for r in records if isinstance(r, UpdateRecord) and r.run == "attack"]
    assert 0 < len(updates) < 10
    changes = 0
    for (t0, p0), (t1, p1) in zip(attack.seen, attack.seen[1:], strict=False):
        between = any(t0 <= u < t1 for u in updates)  # an update at t0 follows the query made at t0
        assert torch.equal(p0, p1) != between, (t0, t1, updates)
        changes += between
    assert changes > 0


def test_an_attacker_cannot_reach_the_learner_or_the_defense_through_its_view():
    learner, defense = object(), object()
    for knowledge in ("none", "effects", "verdicts", "posteriors"):
        view = TargetView(knowledge, learner, defense, query_budget=5)
        for name in ("_learner", "_defense", "learner_", "__dict__"):
            with pytest.raises(AttributeError):
                getattr(view, name)
        with pytest.raises(streamsim.ThreatModelError):
            _ = view.learner
        with pytest.raises(streamsim.ThreatModelError):
            _ = view.defense
        with pytest.raises(AttributeError):
            view.knowledge = "white-box"  # no escalation by assignment
        with pytest.raises(AttributeError):
            view.queries_used = 0  # nor a budget reset
        assert not any(r is learner or r is defense for r in gc.get_referents(view))
        assert copy.deepcopy(view) is view
    white = TargetView("white-box", learner, defense)
    assert white.learner is learner and white.defense is defense  # white-box attackers hold them legitimately


def test_queries_are_counted_against_the_budget_outside_the_attackers_reach():
    class Model:
        def predict(self, x):
            return torch.zeros(len(x), dtype=torch.long)

    view = TargetView("effects", Model(), None, query_budget=5)
    view.predict(torch.zeros(3, 2))
    assert view.queries_used == 3 and view.queries_left == 2
    with pytest.raises(streamsim.BudgetExceeded):
        view.predict(torch.zeros(3, 2))


def test_the_dashboard_shows_update_events():
    from streamsim.core.records import PhaseRecord
    from streamsim.presentation.dashboard import DashboardState, status_line

    state = DashboardState()
    state.update(PhaseRecord("attack", "start", duration=10.0, window=5), wall=0.0)
    for t in (2.0, 7.5):
        state.update(UpdateRecord("attack", t, samples=256, steps=4), wall=t)
    assert (state.updates, state.last_update) == (2, 7.5) and "updates=2" in status_line(state)
    state.update(PhaseRecord("attack", "start", duration=10.0, window=5), wall=9.0)  # a new run counts afresh
    assert (state.updates, state.last_update) == (0, None)
