"""The attack paper's full grid (its Figures 2–6): tables and figures from committed sweep results.

Oschart et al. (arXiv 2204.01090) plot ca and da against ε for the four FGSM modes, white-box
and black-box. Two sweeps produce our grids (about an hour each with ``--jobs 2`` on 2 cores):

    # streamsim's defaults (fast preset, mnist-5k): 12 ε × 4 modes × 2 accesses × seeds 0-2
    streamsim sweep paper-whitebox --grid attackers.0.attack.params.eps=0,0.1,0.2,0.3,0.4,0.45,0.5,0.6,0.7,0.8,0.9,1.0 \\
      --grid attackers.0.attack.params.mode=critic,classifier,critic-classifier,classifier-critic \\
      --grid attackers.0.attack.params.knowledge=white-box,posteriors --seeds 0,1,2 --jobs 2 --out sweeps/paper
    # the reference profile with the reference authors' critic (tools/reference_critic.py), seed 0:
    # the black-box scenario serves both accesses (its shadow settings and budget are unused in
    # the white box, and critic_labels is the white-box reference scenario's one difference)
    streamsim sweep paper-reference-blackbox --grid attackers.0.attack.params.eps=... (as above) \\
      --grid attackers.0.attack.params.mode=... --grid attackers.0.attack.params.knowledge=white-box,posteriors \\
      --set attackers.0.attack.params.critic_labels=claimed \\
      --set defense.params.critic_weights=/tmp/reference-critic.safetensors --seeds 0 --jobs 2 --out sweeps/paper-reference

    python experiments/paper_grid.py sweeps/paper/results.csv --figures docs/figures --prefix paper
    python experiments/paper_grid.py experiments/results/paper-grid/results.csv       # the docs page's tables

The committed results are ``experiments/results/paper-grid/results.csv`` (defaults) and
``experiments/results/paper-grid-reference/results.csv``; ``tests/test_pages.py`` checks that the
docs page's tables are exactly what this prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from streamsim.core.catalogue import METRICS
from streamsim.presentation.report import save_figure

RESULTS = Path(__file__).resolve().parent / "results" / "paper-grid" / "results.csv"
EPS, MODE, KNOWLEDGE = (f"param:attackers.0.attack.params.{k}" for k in ("eps", "mode", "knowledge"))
PAPER_MODES = ("critic", "classifier", "critic-classifier", "classifier-critic")  # FGSM's modes, in the figures' order
MODES = {m: m.replace("-", "→") for m in PAPER_MODES}
ACCESS = {"white-box": "white-box", "posteriors": "black-box"}


def tables(results: Path = RESULTS) -> list[str]:
    """One markdown table per access: ca / da (mean over seeds) by ε and mode, and the seeds used."""
    d = pd.read_csv(results)
    out: list[str] = []
    for knowledge, access in ACCESS.items():
        part = d[d[KNOWLEDGE] == knowledge]
        if part.empty:
            continue
        means = part.groupby([EPS, MODE])[["ca", "da"]].mean()
        seeds = ", ".join(map(str, sorted(part["seed"].unique())))
        out += [f"| {access} ε (seeds {seeds}) | " + " | ".join(f"{m} ca / da" for m in MODES.values()) + " |",
                "| --- | " + " | ".join("---" for _ in MODES) + " |"]
        for eps in sorted(part[EPS].unique()):
            cells = [f"{means.loc[(eps, m), 'ca']:.3f} / {means.loc[(eps, m), 'da']:.3f}"
                     if (eps, m) in means.index else "–" for m in MODES]
            out.append(f"| {eps:g} | " + " | ".join(cells) + " |")
        out.append("")
    return out[:-1]


def _panel(data: pd.DataFrame, metric: str, by: str, title: str, labels: dict[str, str]) -> Figure:
    """``metric`` against ε, one line per level of ``by`` (mean ± std over seeds)."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for level, label in labels.items():
        stats = data[data[by] == level].groupby("_x")[metric].agg(["mean", "std"]).sort_index()
        if stats.empty:
            continue
        std = stats["std"].fillna(0.0)
        (line,) = ax.plot(stats.index, stats["mean"], marker="o", label=label)
        ax.fill_between(stats.index, stats["mean"] - std, stats["mean"] + std, color=line.get_color(), alpha=0.2)
    ax.set(title=title, xlabel="perturbation budget ε (L∞, pixels in [−1, 1])", ylabel=METRICS[metric].label,
           ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def paper_figures(results: pd.DataFrame) -> dict[str, Figure]:
    """The attack paper's Figures 2–6 from a sweep over FGSM's eps, mode and knowledge.

    Figures 2–3 (white-box) and 4–5 (black-box): ca and da vs ε, one line per mode; Figure 6:
    composed critic→classifier da, white-box against black-box. Mean ± std over seeds. ``{}`` when
    the sweep does not vary those three settings.
    """
    if not {EPS, MODE, KNOWLEDGE} <= set(results.columns):
        return {}
    frame = results.assign(_x=pd.to_numeric(results[EPS], errors="coerce"))
    out: dict[str, Figure] = {}
    number = 2
    for level, name in ACCESS.items():
        subset = frame[frame[KNOWLEDGE] == level]
        for metric in ("ca", "da"):
            if not subset.empty:
                out[f"paper-fig{number}-{metric}-{name}"] = _panel(
                    subset, metric, MODE, f"Figure {number}: {metric} vs ε, {name}", {m: m for m in PAPER_MODES})
            number += 1
    composed = frame[frame[MODE] == "critic-classifier"]
    if not composed.empty:
        out["paper-fig6-da-composed"] = _panel(composed, "da", KNOWLEDGE, "Figure 6: composed critic→classifier da, "
                                               "white-box vs black-box", ACCESS)
    return out


def figures(results: Path, out_dir: Path, prefix: str) -> list[Path]:
    """Figures 2–6 (:func:`paper_figures`) as ``PREFIX-fig*.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [save_figure(fig, out_dir / f"{name.replace('paper', prefix, 1)}.png")
            for name, fig in paper_figures(pd.read_csv(results)).items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, nargs="?", default=RESULTS, help="a sweep's results.csv")
    p.add_argument("--figures", type=Path, default=None, help="also draw Figures 2-6 into this folder")
    p.add_argument("--prefix", default="paper", help="file name prefix of the figures")
    args = p.parse_args()
    print("\n".join(tables(args.results)))
    if args.figures is not None:
        for path in figures(args.results, args.figures, args.prefix):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
