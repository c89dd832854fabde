"""The leaderboard names an attack's column from the attack plugin and the cell's resolved knowledge;
the core knows no attack by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamsim.presentation.leaderboard import attack_label

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("attack", "label"), [
    ({"name": "fgsm"}, "white-box FGSM"),  # the attack's default knowledge, as the run resolves it
    ({"name": "fgsm", "params": {"knowledge": "posteriors", "eps": 0.3}}, "black-box FGSM"),
    ({"name": "adaptive"}, "adaptive verdicts"),
    ({"name": "adaptive", "params": {"knowledge": "effects"}}, "adaptive effects"),
    ({"name": "pgd", "params": {"knowledge": "posteriors"}}, "pgd (posteriors)"),  # FGSM's labels are FGSM's own
    ({"name": "pgd"}, "pgd"),
    ({"name": "accumulative", "params": {"knowledge": "white-box"}}, "accumulative"),  # its default: no suffix
    ({"name": "fgsm", "params": {"knowledge": "posteriors", "no_such_setting": 1}}, "black-box FGSM"),  # older settings
    ({"name": "not-installed", "params": {"knowledge": "effects"}}, "not-installed (effects)"),
    ("noise", "noise"),
])
def test_an_attack_column_is_named_by_the_attack_and_its_resolved_knowledge(attack, label):
    assert attack_label(attack) == label


def test_the_core_names_no_attack_and_no_paper_figure():
    # docstrings and comments may mention them; code may not. The built-in learners and streamsim.nn
    # are exempt: the paper's CNN is one of the learners.
    for path in sorted((REPO_ROOT / "streamsim").rglob("*.py")):
        if path.name == "nn.py" or "learners" in path.parts:
            continue
        code = re.sub(r'"""(.*?)"""', "", path.read_text(encoding="utf-8"), flags=re.S)
        code = "\n".join(line.split("#")[0] for line in code.splitlines())
        found = re.search(r"\bfgsm\b|\bpgd\b|\badaptive\b|paper|figure \d", code, flags=re.I)
        assert not found, f"{path.relative_to(REPO_ROOT)}: {found and found[0]}"
