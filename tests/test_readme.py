"""The README: short, its code runs, its quickstart numbers are the committed ones, its links resolve.

Every fenced block with a language is either run here (``python``) or marked with an HTML comment
``<!-- not run by the tests: why -->`` on the line before it. The studies live in docs/ and are
checked by tests/test_pages.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.doc_pages import blocks, experiment

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
BLOCKS = blocks(README)
MAX_LINES = 250


def _section(title: str) -> str:
    return README[README.index(f"## {title}\n"):].split("\n## ")[0]


def test_the_readme_is_short_and_starts_with_the_two_commands():
    assert len(README.splitlines()) <= MAX_LINES
    lang, body, _ = BLOCKS[0]
    commands = [line.split("#")[0].strip() for line in body.splitlines()]
    assert lang == "bash" and commands == ["make quickstart", "make test"]
    assert "## Dependencies and why" in README


def test_every_block_is_run_or_says_why_not():
    assert len(BLOCKS) >= 4
    for lang, body, note in BLOCKS:
        if lang != "python":
            assert note.startswith("not run by the tests:") and len(note) > 25, body[:80]


@pytest.mark.parametrize("index", [i for i, (lang, _, _) in enumerate(BLOCKS) if lang == "python"])
def test_python_blocks_run(index, monkeypatch):
    monkeypatch.chdir(REPO)
    before = set(os.listdir(REPO))
    namespace: dict[str, object] = {"__name__": "readme_block"}
    exec(compile(BLOCKS[index][1], f"README.md python block {index}", "exec"), namespace)  # noqa: S102
    assert set(os.listdir(REPO)) == before  # the example writes nothing


def test_the_defense_example_is_checked_by_the_conformance_suite():
    # the README's plugin is a real defense, and check_defense is what vouches for it
    (body,) = [body for lang, body, _ in BLOCKS if lang == "python"]
    assert "check_defense(" in body and "(Defense)" in body
    code_lines = [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(code_lines) <= 25


def test_the_defense_example_can_fail(monkeypatch):
    # a defense whose screen draws on a global generator breaks "same seed, same answers": the check says so
    (body,) = [body for lang, body, _ in BLOCKS if lang == "python"]
    broken = body.replace("score=-distance)", "score=-distance + torch.rand(len(distance)))")
    assert broken != body
    monkeypatch.chdir(REPO)
    with pytest.raises(AssertionError):
        exec(compile(broken, "README.md broken python block", "exec"), {"__name__": "readme_block"})  # noqa: S102


def test_what_the_quickstart_prints_is_the_committed_result():
    rows = experiment("quickstart_readme").rows()
    assert len(rows) >= 10
    assert "\n".join(rows) in _section("What the quickstart prints")
    assert (REPO / "docs" / "figures" / "quickstart-accuracy.png").is_file()
    assert "](docs/figures/quickstart-accuracy.png)" in _section("What the quickstart prints")


def test_the_box_lists_every_built_in_plugin_and_scenario():
    from streamsim.scenario.registry import GROUPS, available

    box = _section("What is in the box")
    names = [p.name for kind in GROUPS for p in available(kind) if p.origin.startswith("streamsim ")]
    names += [path.stem for path in (REPO / "scenarios").glob("*.toml")]
    assert len(names) > 30
    missing = [name for name in names if f"`{name}`" not in box]
    assert not missing, missing


def test_links_point_at_committed_files():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert any(t.startswith("docs/studies/") for t in targets)
    for target in targets:
        if not target.startswith("http"):
            assert (REPO / target).is_file(), target
