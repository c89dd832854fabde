"""The defense leaderboard: one row per defense, one column per attack, from a sweep's ``results.csv``.

A sweep whose grid varies the defense (``defense`` as whole tables, or ``defense.name``) and,
optionally, the attack (``attackers.0.attack`` or ``attackers.0.attack.name``) is a leaderboard;
``streamsim report SWEEP_DIR`` then also writes ``leaderboard.md`` (tables), ``leaderboard.csv``
(every number, long format) and ``figures/leaderboard.png``. Each number is the mean ± standard
deviation over the sweep's seeds of one summary metric:

- ``da`` — (rejected + accepted-but-harmless poisons) / poisons;
- ``accuracy_drop`` — final accuracy of the no-attack baseline (same seed, same clean stream,
  same defense) minus that of the attacked run;
- ``clean_frr`` — share of clean points rejected;
- ``screen_s_per_1k`` — wall seconds of ``defense.screen`` per 1,000 points (a measurement of
  this machine at that moment, unlike the others).

Cells are matched to their settings through ``sweep.json`` (the grid) and the cell id, so a
setting that is a whole table (a defense with its parameters) is labelled by its name. An attack's
column is named by the attack itself (:attr:`streamsim.Attack.labels`, by the cell's resolved
``knowledge``), else by its plugin name and a knowledge that is not its default:

>>> attack_label({"name": "accumulative", "params": {"knowledge": "posteriors", "eps": 0.3}})
'accumulative (posteriors)'
>>> attack_label({"name": "accumulative"}), attack_label({"name": "label-flip"})
('accumulative', 'label-flip')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from streamsim.artifacts.rundir import read_json
from streamsim.core.errors import ConfigError, DataError, PluginError
from streamsim.files.atomic import write_text_atomic
from streamsim.running.grid import cell_id, grid_cells
from streamsim.scenario import registry

DEFENSE_KEYS = ("defense", "defense.name")
ATTACK_KEYS = ("attackers.0.attack", "attackers.0.attack.name")
METRICS = {  # summary key → (heading, what it is)
    "da": ("da", "(rejected + accepted-but-harmless poisons) / poisons; higher is better"),
    "accuracy_drop": ("accuracy drop", "baseline final accuracy − attacked final accuracy; lower is better"),
    "clean_frr": ("clean FRR", "share of clean points rejected; lower is better"),
    "screen_s_per_1k": ("screening cost (s per 1,000 points)", "wall time of defense.screen; lower is better"),
    "asr": ("backdoor ASR", "triggered held-out inputs (not of the target class) classified as the target; lower is better"),
    "targeted_success": ("targeted success", "the targeted attack's chosen inputs classified as it wants; lower is better"),
}
HARM_ONLY = ("asr", "targeted_success")  # shown only when some attack in the sweep defines them


def attack_label(attack: dict[str, Any] | str) -> str:
    """A column name for an attack table (or a bare attack name)."""
    if isinstance(attack, str):
        attack = {"name": attack}
    name = str(attack.get("name", "?"))
    params = attack.get("params") or {}
    try:
        factory = registry.resolve("attack", name)
    except PluginError:  # not installed here (or not allowed): named by the settings the sweep wrote
        knowledge = params.get("knowledge")
        return name if knowledge is None else f"{name} ({knowledge})"
    default = getattr(factory, "knowledge", None)
    try:  # the cell's resolved setting, as its run wrote it: given, or the attack's default
        knowledge = registry.check_params(factory, params, "attack").get("knowledge", default)
    except ConfigError:  # settings of another version of the attack: what the cell states
        knowledge = params.get("knowledge", default)
    labels = getattr(factory, "labels", {})
    if knowledge in labels:
        return labels[knowledge]
    return name if knowledge is None or knowledge == default else f"{name} ({knowledge})"


def _name(value: Any) -> str:
    return str(value["name"]) if isinstance(value, dict) else str(value)


def _sweep_meta(sweep_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``sweep.json``'s grid and base scenario; :class:`DataError` naming it when they are not tables."""
    meta = read_json(sweep_dir / "sweep.json")
    grid, base = (meta.get("grid"), meta.get("scenario")) if isinstance(meta, dict) else (None, None)
    if not isinstance(grid, dict) or not isinstance(base, dict) or not all(isinstance(v, list) for v in grid.values()):
        raise DataError(f"{sweep_dir / 'sweep.json'}: expected a grid of value lists and a scenario table")
    return grid, base


def is_leaderboard(sweep_dir: Path) -> bool:
    """Whether the sweep's grid varies the defense (then ``streamsim report`` writes a leaderboard)."""
    if not (sweep_dir / "sweep.json").exists():
        return False
    grid, _ = _sweep_meta(sweep_dir)
    return any(len(grid.get(k, [])) > 1 for k in DEFENSE_KEYS)


def cells(sweep_dir: Path) -> pd.DataFrame:
    """``results.csv`` with a ``defense`` and an ``attack`` column, one row per finished cell and seed."""
    grid, base = _sweep_meta(sweep_dir)
    defense_key = next((k for k in DEFENSE_KEYS if k in grid), None)
    if defense_key is None:
        raise DataError(f"{sweep_dir / 'sweep.json'}: the grid does not vary the defense ({' or '.join(DEFENSE_KEYS)})")
    attack_key = next((k for k in ATTACK_KEYS if k in grid), None)
    fixed_attack = attack_label(base["attackers"][0]["attack"]) if base.get("attackers") else "no attack"
    labels = {}
    for params in grid_cells(grid):
        labels[cell_id(params)] = (_name(params[defense_key]),
                                   attack_label(params[attack_key]) if attack_key else fixed_attack)
    results = pd.read_csv(sweep_dir / "results.csv", dtype={"cell": str})
    if results.empty:
        raise DataError(f"{sweep_dir / 'results.csv'}: no finished cells yet")
    unknown = set(results["cell"]) - set(labels)
    if unknown:
        raise DataError(f"{sweep_dir / 'results.csv'}: cells {sorted(unknown)[:3]} are not in sweep.json's grid")
    results["defense"] = [labels[c][0] for c in results["cell"]]
    results["attack"] = [labels[c][1] for c in results["cell"]]
    results.attrs["defenses"] = list(dict.fromkeys(_name(v) for v in grid[defense_key]))
    results.attrs["attacks"] = list(dict.fromkeys(attack_label(v) for v in grid[attack_key])) if attack_key else [fixed_attack]
    return results


def leaderboard(sweep_dir: Path) -> pd.DataFrame:
    """Long format: defense, attack, metric, mean, std, seeds — in the grid's order."""
    results = cells(sweep_dir)
    rows = []
    for (defense, attack), group in results.groupby(["defense", "attack"], sort=False):
        for metric in METRICS:
            values = pd.to_numeric(group[metric], errors="coerce").dropna() if metric in group else pd.Series([])
            if metric in HARM_ONLY and not len(values):
                continue  # the attack defines no such probe: no row, rather than an empty one
            rows.append({"defense": defense, "attack": attack, "metric": metric,
                         "mean": float(values.mean()) if len(values) else math.nan,
                         "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan, "seeds": len(values)})
    frame = pd.DataFrame(rows)
    order_d = {d: i for i, d in enumerate(results.attrs["defenses"])}
    order_a = {a: i for i, a in enumerate(results.attrs["attacks"])}
    order_m = {m: i for i, m in enumerate(METRICS)}
    frame = frame.sort_values(["defense", "attack", "metric"], key=lambda s: s.map({**order_d, **order_a, **order_m}))
    frame.attrs.update(results.attrs)
    return frame.reset_index(drop=True)


def _cell(mean: float, std: float, digits: int) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if not math.isnan(std) else f"{mean:.{digits}f}"


def shown(board: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """The metrics with a table: all but the harm probes no attack of the sweep defines."""
    return {m: v for m, v in METRICS.items() if m not in HARM_ONLY or (board["metric"] == m).any()}


def markdown(board: pd.DataFrame) -> str:
    """One table per metric: a row per defense, a column per attack, ``mean ± std`` over seeds."""
    defenses, attacks = board.attrs["defenses"], board.attrs["attacks"]
    seeds = sorted(set(board["seeds"]))
    lines = [f"Mean ± std over {', '.join(map(str, seeds))} seeds per cell."]
    for metric, (heading, what) in shown(board).items():
        part = board[board["metric"] == metric].set_index(["defense", "attack"])
        digits = 2 if metric == "screen_s_per_1k" else 3
        lines += ["", f"**{heading}** — {what}", "", "| defense | " + " | ".join(attacks) + " |",
                  "|---|" + "---:|" * len(attacks)]
        for d in defenses:
            row = [_cell(part.loc[(d, a), "mean"], part.loc[(d, a), "std"], digits) if (d, a) in part.index else "–"
                   for a in attacks]
            lines.append(f"| {d} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def figure(board: pd.DataFrame) -> Figure:
    """One heatmap (defense × attack) per metric with a table, annotated with the means."""
    defenses, attacks = board.attrs["defenses"], board.attrs["attacks"]
    metrics = shown(board)
    rows = -(-len(metrics) // 2)
    fig = Figure(figsize=(4 + 1.6 * len(attacks), 2.2 + 0.9 * len(defenses) * rows), layout="constrained")
    axes = fig.subplots(rows, 2).flatten()
    for ax in axes[len(metrics):]:
        ax.set_axis_off()
    for ax, (metric, (heading, _)) in zip(axes, metrics.items(), strict=False):
        part = board[board["metric"] == metric].pivot(index="defense", columns="attack", values="mean")
        values = part.reindex(index=defenses, columns=attacks).to_numpy(dtype=float)
        cmap = "viridis" if metric == "da" else "viridis_r"
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto")
        for (i, j), v in np.ndenumerate(values):
            if not math.isnan(v):
                light = sum(image.cmap(image.norm(v))[:3]) > 1.5  # dark text on the light end of the map
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if light else "white")
        ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(defenses)), defenses, fontsize=8)
        ax.set_title(heading, fontsize=9)
    fig.suptitle("Defenses against attacks on the same stream (mean over seeds)")
    return fig


def write_leaderboard(sweep_dir: Path, out: Path, save_figure: Callable[[Figure, Path], Path],
                      figures: str = "figures") -> list[Path]:
    """``leaderboard.md``, ``leaderboard.csv`` and ``FIGURES/leaderboard.png`` into ``out``
    (``streamsim report`` hands in its atomic figure writer)."""
    board = leaderboard(sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "leaderboard.md"
    write_text_atomic(md, f"# Leaderboard: {sweep_dir.name}\n\n" + markdown(board)
                      + f"\n![leaderboard]({figures}/leaderboard.png)\n")
    csv = out / "leaderboard.csv"
    write_text_atomic(csv, board.to_csv(index=False))
    png = save_figure(figure(board), out / figures / "leaderboard.png")
    return [md, csv, png]
