"""The live view of a run: a record sink that folds the stream into a small state and draws it.

Three layers, so each can be tested alone: :class:`DashboardState` folds records (no I/O, wall
time passed in), :func:`render` and :func:`status_line` turn a state into a rich renderable or
one plain log line, and :class:`LiveDashboard` / :class:`PlainDashboard` decide when to draw.

>>> from streamsim.core.records import PhaseRecord, EvalRecord
>>> state = DashboardState()
>>> state.update(PhaseRecord("baseline", "start", duration=10.0), wall=0.0)
>>> state.update(EvalRecord("baseline", 5.0, 0.8, 100), wall=1.0)
>>> state.run, state.progress, state.accuracy["baseline"]
('baseline', 0.5, [(5.0, 0.8)])
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from streamsim.core.catalogue import DASHBOARD_ATTACKERS, METRICS, attacker_metric
from streamsim.core.metrics import Detection
from streamsim.core.records import AttackRecord, DriftAlarm, EvalRecord, PhaseRecord, Record, ScreenRecord, UpdateRecord

SCORE_BATCHES = 10  # the critic-score summary covers the last batches of any source
EVENTS_SHOWN = 6
RATE_BATCHES = 64  # batches/s is measured over the last arrivals, so it follows slowdowns
SPARK = "▁▂▃▄▅▆▇█"


@dataclass
class SourceStats:
    kind: str
    batches: int = 0
    accepted: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class ScoreStats:
    n: int
    mean: float
    low: float
    high: float
    below_boundary: float | None  # share of samples scored under the boundary; None without one


@dataclass
class DashboardState:
    """What the dashboard shows, folded from the record stream. Cheap enough to update per record."""

    window: int = 0  # the run's metrics.window, from its start record: windowed ca/da cover that many attacker batches
    run: str = ""
    runs_planned: int = 1
    phase: str = "setup"
    duration: float = 0.0
    time: float = 0.0
    batches: int = 0
    run_started_wall: float | None = None
    last_wall: float = 0.0
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=RATE_BATCHES))
    accuracy: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {"baseline": [], "attack": []})
    detection: Detection = field(default_factory=lambda: Detection(0))
    sources: dict[str, SourceStats] = field(default_factory=dict)
    recent: deque[ScreenRecord] = field(default_factory=lambda: deque(maxlen=SCORE_BATCHES))
    boundary: float | None = None
    alarms: list[tuple[str, float]] = field(default_factory=list)
    events: deque[str] = field(default_factory=lambda: deque(maxlen=EVENTS_SHOWN))
    attackers: dict[str, dict[str, float]] = field(default_factory=dict)  # latest AttackRecord values
    probes: dict[str, dict[str, float]] = field(default_factory=dict)  # per run: the latest harm-probe rates
    updates: int = 0  # times this run's model changed (UpdateRecord), and the last time it did
    last_update: float | None = None

    def update(self, record: Record, wall: float) -> None:
        """Fold one record in; ``wall`` is the wall-clock time it arrived (seconds, any origin)."""
        self.last_wall = wall
        if isinstance(record, PhaseRecord):
            self._phase(record, wall)
        elif isinstance(record, ScreenRecord):
            self._screen(record, wall)
        elif isinstance(record, EvalRecord):
            self.accuracy.setdefault(record.run, []).append((record.time, record.accuracy))
            if record.probes:
                self.probes[record.run] = dict(record.probes)
            self.time = max(self.time, record.time)
        elif isinstance(record, AttackRecord):
            self.attackers[record.source] = dict(record.values)
        elif isinstance(record, DriftAlarm):
            self.alarms.append((record.run, record.time))
            self.events.append(f"t={record.time:.1f}  drift alarm ({record.detector})")
        elif isinstance(record, UpdateRecord):
            self.updates += 1
            self.last_update = record.time

    def _phase(self, r: PhaseRecord, wall: float) -> None:
        self.phase = r.phase
        if r.phase != "start":
            return
        if r.run == "baseline":
            self.runs_planned = 2  # the attacked run always follows its baseline
        self.run, self.duration, self.time, self.batches = r.run, r.duration, r.time, 0
        self.run_started_wall = wall
        self.arrivals.clear()
        self.window = r.window
        self.detection = Detection(r.window)  # the collector's definition, over the same records
        self.sources, self.events, self.attackers = {}, deque(maxlen=EVENTS_SHOWN), {}
        self.updates, self.last_update = 0, None
        self.recent.clear()

    def _screen(self, r: ScreenRecord, wall: float) -> None:
        self.time = max(self.time, r.time)
        self.batches += 1
        self.arrivals.append(wall)
        self.detection.add(r)
        s = self.sources.setdefault(r.source, SourceStats(r.kind))
        s.batches += 1
        s.accepted += r.accepted
        s.rejected += r.rejected
        self.recent.append(r)
        self.boundary = r.boundary
        what = f"{r.n_poison} poison, " if r.n_poison else ""
        self.events.append(f"t={r.time:.1f}  {r.source}: {r.n} sent ({what}{r.rejected} rejected)")

    # --- queries ---------------------------------------------------------------------------
    @property
    def progress(self) -> float:
        return min(1.0, self.time / self.duration) if self.duration > 0 else 0.0

    @property
    def run_index(self) -> int:
        return 2 if self.run == "attack" and self.runs_planned == 2 else 1

    def eta_s(self) -> float | None:
        """Wall seconds left in this run, extrapolated from the simulated time done so far."""
        if self.run_started_wall is None or self.progress <= 0:
            return None
        elapsed = self.last_wall - self.run_started_wall
        return elapsed * (1 - self.progress) / self.progress

    def rate(self) -> float | None:
        """Batches per wall second over the last arrivals."""
        if len(self.arrivals) < 2 or self.arrivals[-1] <= self.arrivals[0]:
            return None
        return (len(self.arrivals) - 1) / (self.arrivals[-1] - self.arrivals[0])

    def current_accuracy(self) -> tuple[float, float] | None:
        points = self.accuracy.get(self.run) or []
        return points[-1] if points else None

    def baseline_at(self, t: float) -> float | None:
        """The baseline's accuracy at simulated time ``t`` (its evaluations share the clock)."""
        if self.run != "attack":
            return None
        for bt, acc in self.accuracy.get("baseline", []):
            if abs(bt - t) < 1e-9:
                return acc
        return None

    def metrics(self) -> dict[str, float]:
        """Cumulative ca/da of this run, and over the last ``window`` attacker batches."""
        m = self.detection.metrics()
        return {key: m[key] for key in ("ca", "da", "ca_window", "da_window")}

    def scores(self) -> dict[str, ScoreStats]:
        """Critic scores of the last batches, clean and poisoned apart."""
        out: dict[str, ScoreStats] = {}
        if not self.recent:
            return out
        scores = np.concatenate([r.scores for r in self.recent])
        poison = np.concatenate([r.is_poison for r in self.recent])
        for name, mask in (("clean", ~poison), ("poison", poison)):
            s = scores[mask]
            if len(s):
                below = float((s < self.boundary).mean()) if self.boundary is not None else None
                out[name] = ScoreStats(len(s), float(s.mean()), float(s.min()), float(s.max()), below)
        return out


# --- rendering ------------------------------------------------------------------------------
def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _clock(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–:––"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


def sparkline(values: list[float], lo: float, hi: float) -> str:
    """One block character per value, scaled to ``[lo, hi]``.

    >>> sparkline([0.0, 0.5, 1.0], 0.0, 1.0)
    '▁▅█'
    """
    span = hi - lo or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, max(0, round((v - lo) / span * (len(SPARK) - 1))))] for v in values)


def _accuracy_chart(state: DashboardState, width: int = 60) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_column(justify="right")
    series = [(run, [a for _, a in state.accuracy.get(run, [])][-width:]) for run in ("baseline", "attack")]
    series = [(run, values) for run, values in series if values]
    if not series:
        grid.add_row("accuracy", "waiting for the first evaluation", "")
        return grid
    everything = [v for _, values in series for v in values]
    lo, hi = min(everything), max(everything)
    for run, values in series:
        style = "cyan" if run == "baseline" else "magenta"
        grid.add_row(f"accuracy {run}", Text(sparkline(values, lo, hi), style=style), _f(values[-1]))
    grid.add_row("", Text(f"scale {lo:.3f} … {hi:.3f}", style="dim"), "")
    return grid


def _attackers_table(state: DashboardState) -> Table | None:
    """What the attackers report of themselves at the last evaluation; ``None`` when nothing to show."""
    columns = [attacker_metric(k) for k in DASHBOARD_ATTACKERS if any(k in v for v in state.attackers.values())]
    if not columns:
        return None
    table = Table(title="attackers (at the last evaluation)", title_justify="left", show_header=True,
                  header_style="bold", box=None, padding=(0, 2))
    table.add_column("source")
    for metric in columns:
        table.add_column(metric.short or metric.label, justify="right")
    for name, values in state.attackers.items():
        table.add_row(name, *(metric.format(values.get(metric.name)) for metric in columns))
    return table


def _progress_row(state: DashboardState) -> Table:
    """Progress bar, share done, simulated time, ETA and throughput."""
    head = Table.grid(padding=(0, 2))
    for _ in range(5):
        head.add_column()
    head.add_row(
        ProgressBar(total=1.0, completed=state.progress, width=30),
        f"{state.progress:4.0%}",
        f"t={state.time:.1f}/{state.duration:g} sim",
        f"ETA {_clock(state.eta_s())}",
        f"{_f(state.rate(), 1)} batches/s",
    )
    return head


def _accuracy_line(state: DashboardState) -> Text:
    """Accuracy now against the baseline, then the probes the attacks define."""
    now = state.current_accuracy()
    line = Text("accuracy ", style="bold")
    line.append(_f(now[1]) if now else "–")
    if now is not None and (base := state.baseline_at(now[0])) is not None:
        line.append(f"   baseline {_f(base)}   drop {_f(base - now[1])}   at t={now[0]:g}")
    for name, value in state.probes.get(state.run, {}).items():  # only the probes the attacks define
        metric = METRICS.get(name)
        line.append(f"   {metric.short if metric and metric.short else name} ", style="bold")
        line.append(_f(value))
        if (base := state.probes.get("baseline", {}).get(name)) is not None and state.run != "baseline":
            line.append(f" (baseline {_f(base)})")
    return line


def _detection_line(state: DashboardState) -> Text:
    """ca and da, cumulative and over the last window of attacker batches."""
    m = state.metrics()
    line = Text("ca ", style="bold")
    line.append(f"{_f(m['ca'])}   ")
    line.append("da ", style="bold")
    line.append(f"{_f(m['da'])}   (cumulative)   ")
    line.append(f"ca {_f(m['ca_window'])}   da {_f(m['da_window'])}   (last {state.window} attacker batches)")
    return line


def _sources_table(state: DashboardState) -> Table:
    """Batches each source sent, and how many of their samples were accepted and rejected."""
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    for col in ("source", "kind", "batches", "accepted", "rejected"):
        table.add_column(col, justify="left" if col in ("source", "kind") else "right")
    for name, s in state.sources.items():
        table.add_row(name, s.kind, str(s.batches), str(s.accepted), str(s.rejected))
    return table


def _scores_table(state: DashboardState) -> Table:
    """The defense's scores of the last batches, per kind of sample, against its boundary."""
    boundary = "no boundary" if state.boundary is None else f"boundary {state.boundary:.4g}"
    table = Table(title=f"critic scores, last {SCORE_BATCHES} batches ({boundary})", title_justify="left",
                  show_header=True, header_style="bold", box=None, padding=(0, 2))
    for col in ("samples", "n", "mean", "min", "max", "below boundary"):
        table.add_column(col, justify="left" if col == "samples" else "right")
    for name, s in state.scores().items():
        below = "–" if s.below_boundary is None else f"{s.below_boundary:.0%}"
        table.add_row(name, str(s.n), f"{s.mean:.4g}", f"{s.low:.4g}", f"{s.high:.4g}", below)
    return table


def _alarms_line(state: DashboardState) -> Text:
    """The last drift alarms and the model updates so far."""
    alarms = [f"{run} t={t:.1f}" for run, t in state.alarms[-6:]]
    line = Text("drift alarms ", style="bold")
    line.append(", ".join(alarms) if alarms else "none yet", style="yellow" if alarms else "dim")
    line.append("   model updates ", style="bold")
    line.append(f"{state.updates}" + (f" (last t={state.last_update:.1f})" if state.last_update is not None else ""))
    return line


def render(state: DashboardState) -> RenderableType:
    """The whole dashboard as one rich renderable."""
    parts = [_progress_row(state), _accuracy_line(state), _accuracy_chart(state), _detection_line(state),
             _sources_table(state)]
    if (attackers := _attackers_table(state)) is not None:
        parts.append(attackers)
    parts += [_scores_table(state), _alarms_line(state), Text("last events", style="bold"),
              Text("\n".join(state.events), style="dim")]
    title = f"streamsim · {state.run or 'setup'} run ({state.run_index}/{state.runs_planned})"
    return Panel(Group(*parts), title=title, title_align="left")


def status_line(state: DashboardState) -> str:
    """One plain log line: where the run is and how it is doing."""
    m = state.metrics()
    now = state.current_accuracy()
    base = state.baseline_at(now[0]) if now else None
    counts = " ".join(f"{name} {s.accepted}/{s.rejected}" for name, s in state.sources.items())
    return (f"[{state.run}] t={state.time:.1f}/{state.duration:g} ({state.progress:.0%}) "
            f"{_f(state.rate(), 1)} batches/s acc={_f(now[1] if now else None)} baseline={_f(base)} "
            f"ca={_f(m['ca'])} da={_f(m['da'])} ca@{state.window}={_f(m['ca_window'])} "
            f"da@{state.window}={_f(m['da_window'])} updates={state.updates} accepted/rejected: {counts}")


# --- sinks ----------------------------------------------------------------------------------
class Dashboard(Protocol):
    def __call__(self, record: Record) -> None: ...

    def close(self) -> None: ...


class LiveDashboard:
    """Draws :func:`render` in a rich ``Live`` while a run streams, at most ``refresh_per_second``.

    Live is up only between a run's ``start`` and its ``done`` phase, so the training bars of the
    setup and of the attacks' preparation never share the screen with it.
    """

    def __init__(self, console: Console, refresh_per_second: float = 4.0,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.console = console
        self.interval = 1.0 / refresh_per_second
        self.clock = clock
        self.state = DashboardState()
        self.live: Live | None = None
        self.drawn_at = -math.inf

    def __call__(self, record: Record) -> None:
        now = self.clock()
        self.state.update(record, now)
        if isinstance(record, PhaseRecord):
            if record.phase == "start" and self.live is None:
                # Redrawn by hand (no refresh thread): the state is only touched on this thread.
                self.live = Live(render(self.state), console=self.console, auto_refresh=False, transient=False)
                self.live.start(refresh=True)
                self.drawn_at = now
            elif record.phase == "done":
                self.close()
            return
        if self.live is not None and now - self.drawn_at >= self.interval:
            self.live.update(render(self.state), refresh=True)
            self.drawn_at = now

    def close(self) -> None:
        if self.live is not None:
            self.live.update(render(self.state), refresh=True)
            self.live.stop()
            self.live = None


class PlainDashboard:
    """Log lines for pipes and CI: phases, drift alarms, and a status line every ``every`` batches."""

    def __init__(self, console: Console, every: int = 20, clock: Callable[[], float] = time.perf_counter) -> None:
        self.console = console
        self.every = every
        self.clock = clock
        self.state = DashboardState()

    def _print(self, line: str) -> None:
        self.console.print(Text(line), markup=False, highlight=False, emoji=False, soft_wrap=True)

    def __call__(self, record: Record) -> None:
        self.state.update(record, self.clock())
        s = self.state
        if isinstance(record, PhaseRecord):
            if record.phase == "start":
                self._print(f"[{record.run}] start: {record.duration:g} simulated time units")
            elif record.phase == "done" and s.run == record.run:
                self._print(status_line(s))
                self._print(f"[{record.run}] done")
        elif isinstance(record, DriftAlarm):
            self._print(f"[{record.run}] drift alarm at t={record.time:.1f}")
        elif isinstance(record, ScreenRecord) and s.batches % self.every == 0:
            self._print(status_line(s))

    def close(self) -> None:
        pass


def make_dashboard(console: Console, plain: bool, every: int = 20) -> Dashboard:
    """The record sink the CLI hands to :func:`streamsim.run`: live when it can be, plain lines otherwise."""
    return PlainDashboard(console, every) if plain else LiveDashboard(console)
