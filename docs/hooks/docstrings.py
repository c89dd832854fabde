"""An MkDocs hook that lets the code's docstrings read well as Markdown on the API page.

The docstrings are written for the terminal, the doctests and Sphinx: ``>>>`` examples with no fence
(Markdown would make them nested quotes) and roles such as :class:`~streamsim.core.batch.Batch` (Markdown
would print ``:class:`` before the name). Before Markdown reads a page or a docstring, each example
becomes a fenced ``pycon`` block, and each role the name alone as code (``~``: its last part only).
"""

from __future__ import annotations

import re
from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor
from mkdocs.config.defaults import MkDocsConfig

ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):`(~?)([^`]+)`")
FENCE = re.compile(r"^\s*(```|~~~)")
PROMPT = re.compile(r"^(\s*)>>> ")


def on_config(config: MkDocsConfig, **_: Any) -> MkDocsConfig:
    config.markdown_extensions.append(DocstringMarkdown())  # mkdocstrings renders docstrings with these too
    return config


class DocstringMarkdown(Extension):
    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 - Python-Markdown's name
        # before fenced code (priority 25) is found, so that the fences added here are read as code
        md.preprocessors.register(_Doctests(md), "streamsim-doctests", 28)


class _Doctests(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        fenced = example = False
        indent = ""
        for line in lines:
            if example and not line.strip():
                out += [f"{indent}```", line]
                example = False
                continue
            if not example and FENCE.match(line):
                fenced = not fenced
            elif not fenced and not example and (prompt := PROMPT.match(line)):
                indent, example = prompt[1], True
                out += ["", f"{indent}```pycon"]
            out.append(line if fenced or example else ROLE.sub(_name, line))
        return [*out, f"{indent}```"] if example else out


def _name(role: re.Match[str]) -> str:
    return f"`{role[2].rsplit('.', 1)[-1] if role[1] else role[2]}`"
