"""The ``streamsim`` command. Errors end here: one line on stderr and an exit code
(0 ok, 1 the run failed, 2 bad input) — never a traceback unless ``STREAMSIM_DEBUG=1``.

Usage errors are bad input too: one line and exit code 2, not a box. Nothing here imports torch
at start-up; each command imports what it needs, so ``--help``, ``--version`` and ``list`` are quick.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from streamsim.core.errors import StreamsimError

# The click whose exceptions typer's commands raise: a vendored copy in newer typer (a private module,
# typer._click), click itself in older typer. typer's public BadParameter is one of them, so its module
# is found through the public name, whatever typer's layout.
click_errors = importlib.import_module(typer.BadParameter.__module__)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _OneLineErrors(TyperGroup):
    """Click's usage errors as one ``streamsim: error:`` line and exit code 2."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as e:
            typer.echo(e.ctx.get_help() if e.ctx is not None else e.format_message())
            sys.exit(EXIT_BAD_INPUT)
        except click_errors.ClickException as e:
            where = f"{e.ctx.command_path}: " if getattr(e, "ctx", None) is not None else ""
            hint = f" (see {e.ctx.command_path} --help)" if isinstance(e, click_errors.UsageError) and e.ctx is not None else ""
            err_console.print(f"streamsim: error: {where}{_one_line(e.format_message())}{hint}", markup=False)
            sys.exit(EXIT_BAD_INPUT if isinstance(e, click_errors.UsageError) else e.exit_code)
        except typer.Abort:  # typer's own class: its vendored click has no Abort of its own
            err_console.print("streamsim: error: aborted", markup=False)
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(cls=_OneLineErrors, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Simulate data-poisoning attacks and defenses on a model that learns from a stream.")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    err_console.print(f"streamsim: error: {_one_line(message)}", markup=False)
    raise typer.Exit(code)


def _out_path(text: str | None) -> Path | None:
    """``--out`` as a path. An empty one is refused: as a path it would quietly mean the current folder."""
    if text is None:
        return None
    if not text.strip():
        fail("--out is empty: give the folder to write to")
    return Path(text)


def _warn_one_line(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    err_console.print(f"streamsim: warning: {_one_line(str(message))}", markup=False)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"streamsim {version('streamsim')}")
        except PackageNotFoundError:
            typer.echo("streamsim (not installed)")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Simulate data-poisoning attacks and defenses on a model that learns from a stream."""
    warnings.showwarning = _warn_one_line  # a warning is one line too (an unwritable cache, a rebuilt copy)


@contextlib.contextmanager
def _allowing(modules: list[str]) -> Iterator[None]:
    """Let ``module:attr`` references import these modules, here and in sweep workers (via the environment)."""
    from streamsim.scenario.registry import ALLOW_ENV

    for m in modules:
        if not all(part.isidentifier() for part in m.split(".")):
            fail(f"--allow-import {m!r}: expected a module name like package.module")
    before = os.environ.get(ALLOW_ENV)
    if modules:
        os.environ[ALLOW_ENV] = ",".join(filter(None, [before or "", *modules]))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ALLOW_ENV, None)
        else:
            os.environ[ALLOW_ENV] = before


def guarded(action: Callable[[], Any]) -> Any:
    """Turn library errors into one line and an exit code."""
    try:
        return action()
    except StreamsimError as e:
        fail(str(e), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except typer.Exit:
        raise
    except Exception as e:
        if os.environ.get("STREAMSIM_DEBUG"):
            raise
        fail(f"run failed: {type(e).__name__}: {e} (set STREAMSIM_DEBUG=1 for the traceback)", EXIT_FAILED)


SetOpt = Annotated[list[str], typer.Option("--set", "-s", help="Override a scenario key: key.path=value (repeatable).")]
DeviceOpt = Annotated[str | None, typer.Option(
    "--device", help="Where torch networks run: cpu (the reproducible default), cuda, or auto (cuda if present); "
    "overrides the scenario's device.")]
AllowOpt = Annotated[list[str], typer.Option(
    "--allow-import", "-p", help="Let module:attr plugin references import MODULE (repeatable). A scenario alone "
    "never imports code; also STREAMSIM_ALLOW_IMPORT=mod1,mod2.")]


@app.command()
def run(
    scenario: Annotated[str | None, typer.Argument(help="Scenario file, or the name of a built-in scenario.")] = None,
    set_: SetOpt = [],  # noqa: B006 - typer needs a literal default
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    out: Annotated[str | None, typer.Option(help="Run directory (default runs/NAME-seedN-TIME).")] = None,
    no_baseline: Annotated[bool, typer.Option("--no-baseline", help="Skip the no-attack baseline run.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Train every artifact afresh.")] = False,
    no_live: Annotated[bool, typer.Option("--no-live", help="Plain log lines instead of the live dashboard.")] = False,
    checkpoint_every: Annotated[float | None, typer.Option(
        "--checkpoint-every", help="Save the whole run state every T simulated time units (resume with --resume).")] = None,
    resume: Annotated[Path | None, typer.Option(
        "--resume", help="Continue a run started with --checkpoint-every from its last checkpoint.")] = None,
    device: DeviceOpt = None,
    allow_import: AllowOpt = [],  # noqa: B006
) -> None:
    """Run a scenario (and its no-attack baseline) and write a run directory."""
    from streamsim.presentation.console import RichProgress, summary_table
    from streamsim.running.experiment import resume as resume_run
    from streamsim.running.experiment import run as run_scenario

    if resume is not None:
        given = [name for name, v in (("a scenario", scenario), ("--set", set_), ("--seed", seed), ("--out", out),
                                      ("--checkpoint-every", checkpoint_every)) if v]
        if given or no_baseline or no_cache:
            fail(f"--resume continues a run with the settings it was started with; drop {', '.join(given) or 'the other options'}")
    elif scenario is None:
        fail("give a scenario file or name (or --resume RUN_DIR)")
    run_dir = _out_path(out)
    console = Console()
    live = _dashboard(console, no_live)
    try:
        with _allowing(allow_import):
            if resume is not None:
                result = guarded(lambda: resume_run(resume, progress=RichProgress(console), on_record=live,
                                                    device=device))
            else:
                result = guarded(lambda: run_scenario(
                    scenario, set=[*set_, *([f"device={device}"] if device else [])], seed=seed,
                    out=run_dir if run_dir is not None else "auto",
                    baseline=False if no_baseline else None, cache=not no_cache, progress=RichProgress(console),
                    on_record=live, checkpoint_every=checkpoint_every,
                ))
    finally:
        if hasattr(live, "close"):
            live.close()  # also when the run fails: give the terminal its cursor back
    console.print(summary_table(result.summary, f"{result.summary['scenario']} (seed {result.summary['seed']})"))
    console.print(f"results in [bold]{result.run_dir}[/bold]")


def _dashboard(console: Console, no_live: bool) -> Callable[[Any], None] | None:
    try:
        from streamsim.presentation.dashboard import make_dashboard
    except ImportError:
        return None
    return make_dashboard(console, plain=no_live or not console.is_terminal or bool(os.environ.get("CI")))


@app.command()
def validate(
    scenario: Annotated[str, typer.Argument(help="Scenario file or built-in name.")],
    set_: SetOpt = [],  # noqa: B006
    allow_import: AllowOpt = [],  # noqa: B006
) -> None:
    """Check a scenario as `run` does before it starts (plugins, data, splits, numbers), running nothing."""
    from streamsim.scenario.config import load_scenario

    with _allowing(allow_import):
        sc = guarded(lambda: load_scenario(scenario, set_))  # before torch is imported: bad input fails fast
        from streamsim.running import preflight

        guarded(lambda: preflight.check(sc))
    unused = sc.data.splits.unused()
    note = f"; data.splits leave {unused:.0%} of the dataset unused" if unused > 1e-9 else ""
    typer.echo(f"{scenario}: ok ({len(sc.clean)} clean and {len(sc.attackers)} attacker sources, "
               f"defense {sc.defense.name}, learner {sc.learner.name}{note})")


@app.command("list")
def list_plugins() -> None:
    """Every dataset, learner, defense and attack, with where it comes from."""
    from rich.table import Table

    from streamsim.scenario.config import SCENARIO_DIR
    from streamsim.scenario.registry import GROUPS, available

    console = Console()
    table = Table(show_header=True, header_style="bold")
    for col in ("kind", "name", "from", "description"):
        table.add_column(col)
    for kind in GROUPS:
        for p in available(kind):
            table.add_row(kind, p.name, p.origin if p.origin.startswith("streamsim ") else f"{p.origin} ({p.target})",
                          p.description)
    table.add_row("dataset", "npz:PATH", "streamsim",
                  "a user's .npz: x N×28×28 (uint8 0..255 or float [0, 1]), y integer labels 0..9")
    from streamsim.data import tabular  # numpy only: `list` stays torch-free

    for prefix, names, what in (("river:", tabular.RIVER_BUNDLED, "river's bundled tables"),
                                ("sklearn:", tabular.SKLEARN_BUNDLED, "scikit-learn's bundled tables"),
                                ("river.synth:", tabular.SYNTH, "river's generators; settings and size in data.params")):
        table.add_row("dataset", f"{prefix}NAME", "streamsim", f"{what}: {', '.join(names)}")
    for path in sorted(SCENARIO_DIR.glob("*.toml")):
        table.add_row("scenario", path.stem, "scenarios/", _first_comment(path))
    console.print(table)


@app.command()
def sweep(
    scenario: Annotated[str, typer.Argument(help="Scenario file or built-in name (ignored with --resume).")],
    grid: Annotated[list[str], typer.Option("--grid", "-g", help="key.path=v1,v2,... (repeatable; Cartesian product).")] = [],  # noqa: B006
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0",
    jobs: Annotated[int, typer.Option(help="Cells run in parallel.")] = 1,
    out: Annotated[str | None, typer.Option(help="Sweep directory (default sweeps/NAME-TIME).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the sweep in --out; skips finished cells.")] = False,
    set_: SetOpt = [],  # noqa: B006
    executor: Annotated[str, typer.Option(help="local (process pool) or ray.")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address to join (with --executor ray).")] = None,
    device: DeviceOpt = None,
    allow_import: AllowOpt = [],  # noqa: B006
) -> None:
    """Run a scenario over a grid of settings and seeds, one row per cell and seed in results.csv."""
    from datetime import UTC, datetime

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from streamsim.running.sweep import parse_grid, run_sweep

    def parse_seeds() -> list[int]:
        try:
            parsed = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            fail(f"--seeds {seeds!r}: expected comma-separated integers")
        if not parsed or any(not 0 <= s < 2**63 for s in parsed) or len(set(parsed)) != len(parsed):
            fail(f"--seeds {seeds!r}: expected distinct integers in 0..2**63-1")
        return parsed

    if jobs < 1:
        fail(f"--jobs must be at least 1, got {jobs}")
    chosen_seeds = parse_seeds() if not resume or seeds != "0" else []

    if resume and out is None:
        fail("--resume needs --out, the sweep directory to continue")
    folder = _out_path(out) or Path("sweeps") / f"{Path(scenario).stem}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    parsed = guarded(lambda: parse_grid(grid))
    console = Console()
    plain = not console.is_terminal or bool(os.environ.get("CI"))
    bar = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   TextColumn("{task.fields[info]}"), console=console, disable=plain)
    task = bar.add_task("sweep", total=None, info="")

    def show(p) -> None:  # noqa: ANN001
        info = f"failed {p.failed}" + (f", {p.skipped} already done" if p.skipped else "")
        bar.update(task, total=p.total, completed=p.skipped + p.done + p.failed, info=info)
        if plain:
            typer.echo(f"sweep: {p.skipped + p.done + p.failed}/{p.total} cells, {p.failed} failed")

    with bar, _allowing(allow_import):
        progress = guarded(lambda: run_sweep(scenario, parsed, chosen_seeds, folder, jobs=jobs, resume=resume,
                                             overrides=(*set_, *([f"device={device}"] if device else [])), executor=executor, address=address,
                                             on_progress=show))
    console.print(f"{progress.done} cells run, {progress.skipped} already done, {progress.failed} failed; "
                  f"results in [bold]{folder / 'results.csv'}[/bold]")
    if progress.failed:
        console.print(f"failures logged in {folder / 'failures.jsonl'}; rerun with --resume to retry them")
        raise typer.Exit(EXIT_FAILED)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, or a sweep directory (with results.csv).")],
    out: Annotated[str | None, typer.Option(help="Where report.md and figures/ go (default: RUN_DIR).")] = None,
) -> None:
    """Draw a run's or a sweep's figures (PNG) and write a report.md that embeds them."""
    from streamsim.presentation.report import write_report

    dest = _out_path(out)
    path = guarded(lambda: write_report(run_dir, dest))
    typer.echo(f"report in {path}")

def _first_comment(path: Path) -> str:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
