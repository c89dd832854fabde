"""The simulation's parts: each saves and restores its own state; folds of records rebuild from them."""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from typing import Any

import numpy as np
import simpy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from river.drift import ADWIN

from defenses.none import NoDefense
from streamsim.core.base import Learner
from streamsim.core.records import DriftAlarm, ScreenRecord
from streamsim.running.experiment import load_data
from streamsim.scenario.config import load_scenario
from streamsim.simulation.parts.beliefs import BeliefScorer
from streamsim.simulation.parts.drift_detector import Adwin, DriftWatch
from streamsim.simulation.simulator import Simulation
from streamsim.simulation.wakeups import timeout_at


def test_timeout_at_lands_exactly_and_is_a_plain_timeout_when_simpy_can_express_it():
    rng, plain = random.Random(0), 0
    for _ in range(2000):
        now = round(rng.uniform(0, 50), 1)
        when = round(now + rng.uniform(0, 50), 1)
        env = simpy.Environment(initial_time=now)
        event = timeout_at(env, when)
        plain += isinstance(event, simpy.Timeout)
        env.run()
        assert env.now == when
    assert plain > 1900  # the private-queue fallback is the rare case (ties to even), not the rule


def _clean(t: float, correct: np.ndarray, kind: str = "clean", accept: np.ndarray | None = None) -> ScreenRecord:
    n = len(correct)
    accept = np.ones(n, dtype=bool) if accept is None else accept
    return ScreenRecord(run="attack", time=t, source=kind, kind=kind, n=n, n_poison=0, accepted=int(accept.sum()),
                        rejected_poison=0, accepted_poison=0, accepted_poison_correct=0, rejected_clean=0,
                        prequential_errors=int((~correct).sum()), boundary=None, scores=np.zeros(n, np.float32),
                        is_poison=np.zeros(n, bool), accept=accept, correct=correct)


def test_the_drift_watch_rebuilt_from_records_continues_like_the_live_one():
    rng = np.random.default_rng(0)
    # errors jump from 5 % to 60 % after the checkpoint: ADWIN alarms after it
    batches = [rng.random(32) >= (0.05 if i < 60 else 0.6) for i in range(100)]
    alarms: list[Any] = []
    live = DriftWatch(0.002, "attack", alarms.append)
    records = [_clean(float(i), c) for i, c in enumerate(batches[:50])]
    for r in records:
        live.watch(r.correct, r.time)
    state = live.checkpoint_state()
    rebuilt_alarms: list[Any] = []
    rebuilt = DriftWatch(0.002, "attack", rebuilt_alarms.append)
    rebuilt.restore_state(state, records)
    assert rebuilt_alarms == []  # a replay raises no alarm again
    before = len(alarms)
    for i, c in enumerate(batches[50:], start=50):
        live.watch(c, float(i))
        rebuilt.watch(c, float(i))
    assert alarms[before:] == rebuilt_alarms and all(isinstance(a, DriftAlarm) for a in rebuilt_alarms)
    assert rebuilt_alarms  # the test saw a drift, so it compared something
    assert rebuilt.adwin.width == live.adwin.width and rebuilt.seen == live.seen


@settings(max_examples=40, deadline=None)
@given(rates=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6), chunk=st.integers(1, 300),
       seed=st.integers(0, 2**16), delta=st.sampled_from([0.002, 0.05, 0.5]))
def test_the_drift_watch_detects_exactly_where_adwin_update_does(rates, chunk, seed, delta):
    # error streams whose rate changes in phases (drift), fed in chunks as batches arrive
    rng = np.random.default_rng(seed)
    values = np.concatenate([(rng.random(200) < r).astype(float) for r in rates]).tolist()
    public = ADWIN(delta=delta)
    expected = []
    for i, v in enumerate(values):
        public.update(v)
        if public.drift_detected:
            expected.append(i)
    fast, found = Adwin(delta), []
    for start in range(0, len(values), chunk):
        found += [start + i for i in fast.detections(values[start:start + chunk])]
    assert found == expected
    assert fast.drift_detected == public.drift_detected and fast.width == public.width
    assert fast.total == public.total


def test_without_rivers_private_window_the_drift_watch_falls_back_to_the_public_adwin(monkeypatch):
    from streamsim.simulation.parts import drift_detector as drift

    monkeypatch.setitem(sys.modules, "river._river_rust.drift", None)  # a river without that private module
    assert drift.adaptive_windowing() is drift.PublicWindow
    rng = np.random.default_rng(0)
    values = np.concatenate([(rng.random(300) < r).astype(float) for r in (0.05, 0.6, 0.1, 0.9)]).tolist()
    private = Adwin(0.002)
    expected = [start + i for start in range(0, len(values), 37) for i in private.detections(values[start:start + 37])]
    monkeypatch.setattr(drift, "WINDOW", drift.adaptive_windowing())
    public = Adwin(0.002)
    assert isinstance(public.window, drift.PublicWindow)
    found = [start + i for start in range(0, len(values), 37) for i in public.detections(values[start:start + 37])]
    assert len(expected) >= 2 and found == expected
    assert (public.width, public.total) == (private.width, private.total)


def test_the_belief_scorer_rebuilds_the_truth_from_attacker_records():
    scorer = BeliefScorer(window=2)
    records = []
    for t in (1.0, 2.0, 3.0):
        accept = np.array([True, t > 1.5, False])
        scorer.note("flip", t, torch.from_numpy(accept))
        records.append(replace(_clean(t, np.ones(3, bool), kind="attack", accept=accept), source="flip"))
    rebuilt = BeliefScorer(window=2)
    rebuilt.restore_state(scorer.checkpoint_state(), records)
    assert scorer.truth.keys() == rebuilt.truth.keys()
    for t, accept in scorer.truth["flip"].items():
        assert torch.equal(accept, rebuilt.truth["flip"][t])


class _Echo(Learner):
    """Predicts its stored label; checkpointable, so the gate can save it."""

    def __init__(self) -> None:
        self.label = 0

    def pretrain(self, x: torch.Tensor, y: torch.Tensor, context: Any) -> None:
        pass

    def learn(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.label = int(y[0]) if len(y) else self.label

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.full((len(x),), self.label), 10).float()

    def checkpoint_state(self) -> dict[str, Any]:
        return {"label": self.label}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.label = int(state["label"])


def test_a_simulation_checkpoint_is_the_dict_of_its_parts_states(tiny):
    tiny.update(duration=4.0, eval_every=2.0, attackers=[])
    sc = load_scenario(tiny)
    splits, _ = load_data(sc.data, sc.seed)
    states: list[dict[str, Any]] = []
    sim = Simulation(sc, splits, _Echo(), NoDefense(), {}, lambda r: None, run="baseline")
    sim.run_to_end(checkpoint_every=1.5, on_checkpoint=states.append)
    assert len(states) == 2
    assert set(states[0]) == {"time", "wakes", "sources", *sim.parts}
    assert states[1]["time"] == 3.0 and states[1]["gate"]["learner"].keys() == {"label"}
    # the state does not grow with the run: the drift watch and belief scorer keep counts only
    assert states[0]["drift"].keys() == {"seen"} and states[1]["drift"]["seen"] > states[0]["drift"]["seen"]
