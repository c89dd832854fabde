"""Numbers quoted in the prose of the README and the docs come from committed files.

Every page that quotes a decimal number in a sentence names its sources at the top, in an HTML
comment: ``<!-- sources: experiments/results/harm.json scenarios/backdoor.toml ... -->`` (committed
result files, the benchmarks' printed outputs, scenario or source files for settings, or another
page whose tables are checked). A quoted number is backed when a number in one of those files, or
in the page's own tables and fenced output blocks (each checked against its committed file by
tests/test_docs.py and tests/test_leaderboard.py), rounds to it at the precision quoted. A page
whose tables are written by hand (the benchmarks) says ``<!-- check: tables -->``: its table cells
are then checked like its sentences, and back nothing.

What counts as a quoted number: a decimal (``0.477``, ``1,861.3``, ``3.5``) in prose — outside
tables, fenced blocks, inline code (settings and commands) and link targets. Integers (seeds,
counts, sizes) are not checked: they are mostly settings, and a count that matches by accident
would prove nothing. Versions (``2.14.1``) and citations (``arXiv 2204.01090``) are not numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]

HAND_TABLES = "<!-- check: tables -->"
SOURCES = re.compile(r"<!--\s*sources:(?P<paths>[^>]*)-->")
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
COMMENT = re.compile(r"<!--.*?-->", re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
CITATION = re.compile(r"(?:arXiv|torch|Python|python)\s+\d+(?:\.\d+)+")
# a decimal not inside a longer dotted token (2.14.1), thousands separated by commas allowed
QUOTED = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)\.(\d+)(?![\w]|\.\d)")
THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
# how the work was done, which results must not speak of: issue numbers, sessions, dates of reruns
NOTEBOOK = re.compile(r"#\d+\b|\bissues?\s+\d+|\bsessions?\b|\b20\d\d-\d\d-\d\d\b|\brerun on\b", re.I)


def _table_line(line: str) -> bool:
    return line.lstrip().startswith("|")


def prose(text: str) -> str:
    """The sentences of a page: no fenced blocks, generated tables, comments, inline code or link targets."""
    hand_tables = HAND_TABLES in text
    text = COMMENT.sub(" ", FENCE.sub(" ", text))
    lines = [line for line in text.splitlines() if hand_tables or not _table_line(line)]
    text = "\n".join(lines)
    return CITATION.sub(" ", LINK_TARGET.sub("]", CODE_SPAN.sub(" ", text)))


def generated(text: str) -> str:
    """The page's tables and fenced blocks: printed from committed files, and checked against them."""
    tables = "" if HAND_TABLES in text else "\n".join(line for line in text.splitlines() if _table_line(line))
    return tables + "\n" + "\n".join(m.group(0) for m in FENCE.finditer(text))


def quoted(text: str) -> list[tuple[str, float, int]]:
    """(as written, value, decimals) for every decimal number in the page's prose."""
    return [(m.group(0), float(m.group(1).replace(",", "") + "." + m.group(2)), len(m.group(2)))
            for m in QUOTED.finditer(prose(text))]


def source_paths(text: str) -> list[str]:
    return [p for m in SOURCES.finditer(text) for p in m["paths"].split()]


def backing(text: str, root: Path = REPO) -> list[float]:
    """Every number in the page's declared sources and in its own generated tables."""
    texts = [generated(text)] + [(root / rel).read_text(encoding="utf-8") for rel in source_paths(text)]
    values = []
    for rel, found in zip(["page", *source_paths(text)], texts, strict=True):
        if rel == "page" or rel.endswith(".md"):  # prose style: 1,861.3 is one number; in a CSV a comma separates
            found = THOUSANDS.sub("", found)
        values += [float(n) for n in NUMBER.findall(found)]
    return values


def unbacked(text: str, root: Path = REPO) -> list[str]:
    """The decimals the page quotes that no source gives, at the precision quoted."""
    values = backing(text, root)
    missing = []
    for written, value, decimals in quoted(text):
        tolerance = 0.5 * 10 ** -decimals + 1e-9
        if not any(abs(v - value) <= tolerance for v in values):
            missing.append(written)
    return missing


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_quoted_numbers_come_from_committed_files(page):
    text = page.read_text(encoding="utf-8")
    for rel in source_paths(text):
        assert (REPO / rel).is_file(), f"{page.name}: source {rel} is not a committed file"
    if quoted(text):
        assert source_paths(text), f"{page.name} quotes numbers but names no sources"
    assert unbacked(text) == [], f"{page.relative_to(REPO)}: numbers with no committed source"


def test_an_unbacked_number_is_found(tmp_path):
    (tmp_path / "result.json").write_text('{"ca": 0.4771, "da": 0.9}')
    page = ("<!-- sources: result.json -->\nThe worst run is 0.477 above its FRR, and da is 0.90; "
            "it took 14.2 s.\n\n| table | 0.555 |\n\n```text\n0.666\n```\n`lr = 0.123` and torch 2.14.1\n")
    assert [w for w, _, _ in quoted(page)] == ["0.477", "0.90", "14.2"]  # not the table, block, code or version
    assert unbacked(page, tmp_path) == ["14.2"]
    assert unbacked(page.replace("0.477", "0.478"), tmp_path) == ["0.478", "14.2"]  # rounds to 0.477, not 0.478
    assert unbacked(page + "\nThe table says 0.555 and the block 0.666.\n", tmp_path) == ["14.2"]
    hand = page.replace("-->\n", "-->\n<!-- check: tables -->\n", 1)  # a table written by hand backs nothing
    assert [w for w, _, _ in quoted(hand)] == ["0.477", "0.90", "14.2", "0.555"]
    assert unbacked(hand, tmp_path) == ["14.2", "0.555"]


def test_no_page_speaks_of_how_the_work_was_done():
    for page in PAGES:
        text = COMMENT.sub(" ", page.read_text(encoding="utf-8"))
        hits = [m.group(0) for m in NOTEBOOK.finditer(text)]
        assert not hits, f"{page.relative_to(REPO)}: {hits}"


def test_the_lab_notebook_check_can_fail():
    for text in ("fixed in #25", "since issue 17", "Issue 27's list", "this session", "rerun on 2026-11-29"):
        assert NOTEBOOK.search(text), text
    assert not NOTEBOOK.search("seed 17, issued 3 queries, 25 sessile")
