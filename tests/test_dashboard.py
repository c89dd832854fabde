"""The live dashboard: its state folds records correctly, it draws the key numbers, plain mode is plain."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from streamsim.core.records import AttackRecord, DriftAlarm, EvalRecord, PhaseRecord, Record, ScreenRecord
from streamsim.presentation.dashboard import (
    DashboardState,
    LiveDashboard,
    PlainDashboard,
    make_dashboard,
    render,
    sparkline,
)
from streamsim.running.experiment import run

REPO_ROOT = Path(__file__).resolve().parent.parent


def _screen(run: str, t: float, source: str, kind: str, n: int, poison: int, rejected_poison: int,
            harmless: int = 0, rejected_clean: int = 0) -> ScreenRecord:
    is_poison = np.arange(n) < poison
    accept = np.ones(n, dtype=bool)
    accept[:rejected_poison] = False
    accept[poison:poison + rejected_clean] = False
    return ScreenRecord(run=run, time=t, source=source, kind=kind, n=n, n_poison=poison, accepted=int(accept.sum()),
                        rejected_poison=rejected_poison, accepted_poison=poison - rejected_poison,
                        accepted_poison_correct=harmless, rejected_clean=rejected_clean, prequential_errors=0,
                        boundary=0.5, scores=np.where(is_poison, 0.1, 0.9).astype(np.float32),
                        is_poison=is_poison, accept=accept, correct=np.ones(n, dtype=bool))


def test_state_folds_cumulative_and_windowed_detection_counts_sources_and_baseline():
    s = DashboardState()
    s.update(PhaseRecord("baseline", "start", duration=10.0, window=2), wall=0.0)
    s.update(EvalRecord("baseline", 0.0, 0.9, 100), wall=0.1)
    s.update(EvalRecord("baseline", 5.0, 0.8, 100), wall=0.2)
    s.update(PhaseRecord("baseline", "done"), wall=0.3)
    s.update(PhaseRecord("attack", "start", duration=10.0, window=2), wall=1.0)
    assert (s.run, s.run_index, s.runs_planned, s.batches) == ("attack", 2, 2, 0)
    s.update(_screen("attack", 1.0, "flipper", "attack", 10, 10, 0), wall=2.0)          # nothing caught
    s.update(_screen("attack", 2.0, "flipper", "attack", 10, 10, 10), wall=3.0)         # all caught
    s.update(_screen("attack", 3.0, "clean", "clean", 10, 0, 0, rejected_clean=2), wall=4.0)
    s.update(_screen("attack", 4.0, "flipper", "attack", 10, 10, 10), wall=5.0)         # all caught
    s.update(EvalRecord("attack", 5.0, 0.6, 100), wall=6.0)
    s.update(DriftAlarm("attack", 4.5), wall=6.0)
    m = s.metrics()
    assert m["ca"] == pytest.approx(20 / 30)
    assert m["ca_window"] == 1.0  # only the last two attacker batches
    assert s.sources["flipper"].rejected == 20 and s.sources["clean"].rejected == 2
    assert s.sources["clean"].accepted == 8
    assert s.current_accuracy() == (5.0, 0.6) and s.baseline_at(5.0) == 0.8
    assert s.progress == 0.5 and s.eta_s() == pytest.approx(5.0)  # 5 wall s for half the run
    assert s.rate() == pytest.approx(3 / 3.0)
    scores = s.scores()
    assert scores["poison"].below_boundary == 1.0 and scores["clean"].below_boundary == 0.0
    assert s.alarms == [("attack", 4.5)] and "drift alarm" in s.events[-1]


def test_sparkline_spans_the_blocks():
    assert sparkline([0.2, 0.2], 0.2, 0.2) == "▁▁"
    assert sparkline([0.0, 1.0], 0.0, 1.0) == "▁█"


_DRAWN: dict[str, Any] = {}  # one tiny run serves the tests below
WINDOW = 3  # not the default 10: the dashboard must use the scenario's metrics.window


@pytest.fixture
def tiny_run_output(tiny, monkeypatch) -> tuple[str, str]:  # noqa: ANN001
    """One tiny run drawn by both dashboards at once: the live one on a recording terminal, the plain one."""
    if not _DRAWN:
        monkeypatch.syspath_prepend(str(REPO_ROOT))  # examples/ is not installed: on the path, and allowed to import
        monkeypatch.setenv("STREAMSIM_ALLOW_IMPORT", "examples")
        tiny.update(duration=4.0, eval_every=2.0, defense={"name": "examples.border_defense:BorderInk"},
                    metrics={"window": WINDOW})
        live_console = Console(record=True, force_terminal=True, width=120)
        plain_file = io.StringIO()
        plain_console = Console(file=plain_file, force_terminal=True, width=120)  # a terminal, still plain
        live, plain = make_dashboard(live_console, plain=False), make_dashboard(plain_console, plain=True, every=3)
        assert isinstance(live, LiveDashboard) and isinstance(plain, PlainDashboard)

        records: list[Record] = []

        def both(record):  # noqa: ANN001
            live(record)
            plain(record)
            records.append(record)

        result = run(tiny, out=None, on_record=both)
        live.close()
        plain.close()
        _DRAWN.update(live=live_console.export_text(), plain=plain_file.getvalue(), records=records, result=result)
    return _DRAWN["live"], _DRAWN["plain"]


def test_dashboard_timeline_and_summary_agree_on_windowed_detection(tiny_run_output):
    records, result = _DRAWN["records"], _DRAWN["result"]
    state, seen = DashboardState(), {}
    for record in records:
        state.update(record, wall=0.0)
        if isinstance(record, EvalRecord) and record.run == "attack":
            seen[record.time] = state.metrics()
    timeline = result.timeline.set_index("time")
    assert state.window == WINDOW and len(seen) == len(timeline) == 3
    attacker_batches = sum(isinstance(r, ScreenRecord) and r.run == "attack" and r.kind == "attack" for r in records)
    assert attacker_batches > WINDOW  # so the window leaves batches out
    for t, m in seen.items():
        for key in ("ca", "da", "ca_window", "da_window"):
            assert m[key] == pytest.approx(timeline.loc[t, key], nan_ok=True), (t, key)
    for key in ("ca", "da", "ca_window", "da_window"):
        assert state.metrics()[key] == pytest.approx(result.summary[key], nan_ok=True), key
    assert any(m["ca_window"] != m["ca"] for m in seen.values())  # the window made a difference


def test_live_dashboard_shows_accuracy_detection_sources_and_boundary(tiny_run_output):
    text, _ = tiny_run_output
    for field in ("attack run (2/2)", "baseline run (1/2)", "accuracy attack", "accuracy baseline", "ca ", "da ",
                  f"last {WINDOW} attacker batches", "clean", "flipper", "boundary -0.035", "batches/s", "ETA", "t=4.0/4"):
        assert field in text, field


def test_plain_dashboard_prints_periodic_lines_without_escape_codes(tiny_run_output):
    _, out = tiny_run_output
    assert "\x1b" not in out
    lines = out.splitlines()
    assert lines[0] == "[baseline] start: 4 simulated time units"
    assert "[attack] start: 4 simulated time units" in lines and lines[-1] == "[attack] done"
    status = [line for line in lines if line.startswith("[attack] t=")]
    assert status and all("ca=" in line and "da=" in line and "flipper" in line for line in status)
    assert "baseline=0." in status[-1]  # the attacked run is compared with its baseline


def test_attackers_table_shows_what_adaptive_attackers_report():
    s = DashboardState()
    s.update(PhaseRecord("attack", "start", duration=10.0), wall=0.0)
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(render(s))
    assert "attackers" not in console.file.getvalue()  # nothing reported yet: no table
    s.update(AttackRecord("attack", 5.0, "adaptive", {"queries_used": 96.0, "eps": 0.3, "rate": 0.5,
                                                      "inferred_balanced_accuracy_window": 0.612}), wall=1.0)
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(render(s))
    out = console.file.getvalue()
    assert "attackers" in out and "inferred bal.acc" in out and "0.612" in out and "96" in out
    assert "shadow bal.acc" not in out  # a column only for what the attack reports
