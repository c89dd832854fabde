"""The documentation site builds strictly, offline, and its generated references name everything.

The site is built the way ``make docs`` builds it (``mkdocs build --strict``), into a temporary folder.
The scenario reference must name every key of the scenario models and every setting of every registered
plugin, the CLI reference every command and option, the API page every name ``streamsim`` exports: each
list is walked here independently of docs/hooks/reference.py, so a generator that drifts fails.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import typing
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic import BaseModel

import streamsim
from streamsim import testing
from streamsim.presentation.cli import app
from streamsim.scenario.config import Scenario
from streamsim.scenario.registry import GROUPS, check_params, resolve

REPO = Path(__file__).resolve().parent.parent
PARAMS_AT = {"learner": "learner.params", "defense": "defense.params", "attack": "attackers.attack.params"}


def _build(site: Path, config: Path = REPO / "mkdocs.yml") -> subprocess.CompletedProcess[str]:
    # No bytecode: the hook module would leave a __pycache__ in docs/hooks/, inside the checkout.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = _build(out)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    return out


def _page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


def _sections(page: str, tag: str) -> dict[str, str]:
    """Heading text (tags stripped, unescaped) -> the HTML up to the next heading of that level or above."""
    parts = re.split(rf"(<h[1-{tag[-1]}][^>]*>.*?</h[1-{tag[-1]}]>)", page)
    return {html.unescape(re.sub(r"<[^>]+>", "", head)).strip("¶ \n"): body for head, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_the_site_builds_strictly_with_every_page(site):
    for page in ("index.html", "plugins/index.html", "reference/scenario/index.html", "reference/cli/index.html",
                 "reference/api/index.html", "studies/depois/index.html", "limitations/index.html"):
        assert (site / page).is_file(), page


def test_strict_mode_refuses_broken_links_anchors_and_pages_left_out_of_the_nav(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[gone](missing.md) and [no heading](other.md#no-such-heading)\n")
    (docs / "other.md").write_text("# Other\n")
    (docs / "orphan.md").write_text("# Not in the nav\n")
    config = tmp_path / "mkdocs.yml"  # the real settings, on these pages and without the generated ones
    config.write_text(f"INHERIT: {REPO / 'mkdocs.yml'}\ndocs_dir: {docs}\nhooks: []\nplugins: [search]\n"
                      "nav: [index.md, other.md]\n")
    built = _build(tmp_path / "site", config)
    assert built.returncode != 0
    for problem in ("missing.md", "no-such-heading", "orphan.md"):
        assert problem in built.stderr, built.stderr


def _model_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        stack, found = [field.annotation], []
        while stack:  # the models anywhere in the annotation: a table, an array of tables, one of several kinds
            hint = stack.pop()
            if isinstance(hint, type) and issubclass(hint, BaseModel):
                found.append(hint)
            stack.extend(typing.get_args(hint))
        for sub in found:
            keys += _model_keys(sub, f"{prefix}{name}.")
    return keys


def _setting_keys(settings: dict[str, Any], prefix: str) -> list[str]:
    keys = []
    for key, value in settings.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys += _setting_keys(value, f"{prefix}{key}.")
    return keys


def test_the_scenario_reference_names_every_key_of_the_scenario_models(site):
    page = _page(site, "reference/scenario")
    keys = _model_keys(Scenario)
    assert {"seed", "data.splits.pretrain", "learner.update.window", "clean.drift.prior_shift.priors",
            "attackers.attack.params", "metrics.adwin_delta"} <= set(keys)
    missing = [k for k in keys if f"<code>{k}</code>" not in page]
    assert not missing, f"not in the scenario reference: {missing}"


def test_the_scenario_reference_names_every_setting_of_every_registered_plugin(site):
    sections = _sections(_page(site, "reference/scenario"), "h3")
    checked = 0
    for kind, where in PARAMS_AT.items():
        for ep in entry_points(group=GROUPS[kind]):
            section = sections.get(f"{kind} {ep.name}")
            assert section is not None, f"no section for the {kind} {ep.name}"
            keys = _setting_keys(check_params(resolve(kind, ep.name), {}, kind), f"{where}.")
            missing = [k for k in keys if f"<code>{k}</code>" not in section]
            assert not missing, f"{kind} {ep.name}: not in its section: {missing}"
            checked += len(keys)
    assert checked > 50  # the settings tables (fgsm's shadow, depois's critic) are walked too


def test_the_cli_reference_names_every_command_and_option(site):
    sections = _sections(_page(site, "reference/cli"), "h2")
    root = typer.main.get_command(app)
    ctx = root.make_context("streamsim", [], resilient_parsing=True)
    commands = {"": root, **{name: root.get_command(ctx, name) for name in root.list_commands(ctx)}}
    assert {"run", "validate", "list", "sweep", "report"} <= set(commands)
    for name, command in commands.items():
        title = f"streamsim {name}" if name else "Command line"
        assert title in sections, f"no section {title!r}"
        first_cells = re.findall(r"<tr>\s*<td><code>(.*?)</code></td>", sections[title])
        named = {token for cell in first_cells for token in re.split(r"[ ,]+", html.unescape(cell))}
        for param in command.params:
            for opt in [*param.opts, *param.secondary_opts]:
                assert opt in named, f"{title}: {opt} is not in its table"


def test_the_api_page_documents_every_exported_name_and_the_conformance_checks(site):
    page = _page(site, "reference/api")
    names = [f"streamsim.{n}" for n in streamsim.__all__]
    names += [f"streamsim.testing.{n}" for n in testing.__all__]
    missing = [n for n in names if f'id="{n}"' not in page]
    assert not missing, f"not on the API page: {missing}"
    # docs/hooks/docstrings.py: Sphinx roles are shown as code, not as text; doctests as code, not as nested quotes
    assert ":class:" not in page and ":meth:" not in page
    assert "<blockquote>" not in page and page.count('<span class="gp">&gt;&gt;&gt; </span>') > 10
