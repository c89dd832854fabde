"""Rich rendering at the edge: progress bars for training phases and the end-of-run summary table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from streamsim.core.catalogue import CONSOLE, METRICS, attacker_metric
from streamsim.core.progress import ProgressTask, silent


class RichProgress:
    """A :class:`~streamsim.core.progress.ProgressFactory` drawing one bar per training phase.

    Quiet (a no-op) when the console is not a terminal, so logs hold no escape codes.
    """

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, description: str, total: int) -> ProgressTask:
        if not self.console.is_terminal:
            return silent(description, total)
        progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            console=self.console, transient=False,
        )
        progress.start()
        task_id = progress.add_task(description, total=total, info="")
        return _RichTask(progress, task_id)


class _RichTask:
    def __init__(self, progress: Progress, task_id: Any) -> None:
        self.progress = progress
        self.task_id = task_id

    def advance(self, n: int = 1, **fields: float) -> None:
        info = "  ".join(f"{k}={v:.4g}" for k, v in fields.items())
        self.progress.update(self.task_id, advance=n, info=info)

    def close(self) -> None:
        self.progress.stop()


def summary_table(summary: dict[str, Any], title: str) -> Table:
    """The end-of-run table: the catalogue's console metrics, then each attacker's numbers, labelled."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in CONSOLE:
        if key in summary:
            table.add_row(METRICS[key].label, METRICS[key].format(summary[key]))
    for name, stats in (summary.get("attackers") or {}).items():
        for key, value in stats.items():
            metric = attacker_metric(key)
            table.add_row(f"{name}: {metric.label}", metric.format(value))
    return table
