"""The leaderboard names an attack's column from the attack plugin and the cell's resolved knowledge;
the core knows no attack by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamsim.leaderboard import attack_label

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
    # docstrings may mention them; code may not
    for module in ("leaderboard", "report"):
        source = (REPO_ROOT / "streamsim" / f"{module}.py").read_text(encoding="utf-8")
        code = re.sub(r'"""(.*?)"""', "", source, flags=re.S)
        assert not re.search(r"fgsm|adaptive|paper|figure \d", code, flags=re.I), module
