"""The edges users touch: the Typer CLI, the rich console and live dashboard, reports and
leaderboards. Only cli, console and dashboard may import rich or typer."""
