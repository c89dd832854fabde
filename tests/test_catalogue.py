"""One metric catalogue: every table that shows metrics takes names, labels and formats from it."""

from __future__ import annotations

import io

from rich.console import Console

from streamsim.core import catalogue
from streamsim.presentation.console import summary_table
from streamsim.running import sweep


def test_every_listed_metric_is_in_the_catalogue_and_sweeps_use_its_columns():
    for names in (catalogue.CONSOLE, catalogue.REPORT, catalogue.SWEEP, catalogue.SWEEP_PLOTS):
        assert set(names) <= set(catalogue.METRICS)
    assert tuple(sweep.METRICS) == catalogue.SWEEP


def test_the_summary_table_prints_counts_as_integers_and_attacker_numbers_with_labels():
    summary = {"ca": 0.25, "poisons": 816, "accepted_poisons": 612, "first_drift_alarm": None,
               "attackers": {"adaptive": {"knowledge": "verdicts", "queries_used": 96, "submitted": 816,
                                          "inferred_balanced_accuracy_window": 0.612, "fidelity_n": 500.0}}}
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(summary_table(summary, "t"))
    out = console.file.getvalue()
    assert "816.0" not in out and "816 " in out.replace("│", " ")
    for text in ("poisons sent", "ca (rejected poisons / poisons)", "adaptive: queries spent", "adaptive: samples submitted",
                 "adaptive: inferred verdicts: balanced accuracy, last window", "0.6120", "adaptive: shadow fidelity: n"):
        assert text in out, text
    assert "queries_used" not in out and "500.0" not in out
