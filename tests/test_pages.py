"""The docs pages: their code runs, their results tables are printed from the committed results, their links resolve.

Every fenced block with a language is either run here (``python``), validated (``toml``), or
marked with an HTML comment ``<!-- not run by the tests: why -->`` on the line before it. Each
results table is checked against the page that shows it, row for row, as the regenerator of
its committed file prints it. (docs/plugins.md has its own checks; the leaderboards are checked by
tests/test_leaderboard.py, the numbers quoted in sentences by tests/test_docs_numbers.py.)
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify  # the anchors MkDocs' toc extension makes

from streamsim.scenario.config import load_scenario
from tests.doc_pages import blocks, experiment

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
# written by hand elsewhere (plugins.md) or generated when the site is built (reference/)
OWN_PAGES = sorted(p for p in DOCS.rglob("*.md") if p.name != "plugins.md" and "reference" not in p.parts)
GENERATED = {"reference/scenario.md", "reference/cli.md", "reference/api.md"}


def _page(rel: str) -> str:
    return (DOCS / rel).read_text(encoding="utf-8")


def _all_in(rows: list[str], page: str) -> None:
    text = _page(page)
    missing = [row for row in rows if row not in text]
    assert not missing, f"{page}: {missing[:3]}"


PYTHON_BLOCKS = [(p, i) for p in OWN_PAGES for i, (lang, _, _) in enumerate(blocks(p.read_text())) if lang == "python"]


@pytest.mark.parametrize("page", OWN_PAGES, ids=[str(p.relative_to(DOCS)) for p in OWN_PAGES])
def test_every_block_is_run_or_says_why_not(page):
    for lang, body, note in blocks(page.read_text(encoding="utf-8")):
        if lang not in ("python", "toml"):
            assert note.startswith("not run by the tests:") and len(note) > 25, f"{page.name}: {body[:80]}"


def test_the_toml_block_is_a_valid_scenario():
    tomls = [body for page in OWN_PAGES for lang, body, _ in blocks(page.read_text()) if lang == "toml"]
    assert tomls
    for body in tomls:
        sc = load_scenario(tomllib.loads(body))
        assert sc.name == "quickstart" and sc.threads == 1


@pytest.mark.parametrize(("page", "index"), PYTHON_BLOCKS, ids=[f"{p.name}-{i}" for p, i in PYTHON_BLOCKS])
def test_python_blocks_run(page, index, monkeypatch):
    monkeypatch.chdir(REPO)  # the example names scenarios/quickstart.toml relative to the repository
    before = set(os.listdir(REPO))
    namespace: dict[str, object] = {}
    exec(compile(blocks(page.read_text())[index][1], f"{page.name} python block {index}", "exec"), namespace)  # noqa: S102
    assert set(os.listdir(REPO)) == before  # out=None: the example writes nothing
    result = namespace["result"]
    assert result.summary["seed"] == 3 and 0.0 <= result.summary["final_accuracy"] <= 1.0


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slugify(m.group(1), "-") for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def test_links_between_pages_resolve():
    checked = 0
    for page in OWN_PAGES:
        text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            rel = dest.relative_to(DOCS.resolve()).as_posix() if dest.is_relative_to(DOCS.resolve()) else None
            assert rel is not None, f"{page.name}: {target} leaves docs/ (name such files as code)"
            if rel in GENERATED:
                continue
            assert dest.is_file(), f"{page.name}: {target}"
            if anchor:
                assert anchor in _anchors(dest), f"{page.name}: {target} (no such heading)"
            checked += 1
    assert checked > 20


def test_the_link_check_can_fail():
    assert slugify("Is De-Pois robust?", "-") == "is-de-pois-robust"
    assert slugify("Table 1 as the reference code ran it", "-") == "table-1-as-the-reference-code-ran-it"
    assert "no-such-heading" not in _anchors(DOCS / "studies" / "depois.md")


def test_the_quickstart_numbers_are_the_committed_ones():
    record = json.loads((REPO / "experiments" / "results" / "quickstart-seed0.json").read_text())
    m = record["metrics"]
    assert record["command"] == "python experiments/quickstart_readme.py" and record["threads"] == 1
    _all_in(experiment("quickstart_readme").rows(), "getting-started.md")
    page = _page("studies/depois.md")
    paragraph = page[page.index("**On the quickstart**"):].split("\n\n")[0].replace("\n", " ")
    for text in (f"rejects {round(100 * m['ca'])} % of the flipped poisons", f"ca {m['ca']:.3f}", f"da {m['da']:.3f}",
                 f"false-rejection rate of {m['clean_frr']:.3f}", f"precision {m['precision']:.2f}", f"F1 {m['f1']:.2f}",
                 f"from {m['baseline_final_accuracy']:.3f} (baseline) to {m['final_accuracy']:.3f}"):
        assert text in paragraph, text


def test_table_1_is_printed_from_the_committed_sweep():
    # a stale or hand-edited cell fails: the table must be what the committed results.csv gives, row for row
    rows = experiment("table1").rows()
    assert len(rows) == 8  # header, rule, four cells, blank, the clean FRR line
    _all_in(rows, "studies/paper.md")


def test_table_1_with_the_paper_preset_is_printed_from_its_committed_sweep():
    table1 = experiment("table1")
    _all_in(table1.rows(table1.PAPER_PRESET), "studies/paper.md")


def test_the_adaptive_comparison_is_printed_from_the_committed_results():
    # every row of the adaptive-attacker tables is what the committed per-seed file gives
    path = REPO / "experiments" / "results" / "adaptive_attackers-seeds0-4.json"
    assert json.loads(path.read_text())["complete"]
    rows = [row for row in experiment("adaptive_attackers").table(path) if row]
    assert len(rows) >= 20
    _all_in(rows, "studies/adaptive.md")


def test_the_update_regime_comparison_is_printed_from_the_committed_results():
    # per-batch, buffered and replay over the same seeds
    regimes = experiment("update_regimes")
    path = REPO / "experiments" / "results" / "update_regimes-seeds0-4.json"
    record = json.loads(path.read_text())
    assert record["complete"] and len(record["seeds"]) >= 5
    rows = [row for row in regimes.table(path) if row]
    assert len(rows) >= 2 + len(regimes.ROWS) + 2 + len(regimes.POLICIES)
    _all_in(rows, "studies/update-regimes.md")


def test_reference_table_1_and_ablation_are_printed_from_the_committed_results():
    rows = experiment("table1_reference").rows()
    assert len(rows) >= 10  # Table 1 (header, rule, four cells), the seeds line, the ablation's header and rule
    _all_in(rows, "studies/paper.md")


def test_random_direction_control_is_printed_from_the_committed_results():
    rows = [row for row in experiment("critic_direction").rows() if row]
    assert len(rows) >= 3 * 2 + 6 + 3 + 2 + 12  # three headers and rules, 6 + 3 seeds, two means, twelve budgets
    _all_in(rows, "studies/paper.md")


def test_the_probe_signal_table_is_printed_from_the_committed_results():
    results = REPO / "experiments" / "results"
    rows = experiment("probe_signal").table(results / "probe_signal.json", results / "probe_signal-fresh-adam.json")
    assert rows
    _all_in(rows, "studies/adaptive.md")


@pytest.mark.parametrize("name", ["depois_robustness.json", "depois_robustness-decision-v1.json"])
def test_robustness_tables_are_printed_from_the_committed_results(name):
    rows = json.loads((REPO / "experiments" / "results" / name).read_text())["rows"]
    _all_in(experiment("depois_robustness").table(rows), "studies/depois.md")


def test_detection_table_is_printed_from_the_committed_results():
    rows = json.loads((REPO / "experiments" / "results" / "depois-detection-seed0.json").read_text())
    assert {r["preset"] for r in rows} == {"fast", "paper"}  # both presets
    _all_in(experiment("depois_detection").table(rows), "studies/depois.md")


def test_the_tabular_numbers_are_the_committed_ones():
    _all_in(experiment("tabular_scenarios").readme_rows(), "studies/tabular.md")  # the table and the sea-drift sentence
    found = json.loads((REPO / "experiments" / "results" / "tabular-scenarios.json").read_text())
    section = _page("studies/tabular.md").replace("\n", " ")
    phishing = ", ".join(f"{r['ca']:.2f}" for r in found["phishing"]["runs"])
    assert f"(ca {phishing})" in section
    sea = found["sea-drift"]["runs"]
    for r in sea[:2]:
        assert f"{r['clean_frr_after_attack_before_change']:.2f} → {r['clean_frr_after_change']:.2f}" in section
    assert f"its flip ca is {sea[2]['ca']:.2f}" in section


@pytest.mark.parametrize("sweep", ["paper-grid", "paper-grid-reference"])  # streamsim's defaults, the reference profile
def test_the_full_grid_tables_are_printed_from_the_committed_sweep(sweep):
    rows = experiment("paper_grid").tables(REPO / "experiments" / "results" / sweep / "results.csv")
    assert len(rows) == 2 * 14 + 1  # per access: header, rule, 12 ε rows; a blank line between
    _all_in(rows, "studies/paper.md")


def test_the_harm_table_is_printed_from_the_committed_results():
    # the undefended harm of the accumulative, backdoor and targeted attacks
    harm = experiment("harm")
    path = REPO / "experiments" / "results" / "harm.json"
    record = json.loads(path.read_text())
    assert all(len(runs) >= 3 for runs in record["cells"].values())
    # the accumulative comparison (Adam learner, every update regime) runs over five seeds; the SGD ablation over three
    five = [name for name in harm.CELLS if ("accumulative" in name or "trigger alone" in name) and "SGD" not in name]
    assert five and all(len(record["cells"][name]) >= 5 for name in five)
    rows = harm.table(path)
    assert len(rows) == 2 + len(harm.CELLS)
    _all_in(rows, "studies/harm.md")


def test_a_stale_row_is_caught():
    rows = experiment("table1").rows()
    stale = [rows[2].replace("0.", "0.9", 1)]
    with pytest.raises(AssertionError):
        _all_in(stale, "studies/paper.md")
