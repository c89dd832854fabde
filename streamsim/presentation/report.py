"""Figures and a ``report.md`` from what a run (or a sweep) wrote — never from a live run.

A run directory gives accuracy over time against the no-attack baseline with drift alarms, ca/da
over time, the critic-score histogram of clean and poisoned samples with the boundary, and a grid
of example poisons next to their originals (``examples.npz``). A sweep directory (``results.csv``)
gives metric-vs-parameter curves with ±std bands over seeds.

Figures use matplotlib's object API (``Figure``, Agg canvas), so nothing touches pyplot's global
state or needs a display; every file is written to a temporary name and renamed into place.

Usage (``streamsim report DIR`` on the command line)::

    write_report("runs/tiny-seed0-20250101-000000")  # -> runs/tiny-seed0-20250101-000000/report.md
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from streamsim.artifacts.rundir import RUN_FILES, read_examples, read_json, read_table, read_toml
from streamsim.core.catalogue import METRICS, PROBES, REPORT, SWEEP, SWEEP_PLOTS
from streamsim.core.errors import ConfigError, DataError
from streamsim.files.atomic import write_atomic, write_text_atomic
from streamsim.files.folders import check_output
from streamsim.presentation.leaderboard import is_leaderboard, write_leaderboard

FIGURES = "figures"
SWEEP_METRICS = {name: METRICS[name].label for name in SWEEP_PLOTS}  # plotted metric → axis label
EXAMPLE_PAIRS_PER_ROW = 4
ATTACK_COLOR, BASELINE_COLOR = "tab:red", "tab:blue"
EVENT_TEXT = ("source", "kind")  # events.csv's columns that are not numbers
EVENT_REQUIRED = ("time", "source", "kind", "n")


@dataclass
class RunTables:
    """The parts of a run directory the report reads."""

    summary: dict[str, Any]
    timeline: pd.DataFrame
    events: pd.DataFrame
    scores: pd.DataFrame
    examples: dict[str, np.ndarray] | None
    window: int | None  # batches in the windowed ca/da, from the resolved scenario


# --- reading -------------------------------------------------------------------------------
def _plotted(column: str) -> bool:
    """Timeline columns the figures plot as numbers: all but an attacker's own (``attack:…``), which
    are plotted only when numeric."""
    return not column.startswith("attack:")


def load_run(run_dir: Path) -> RunTables:
    """Read a run directory, or raise :class:`DataError` naming what is missing or broken."""
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        raise DataError(f"{run_dir} is not a complete run directory (missing {', '.join(missing)}) "
                        "and not a sweep directory (no results.csv)")
    summary = read_json(run_dir / "summary.json")
    if not isinstance(summary, dict):
        raise DataError(f"{run_dir / 'summary.json'}: expected a JSON object")
    examples = read_examples(run_dir / "examples.npz") if (run_dir / "examples.npz").exists() else None
    scenario = read_toml(run_dir / "scenario.resolved.toml")
    window = (scenario.get("metrics") or {}).get("window")
    tables = RunTables(summary,
                       read_table(run_dir / "timeline.csv", _plotted, required=("time", "accuracy")),
                       read_table(run_dir / "events.csv", lambda c: c not in EVENT_TEXT, required=EVENT_REQUIRED),
                       read_table(run_dir / "scores.csv", lambda c: c in ("time", "score"), required=("score", "is_poison")),
                       examples, window if isinstance(window, int) else None)
    if tables.timeline.empty:  # every run evaluates at t = 0 at least
        raise DataError(f"{run_dir / 'timeline.csv'}: no evaluations (every run has one at time 0 at least)")
    return tables


# --- figures (pure: data in, Figure out) -------------------------------------------------------
def _alarm_times(summary: dict[str, Any], key: str) -> list[float]:
    """All alarm times when the run wrote them, else just the first one (older run directories)."""
    times = summary.get(f"{key}drift_alarm_times")
    if times is None:
        first = summary.get(f"{key}first_drift_alarm")
        times = [] if first is None else [first]
    return [float(t) for t in times]


def accuracy_figure(timeline: pd.DataFrame, alarms: list[float], baseline_alarms: list[float],
                    concept_changes: list[float] = ()) -> Figure:
    """Target accuracy over simulated time, attacked vs baseline, with drift alarms as vertical lines
    (and a synthetic stream's own concept changes, the natural drift, as black dashed ones)."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(timeline["time"], timeline["accuracy"], marker="o", color=ATTACK_COLOR, label="under attack")
    if "baseline_accuracy" in timeline:
        ax.plot(timeline["time"], timeline["baseline_accuracy"], marker="o", linestyle="--", color=BASELINE_COLOR,
                label="no-attack baseline")
    for i, t in enumerate(alarms):
        ax.axvline(t, color=ATTACK_COLOR, alpha=0.4, linewidth=1, label="drift alarm (attacked run)" if i == 0 else None)
    for i, t in enumerate(baseline_alarms):
        ax.axvline(t, color=BASELINE_COLOR, alpha=0.4, linewidth=1, linestyle=":",
                   label="drift alarm (baseline)" if i == 0 else None)
    for i, t in enumerate(concept_changes):
        ax.axvline(t, color="black", alpha=0.7, linewidth=1.5, linestyle="--",
                   label="concept change (natural drift)" if i == 0 else None)
    ax.set(title="Target accuracy on the held-out test split", xlabel="simulated time",
           ylabel="accuracy (fraction correct)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return fig


def harm_figure(timeline: pd.DataFrame) -> Figure | None:
    """Accuracy beside each harm probe's success rate over time (attacked vs baseline); ``None``
    when the run's attacks define no probe (:mod:`streamsim.core.probes`)."""
    probes = [name for name in PROBES if name in timeline]
    if not probes:
        return None
    fig = Figure(figsize=(4.5 * (1 + len(probes)), 4), layout="constrained")
    axes = fig.subplots(1, 1 + len(probes), squeeze=False)[0]
    for ax, column, title in zip(axes, ["accuracy", *probes], ["accuracy", *(METRICS[p].label for p in probes)],
                                 strict=True):
        ax.plot(timeline["time"], timeline[column], marker="o", color=ATTACK_COLOR, label="under attack")
        if f"baseline_{column}" in timeline:
            ax.plot(timeline["time"], timeline[f"baseline_{column}"], marker="o", linestyle="--", color=BASELINE_COLOR,
                    label="no-attack baseline")
        ax.set(title=title, xlabel="simulated time", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best")
    return fig


def detection_figure(timeline: pd.DataFrame, window: int | None = None) -> Figure:
    """Cumulative and windowed ca and da over simulated time."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    last = f"last {window} attacker batches" if window else "last window"
    for col, color, style, label in (("ca", "tab:purple", "-", "ca, cumulative"), ("da", "tab:green", "-", "da, cumulative"),
                                     ("ca_window", "tab:purple", ":", f"ca, {last}"),
                                     ("da_window", "tab:green", ":", f"da, {last}")):
        if col in timeline:
            ax.plot(timeline["time"], timeline[col], color=color, linestyle=style, marker=".", label=label)
    ax.set(title="Detection: ca = rejected poisons / poisons, da = (rejected + harmless accepted) / poisons",
           xlabel="simulated time", ylabel="fraction of poisons", ylim=(-0.02, 1.02))
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return fig


def attack_columns(timeline: pd.DataFrame) -> dict[str, dict[str, str]]:
    """``{source: {key: column}}`` for the timeline's ``attack:<source>:<key>`` columns."""
    found: dict[str, dict[str, str]] = {}
    for col in timeline.columns:
        parts = str(col).split(":", 2)
        if len(parts) == 3 and parts[0] == "attack" and pd.api.types.is_numeric_dtype(timeline[col]):
            found.setdefault(parts[1], {})[parts[2]] = col
    return found


def attackers_figure(timeline: pd.DataFrame) -> Figure | None:
    """Per attacker: how right its beliefs about the verdicts are, what it spends, what it chooses.

    ``None`` when no attacker reported beliefs, queries or a policy (blind attacks).
    """
    sources = attack_columns(timeline)
    beliefs = {(src, k): c for src, cols in sources.items() for k, c in cols.items()
               if k.endswith("_balanced_accuracy_window")}
    queries = {src: cols["queries_used"] for src, cols in sources.items()
               if "queries_used" in cols and timeline[cols["queries_used"]].max() > 0}
    policy = {(src, k): c for src, cols in sources.items() for k, c in cols.items() if k in ("eps", "rate")}
    panels = [p for p in (beliefs, queries, policy) if p]
    if not panels:
        return None
    fig = Figure(figsize=(4.2 * len(panels), 4), layout="constrained")
    axes = iter(fig.subplots(1, len(panels), squeeze=False)[0])
    t = timeline["time"]
    if beliefs:
        ax = next(axes)
        for (src, key), col in beliefs.items():
            ax.plot(t, timeline[col], marker=".", label=f"{src}: {key.removesuffix('_balanced_accuracy_window')}")
        ax.axhline(0.5, color="grey", linestyle=":", label="guessing")
        ax.set(title="Verdict beliefs vs the truth (balanced acc., window)", xlabel="simulated time",
               ylabel="balanced accuracy", ylim=(0, 1.02))
        ax.title.set_fontsize(9)
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    if queries:
        ax = next(axes)
        for src, col in queries.items():
            ax.plot(t, timeline[col], marker=".", label=src)
        ax.set(title="Queries spent", xlabel="simulated time", ylabel="queries (samples)")
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    if policy:
        ax = next(axes)
        for (src, key), col in policy.items():
            ax.plot(t, timeline[col], marker=".", drawstyle="steps-post", label=f"{src}: {key}")
        ax.set(title="Policy: eps of the last batch, submission rate", xlabel="simulated time", ylabel="value")
        ax.title.set_fontsize(9)
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def scores_figure(scores: pd.DataFrame, boundaries: np.ndarray) -> Figure:
    """Histogram of the defense's scores for clean and poisoned samples, with the boundary."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    values = scores["score"].to_numpy(dtype=float)
    poison = scores["is_poison"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    edges = np.histogram_bin_edges(values, bins=40) if len(values) else np.linspace(0, 1, 41)
    for mask, color, label in ((~poison, BASELINE_COLOR, "clean"), (poison, ATTACK_COLOR, "poisoned")):
        if mask.any():
            ax.hist(values[mask], bins=edges, weights=np.full(mask.sum(), 1 / mask.sum()), alpha=0.55,
                    color=color, label=f"{label} ({mask.sum()} samples)")
    title = "Defense scores of screened samples (attacked run)"
    if len(boundaries):
        b = float(boundaries[-1])
        moved = f", moved within {boundaries.min():.3g}…{boundaries.max():.3g}" if np.ptp(boundaries) > 0 else ""
        ax.axvline(b, color="black", linestyle="--", label=f"boundary {b:.3g}{moved} (reject below)")
    else:
        title += " — the defense has no boundary"
    if len(values) and np.ptp(values) == 0:
        title += f" — every score is {values[0]:.3g}"
    ax.set(title=title, xlabel="score (higher = more trusted)", ylabel="fraction of samples in group")
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return fig


def _image(x: np.ndarray) -> np.ndarray:
    """An image sample as its 28×28 pixels; a feature vector as a 1×d strip of its scaled features."""
    return x.reshape(-1, *x.shape[-2:])[0] if x.ndim >= 2 else x[None, :]


def examples_figure(examples: dict[str, np.ndarray]) -> Figure:
    """Each example poison next to the clean sample it was crafted from, with labels and verdicts."""
    n = len(examples["poison"])
    rows = max(1, math.ceil(n / EXAMPLE_PAIRS_PER_ROW))
    cols = 2 * EXAMPLE_PAIRS_PER_ROW
    fig = Figure(figsize=(1.6 * cols, 1.9 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    aspect = "auto" if examples["poison"].ndim == 2 else "equal"  # feature strips fill their cell, digits stay square
    for i in range(n):
        a_orig, a_pois = axes[i // EXAMPLE_PAIRS_PER_ROW, 2 * (i % EXAMPLE_PAIRS_PER_ROW): 2 * (i % EXAMPLE_PAIRS_PER_ROW) + 2]
        a_orig.imshow(_image(examples["original"][i]), cmap="gray", vmin=-1, vmax=1, aspect=aspect)
        a_orig.set_title(f"original · {int(examples['true_label'][i])}", fontsize=8)
        a_pois.imshow(_image(examples["poison"][i]), cmap="gray", vmin=-1, vmax=1, aspect=aspect)
        verdict = "accepted" if bool(examples["accepted"][i]) else "rejected"
        a_pois.set_title(f"poison → {int(examples['label'][i])} · {verdict}", fontsize=8,
                         color=ATTACK_COLOR if verdict == "accepted" else "black")
    fig.suptitle("First poisons of the attacked run next to their clean originals (claimed label, verdict)")
    return fig


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def sweep_figures(results: pd.DataFrame) -> dict[str, Figure]:
    """One figure per (metric, grid parameter): mean ± std over seeds, one line per other setting."""
    params = [c for c in results.columns if c.startswith("param:")]
    if not params:
        raise DataError("results.csv has no param:<key> columns: nothing to plot against")
    seeds = results["seed"].nunique() if "seed" in results else 1
    out: dict[str, Figure] = {}
    for metric, ylabel in SWEEP_METRICS.items():
        if metric not in results:
            continue
        for p in params:
            levels = results[p].dropna().unique()
            if len(levels) < 2:
                continue
            numeric = pd.to_numeric(results[p], errors="coerce")
            is_numeric = bool(numeric.notna().all())
            others = [q for q in params if q != p and results[q].nunique() > 1]
            fig = Figure(figsize=(7, 4.5), layout="constrained")
            ax = fig.add_subplot()
            frame = results.assign(_x=numeric if is_numeric else results[p].astype(str),
                                   _y=pd.to_numeric(results[metric], errors="coerce"))
            order = sorted(frame["_x"].unique()) if is_numeric else list(dict.fromkeys(frame["_x"]))
            groups = frame.groupby(others, dropna=False) if others else [((), frame)]
            for key, group in groups:
                stats = group.groupby("_x")["_y"].agg(["mean", "std"]).reindex(order).dropna(subset=["mean"])
                xs = stats.index.to_numpy() if is_numeric else np.array([order.index(v) for v in stats.index])
                std = stats["std"].fillna(0.0).to_numpy()
                key = key if isinstance(key, tuple) else (key,)
                label = ", ".join(f"{q.removeprefix('param:')}={v}" for q, v in zip(others, key, strict=True)) or "all"
                (line,) = ax.plot(xs, stats["mean"], marker="o", label=label)
                ax.fill_between(xs, stats["mean"] - std, stats["mean"] + std, color=line.get_color(), alpha=0.2)
            if not is_numeric:
                ax.set_xticks(range(len(order)), order)
            name = p.removeprefix("param:")
            ax.set(title=f"{metric} vs {name} (mean ± std over {seeds} seed{'s' if seeds != 1 else ''})",
                   xlabel=name, ylabel=ylabel)
            ax.grid(alpha=0.3)
            ax.legend(loc="best", fontsize=8, title="other settings" if others else None)
            out[f"sweep-{metric}-vs-{_slug(name)}"] = fig
    if not out:
        raise DataError("results.csv: no metric (ca, da, accuracy_drop) varies over a parameter with two or more values")
    return out


# --- writing -------------------------------------------------------------------------------
def save_figure(fig: Figure, path: Path) -> Path:
    """Write a PNG atomically: a temporary sibling renamed into place."""
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=110))
    return path


def run_report(run_dir: Path, out: Path) -> Path:
    """Figures and ``report.md`` for one run directory."""
    t = load_run(run_dir)
    s = t.summary
    figs: list[tuple[str, str, str, Figure]] = []  # (file stem, heading, caption, figure)
    if not t.timeline.empty:
        figs.append(("accuracy", "Target accuracy", "Accuracy on the held-out test split, under attack and in the "
                     "no-attack baseline (same seed, same clean stream); vertical lines are ADWIN drift alarms"
                     + ("; black dashed lines are the stream's own concept changes." if s.get("concept_change_times") else "."),
                     accuracy_figure(t.timeline, _alarm_times(s, ""), _alarm_times(s, "baseline_"),
                                     [float(x) for x in s.get("concept_change_times", [])])))
        if (harm := harm_figure(t.timeline)) is not None:
            figs.append(("harm", "Harm over time", "Accuracy beside the attack's own goal: the backdoor's attack "
                         "success rate (triggered held-out inputs classified as its target) or the targeted "
                         "attack's success on its chosen inputs, under attack and in the no-attack baseline.", harm))
        figs.append(("detection", "Detection over time", "Cumulative and windowed ca and da of the attacked run.",
                     detection_figure(t.timeline, t.window)))
        if (attackers := attackers_figure(t.timeline)) is not None:
            figs.append(("attackers", "Attackers over time", "What each attacker believes the defense decided on "
                         "its batches, scored against the true verdicts it never sees (balanced accuracy over the "
                         "last window; 0.5 is guessing), the queries it spent, and its policy's choices.", attackers))
    if not t.scores.empty and {"score", "is_poison"} <= set(t.scores.columns):
        bounds = t.events["boundary"].dropna().to_numpy(dtype=float) if "boundary" in t.events else np.array([])
        figs.append(("scores", "Defense scores", "How the defense scored clean and poisoned samples; samples scored "
                     "under the boundary are rejected.", scores_figure(t.scores, bounds)))
    if t.examples is not None and len(t.examples.get("poison", ())):
        figs.append(("examples", "Example poisons", "The first poisons the attackers sent, each right of the clean "
                     "sample it was crafted from.", examples_figure(t.examples)))
    lines = [f"# Run report: {s.get('scenario', run_dir.name)} (seed {s.get('seed', '?')})", "",
             f"From `{run_dir}`, written by `streamsim report`.", "", "| metric | value |", "|---|---:|"]
    lines += [f"| {METRICS[key].label} | {METRICS[key].format(s[key])} |" for key in REPORT if key in s]
    for stem, heading, caption, fig in figs:
        save_figure(fig, out / FIGURES / f"{stem}.png")
        lines += ["", f"## {heading}", "", f"![{heading}]({FIGURES}/{stem}.png)", "", caption]
    if t.examples is None:
        lines += ["", "No `examples.npz` in this run directory (no poisons sent, or an older run): no example grid."]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def sweep_report(sweep_dir: Path, out: Path) -> Path:
    """Metric-vs-parameter figures and ``report.md`` for a sweep directory."""
    results = read_table(sweep_dir / "results.csv", lambda c: c == "seed" or c in SWEEP, required=("cell", "seed"))
    if results.empty:
        raise DataError(f"{sweep_dir / 'results.csv'}: no finished cells yet")
    leaderboard = is_leaderboard(sweep_dir)  # reads sweep.json: refused before any figure is written
    figs = sweep_figures(results)
    seeds = sorted(results["seed"].unique().tolist()) if "seed" in results else []
    lines = [f"# Sweep report: {sweep_dir.name}", "", f"From `{sweep_dir / 'results.csv'}`: {len(results)} rows, "
             f"seeds {', '.join(map(str, seeds)) or '?'}. Lines are means over seeds, bands ± one standard deviation."]
    for stem, fig in figs.items():
        save_figure(fig, out / FIGURES / f"{stem}.png")
        lines += ["", f"## {stem.removeprefix('sweep-').replace('-vs-', ' vs ')}", "", f"![{stem}]({FIGURES}/{stem}.png)"]
    if leaderboard:  # the grid varies the defense
        write_leaderboard(sweep_dir, out, save_figure, FIGURES)
        lines += ["", "## Leaderboard", "", "One row per defense, one column per attack: [leaderboard.md](leaderboard.md) "
                  f"(every number in leaderboard.csv), ![leaderboard]({FIGURES}/leaderboard.png)"]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Report on a run directory or a sweep directory (it has ``results.csv``); returns ``report.md``.

    Figures go to ``OUT/figures/``, ``report.md`` to ``OUT`` (default: the directory itself).
    """
    src = Path(run_dir)
    if not src.is_dir():
        raise ConfigError(f"report: {src} is not a directory (expected a run or sweep directory)")
    dest = Path(out) if out is not None else src
    check_output(dest, fresh=False, what="report --out")  # before reading: nothing is written where it cannot be
    if (src / "results.csv").is_file():
        return sweep_report(src, dest)
    return run_report(src, dest)
