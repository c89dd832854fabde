"""`streamsim report` on runs and sweeps, and the example plugins run end to end."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.image import imread
from typer.testing import CliRunner

from streamsim import Batch, CraftContext
from streamsim.core.errors import DataError
from streamsim.presentation.cli import app
from streamsim.presentation.report import sweep_figures, write_report
from streamsim.running.experiment import run
from streamsim.running.preflight import build_components
from streamsim.scenario.config import load_scenario

REPO_ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
_RUN: dict[str, Path] = {}  # one tiny run serves every test that needs a run directory


@pytest.fixture
def run_dir(tiny, monkeypatch, tmp_path_factory) -> Path:  # noqa: ANN001
    """A tiny run: the border-ink defense (examples/) against a backdoor and permutation label flips."""
    monkeypatch.syspath_prepend(str(REPO_ROOT))  # examples/ is not installed: on the path, and allowed to import
    monkeypatch.setenv("STREAMSIM_ALLOW_IMPORT", "examples")
    if not _RUN:
        tiny.update(duration=4.0, eval_every=2.0, defense={"name": "examples.border_defense:BorderInk"})
        tiny["attackers"].insert(0, {"name": "backdoor", "batch_size": 8, "attack": {
            "name": "examples.backdoor_attack:Backdoor", "params": {"target": 0, "size": 4}}})
        _RUN["dir"] = run(tiny, out=tmp_path_factory.mktemp("report") / "run").run_dir
    return _RUN["dir"]


def _linked(report: Path) -> list[Path]:
    return [report.parent / link for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.read_text())]


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0, path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


@pytest.mark.slow
def test_cli_report_writes_every_figure_and_a_report_that_links_them(run_dir):
    res = runner.invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    report = run_dir / "report.md"
    links = _linked(report)
    assert sorted(p.name for p in links) == ["accuracy.png", "detection.png", "examples.png", "scores.png"]
    for path in links:
        _assert_png(path)
    text = report.read_text()
    assert "| ca (rejected poisons / poisons) |" in text and "| da ((rejected + harmless accepted) / poisons) |" in text
    assert re.search(r"\| poisons sent \| \d+ \|", text)  # a count, not 640.0000
    assert not list((run_dir / "figures").glob(".*.tmp"))  # no temporary files left behind


def test_report_to_another_directory(run_dir, tmp_path):
    path = write_report(run_dir, tmp_path / "elsewhere")
    assert path == tmp_path / "elsewhere" / "report.md"
    assert all(p.is_file() for p in _linked(path))


def test_border_example_defense_rejects_the_backdoor_and_few_clean_points(run_dir):
    events = pd.read_csv(run_dir / "events.csv")
    backdoor = events[events["source"] == "backdoor"]
    assert backdoor["rejected_poison"].sum() == backdoor["n_poison"].sum() > 0  # the patch is always in the border
    clean = events[events["source"] == "clean"]
    assert clean["rejected_clean"].sum() / clean["n"].sum() < 0.1


def test_backdoor_example_poisons_carry_the_patch_and_the_target_label(run_dir):
    with np.load(run_dir / "examples.npz") as ex:
        backdoor = ex["source"] == "backdoor"
        assert backdoor.sum() >= 4
        poison, original = ex["poison"][backdoor], ex["original"][backdoor]
        assert (ex["label"][backdoor] == 0).all() and (ex["true_label"][backdoor] != 0).all()
        assert (poison[..., -4:, -4:] == 1.0).all()  # the bright bottom-right square
        assert np.array_equal(poison[..., :-4, :], original[..., :-4, :])  # and nothing else changed


def test_example_scenarios_name_importable_plugins(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    monkeypatch.setenv("STREAMSIM_ALLOW_IMPORT", "examples")
    for name in ("border-defense", "backdoor"):
        build_components(load_scenario(REPO_ROOT / "examples" / f"{name}.toml"))


def test_backdoor_craft_drops_target_class_samples(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    from examples.backdoor_attack import Backdoor

    base = Batch.clean(torch.full((3, 1, 28, 28), -1.0), torch.tensor([0, 3, 5]))
    ctx = CraftContext(time=0.0, rng=np.random.default_rng(0), generator=torch.Generator(), view=None)
    out = Backdoor(target=0, size=3, corner="top-left").craft(base, ctx)
    assert out.labels.tolist() == [0, 0] and out.ids.tolist() == [1, 2]
    assert (out.x[:, 0, :3, :3] == 1.0).all() and out.x.sum() == 2 * (9 - (784 - 9))


def _results(seeds: tuple[int, ...] = (0, 1, 2)) -> pd.DataFrame:
    rows = []
    for k in (1, 3, 5):
        for attack in ("label-flip", "noise"):
            for seed in seeds:
                ca = 0.2 * k / 5 + (0.3 if attack == "noise" else 0.0) + 0.01 * seed
                rows.append({"cell": f"k={k},attack={attack}", "seed": seed, "param:defense.params.k": k,
                             "param:attackers.0.attack.name": attack, "ca": ca, "da": min(1.0, ca + 0.2),
                             "accuracy_drop": 0.1 - 0.01 * k, "final_accuracy": 0.8})
    return pd.DataFrame(rows)


def test_sweep_report_draws_metric_curves_with_bands(tmp_path):
    _results().to_csv(tmp_path / "results.csv", index=False)
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 0, res.output
    links = _linked(tmp_path / "report.md")
    names = {p.name for p in links}
    for metric in ("ca", "da", "accuracy_drop"):
        assert f"sweep-{metric}-vs-defense.params.k.png" in names
        assert f"sweep-{metric}-vs-attackers.0.attack.name.png" in names
    for path in links:
        _assert_png(path)
    ax = sweep_figures(_results())["sweep-ca-vs-defense.params.k"].axes[0]
    assert len(ax.lines) == 2 and len(ax.collections) == 2  # one line and one ±std band per attack
    means = ax.lines[0].get_ydata()
    assert means == pytest.approx([0.04 + 0.01, 0.12 + 0.01, 0.2 + 0.01])  # mean over seeds 0, 1, 2
    assert ax.get_xlabel() == "defense.params.k" and ax.get_legend() is not None


def test_bad_report_dirs_are_one_line_errors_with_exit_2(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "not a directory" in res.output
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "not a complete run directory" in res.output
    (tmp_path / "results.csv").write_text("cell,seed,ca\nx,0,0.5\n")
    with pytest.raises(DataError, match="param:"):
        write_report(tmp_path)


@pytest.mark.slow
def test_paper_figures_are_the_paper_experiments_not_the_reports(tmp_path):
    from streamsim.presentation.report import sweep_report
    from tests.doc_pages import experiment

    paper_grid = experiment("paper_grid")
    paper_figures = paper_grid.paper_figures
    rows = []
    for knowledge in ("white-box", "posteriors"):
        for mode in ("critic", "classifier", "critic-classifier", "classifier-critic"):
            for eps in (0.0, 0.5, 1.0):
                for seed in (0, 1):
                    rows.append({"cell": f"{knowledge}{mode}{eps}", "seed": seed,
                                 "param:attackers.0.attack.params.eps": eps,
                                 "param:attackers.0.attack.params.mode": mode,
                                 "param:attackers.0.attack.params.knowledge": knowledge,
                                 "ca": 1 - eps / 2 + seed * 0.01, "da": 1 - eps / 3, "accuracy_drop": 0.0})
    results = pd.DataFrame(rows)
    figs = paper_figures(results)
    assert sorted(figs) == ["paper-fig2-ca-white-box", "paper-fig3-da-white-box", "paper-fig4-ca-black-box",
                            "paper-fig5-da-black-box", "paper-fig6-da-composed"]
    assert len(figs["paper-fig2-ca-white-box"].axes[0].lines) == 4  # one per mode
    assert len(figs["paper-fig6-da-composed"].axes[0].lines) == 2  # white-box and black-box
    assert paper_figures(results.drop(columns=["param:attackers.0.attack.params.mode"])) == {}
    (tmp_path / "sweep").mkdir()
    results.to_csv(tmp_path / "sweep" / "results.csv", index=False)
    written = paper_grid.figures(tmp_path / "sweep" / "results.csv", tmp_path / "figs", "paper")
    assert (tmp_path / "figs" / "paper-fig6-da-composed.png") in written
    assert (tmp_path / "figs" / "paper-fig6-da-composed.png").stat().st_size > 1000
    report = sweep_report(tmp_path / "sweep", tmp_path / "out")  # the core draws its generic figures only
    assert "paper-fig" not in report.read_text() and "sweep-ca-vs-attackers.0.attack.params.eps" in report.read_text()


def test_attackers_figure_draws_beliefs_queries_and_policy_only_when_reported():
    from streamsim.presentation.report import attackers_figure

    t = pd.DataFrame({"time": [0.0, 5.0, 10.0], "accuracy": [0.8, 0.8, 0.7],
                      "attack:a:inferred_balanced_accuracy_window": [np.nan, 0.6, 0.7],
                      "attack:a:queries_used": [0.0, 48.0, 96.0], "attack:a:eps": [np.nan, 0.1, 0.3],
                      "attack:a:rate": [np.nan, 1.0, 0.5], "attack:blind:submitted": [0.0, 16.0, 32.0]})
    fig = attackers_figure(t)
    assert fig is not None and len(fig.axes) == 3
    assert [line.get_label() for line in fig.axes[0].lines] == ["a: inferred", "guessing"]
    blind = t[["time", "accuracy", "attack:blind:submitted"]]
    assert attackers_figure(blind) is None  # a blind attacker has nothing to show
