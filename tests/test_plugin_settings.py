"""Nested plugin settings (one table per group) and the plugin-setting checks ``validate`` makes.

FGSM and PGD take one ``shadow`` table, PGD takes every FGSM setting, the adaptive attacker's
settings come in ``policy`` / ``shadow`` / ``probing`` tables; the flat keys of earlier versions
are a one-line error that gives the new spelling. Settings that name a class, tables with values
out of range and crafting work beyond the cap are refused by ``streamsim validate``, exit 2.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from typer.testing import CliRunner

from attacks.adaptive import Adaptive
from attacks.fgsm import FGSM
from attacks.pgd import PGD
from attacks.shadow import ShadowSettings, keyed_settings
from streamsim import ConfigError
from streamsim.presentation.cli import app
from streamsim.running.preflight import MAX_CRAFT_STEPS, build_components
from streamsim.scenario.config import load_scenario
from streamsim.scenario.registry import build, check_params
from tests.cli_checks import one_line_exit_2, write_scenario

runner = CliRunner()






def _with_attack(tiny: dict[str, Any], name: str, params: dict[str, Any]) -> dict[str, Any]:
    tiny["attackers"][0]["attack"] = {"name": name, "params": params}
    return tiny


# --- nested tables ------------------------------------------------------------------------------

def test_a_shadow_table_fills_its_defaults_and_lands_whole_in_the_resolved_scenario(tiny, tmp_path):
    text = tomli_w.dumps(_with_attack(tiny, "fgsm", {"knowledge": "posteriors"}))
    text += '\n[attackers.attack.params.shadow]\npoints = 500\npool = "attacker+base"\n'  # a TOML sub-table
    (tmp_path / "s.toml").write_text(text)
    resolved = build_components(load_scenario(tmp_path / "s.toml"))[3]
    shadow = resolved.attackers[0].attack.params["shadow"]
    assert shadow["points"] == 500 and shadow["pool"] == "attacker+base" and shadow["epochs"] == 5
    assert set(shadow) == {f for f in ShadowSettings.__dataclass_fields__}
    again = tomllib.loads(resolved.resolved_toml())["attackers"][0]["attack"]["params"]["shadow"]
    assert again["points"] == 500 and "critic_temperature" not in again  # None is left out, as TOML has no null
    attack = build("attack", "fgsm", resolved.attackers[0].attack.params, "a")[0]  # the resolved table builds again
    assert attack.shadow == ShadowSettings(points=500, pool="attacker+base")


def test_an_inline_table_and_set_reach_the_same_settings(tiny):
    inline = load_scenario(_with_attack(tiny, "pgd", {"shadow": {"epochs": 2}}))
    by_set = load_scenario(_with_attack(tiny, "pgd", {}), ["attackers.0.attack.params.shadow.epochs=2"])
    assert build_components(inline)[3].attackers == build_components(by_set)[3].attackers


def test_the_matching_attacks_keep_their_cheaper_shadow_defaults_under_a_partial_table():
    attack, params = build("attack", "targeted", {"knowledge": "posteriors", "shadow": {"points": 50}}, "a")
    assert attack.shadow == ShadowSettings(classifier="small-cnn", epochs=3, points=50)
    assert params["shadow"]["classifier"] == "small-cnn" and params["shadow"]["epochs"] == 3


def test_pgd_takes_every_fgsm_setting_with_the_same_defaults():
    fgsm, pgd = check_params(FGSM, {}, "a"), check_params(PGD, {}, "a")
    assert {k: v for k, v in pgd.items() if k in fgsm} == fgsm
    assert set(pgd) - set(fgsm) == {"steps", "step_size", "random_start"}
    attack = build("attack", "pgd", {"knowledge": "posteriors", "shadow": {"pool": "training"}}, "a")[0]
    assert attack.needs_training_data  # shadow.pool: the setting pgd used to drop
    with pytest.raises(ConfigError, match=r"a\.params\.stepz: unknown setting"):
        build("attack", "pgd", {"stepz": 3}, "a")  # **settings passed on to FGSM does not open the door to typos


def test_adaptive_settings_come_in_one_table_per_part():
    attack, params = build("attack", "adaptive", {"policy": {"discount": 0.9}, "shadow": {"warm_start": 0},
                                                  "probing": {"controls": 4}}, "a")
    assert (attack.policy.discount, attack.policy.exploration) == (0.9, 0.2)
    assert (attack.shadow.warm_start, attack.shadow.hidden) == (0, (256, 32))
    assert (attack.probing.controls, attack.probing.share) == (4, 0.25)
    assert set(params) == {"knowledge", "eps", "modes", "probes", "steps", "surrogate_epochs", "policy", "shadow",
                           "probing"}
    assert Adaptive(policy={"discount": 0.9}).policy == attack.policy  # Python takes the same tables


def test_depois_tables_keep_the_preset_mechanism():
    from defenses.depois import DePois

    d, params = build("defense", "depois", {"preset": "paper", "critic": {"steps": 7}}, "defense")
    config = d.training_config()
    assert config["critic"] == {"steps": 7, "batch_size": 32, "n_critic": 5, "lr": 5e-5, "gp_weight": 10.0}
    assert config["augment"]["factor"] == 5.0 and config["augment"]["cgan_steps"] == 2000  # the preset's
    assert params["critic"]["steps"] == 7 and params["critic"]["lr"] is None  # unset: the preset decides
    assert DePois(preset="tabular").training_config()["critic"]["n_critic"] == 2
    assert DePois(refresh={"every": 50}).refresh.window == 1000


def test_default_shadow_cache_keys_are_unchanged():
    # shadows cached by the flat-keyword version stay valid: the same key for the same settings
    assert keyed_settings(ShadowSettings()) == {
        "classifier": "paper-cnn", "points": None, "epochs": 5, "batch_size": 64, "lr": 1e-3, "alpha": 0.5,
        "temperature": 10.0, "critic_hidden": (1024, 128, 16), "critic_epochs": 100, "critic_batch_size": 2048,
        "critic_lr": 1e-3, "critic_temperature": None, "boundary_k": 1.0}
    assert keyed_settings(ShadowSettings(pool="training", kl_weight=0.9))["kl_weight"] == 0.9


# --- the old flat keys ----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "old", "value", "new"), [
    ("fgsm", "shadow_points", 500, "shadow.points"),
    ("fgsm", "shadow_pool", "training", "shadow.pool"),
    ("pgd", "shadow_epochs", 2, "shadow.epochs"),
    ("targeted", "shadow_classifier", "small-cnn", "shadow.classifier"),
    ("adaptive", "shadow_hidden", [16], "shadow.hidden"),
    ("adaptive", "warm_start", 0, "shadow.warm_start"),
    ("adaptive", "discount", 0.9, "policy.discount"),
    ("adaptive", "probe_share", 0.5, "probing.share"),
])
def test_old_flat_keys_are_one_line_naming_the_new_spelling(tiny, tmp_path, name, old, value, new):
    expected = f"attackers.0.attack.params.{old} is now attackers.0.attack.params.{new}"
    path = write_scenario(tmp_path, _with_attack(tiny, name, {old: value}))
    assert one_line_exit_2(runner.invoke(app, ["validate", str(path)])).endswith(expected)
    path = write_scenario(tmp_path, _with_attack(tiny, name, {}))
    literal = tomli_w.dumps({"v": value})[4:].strip()
    res = runner.invoke(app, ["validate", str(path), "--set", f"attackers.0.attack.params.{old}={literal}"])
    assert one_line_exit_2(res).endswith(expected)


@pytest.mark.parametrize(("old", "value", "new"), [
    ("augment_factor", 5.0, "augment.factor"),
    ("wgan_steps", 2000, "critic.steps"),
    ("cgan_lr", 1e-3, "augment.cgan_lr"),
    ("refresh_every", 50, "refresh.every"),
])
def test_old_flat_depois_keys_are_one_line_naming_the_new_spelling(tiny, tmp_path, old, value, new):
    tiny["defense"] = {"name": "depois", "params": {"preset": "paper", old: value}}
    line = one_line_exit_2(runner.invoke(app, ["validate", str(write_scenario(tmp_path, tiny))]))
    assert line.endswith(f"defense.params.{old} is now defense.params.{new}")


def test_old_flat_keys_in_a_sweep_grid_are_refused_before_anything_runs(tiny, tmp_path):
    path = write_scenario(tmp_path, _with_attack(tiny, "fgsm", {}))
    out = tmp_path / "sweep"
    res = runner.invoke(app, ["sweep", str(path), "--grid", "attackers.0.attack.params.shadow_epochs=1,2",
                              "--seeds", "0", "--out", str(out)])
    assert "shadow_epochs is now attackers.0.attack.params.shadow.epochs" in one_line_exit_2(res)
    assert not out.exists()


# --- checks validate makes --------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "params", "needle"), [
    ("fgsm", {"knowledge": "posteriors", "shadow": {"points": 0}}, "params: shadow.points must be >= 1"),
    ("fgsm", {"knowledge": "posteriors", "shadow": {"points": -5}}, "params: shadow.points must be >= 1"),
    ("fgsm", {"shadow": {"pointz": 5}}, "params.shadow.pointz: unknown setting"),
    ("fgsm", {"shadow": {"epochs": "5"}}, "params.shadow.epochs: Input should be a valid integer"),
    ("fgsm", {"shadow": {"epochs": -1}}, "shadow.epochs"),
    ("fgsm", {"shadow": {"lr": 0.0}}, "shadow.lr"),
    ("pgd", {"shadow": {"critic_hidden": [0]}}, "shadow.critic_hidden must be layer widths >= 1"),
    ("adaptive", {"shadow": {"hidden": [-1]}}, "params: shadow.hidden must be layer widths >= 1, got [-1]"),
    ("adaptive", {"policy": {"discount": 0.0}}, "policy.discount must be in (0, 1]"),
    ("adaptive", {"probing": {"detector_steps": 0}}, "probing"),
    ("adaptive", {"shadow": 3}, "params.shadow: Input should be a valid dictionary"),
    ("depois", {"augment": {"factor": 0.5}}, "defense.params: augment.factor must be >= 1"),
    ("depois", {"critic": {"steps": -1}}, "defense.params.critic.steps"),
    ("depois", {"refresh": {"every": 0}}, "defense.params: refresh.every must be a positive number"),
])
def test_bad_table_values_are_one_line_at_validate(tiny, tmp_path, name, params, needle):
    if name == "depois":
        tiny["defense"] = {"name": name, "params": params}
        path = write_scenario(tmp_path, tiny)
    else:
        path = write_scenario(tmp_path, _with_attack(tiny, name, params))
    assert needle in one_line_exit_2(runner.invoke(app, ["validate", str(path)]))


def test_a_target_class_the_data_lacks_is_refused_at_validate(tiny, tmp_path):
    tiny["data"] = {"dataset": "river.synth:SEA", "params": {"size": 600}}
    tiny["learner"] = {"name": "mlp", "params": {"pretrain_epochs": 1}}
    ok = write_scenario(tmp_path, _with_attack(tiny, "label-flip", {"target": 1}))
    assert runner.invoke(app, ["validate", str(ok)]).exit_code == 0
    path = write_scenario(tmp_path, _with_attack(tiny, "label-flip", {"target": 5}))
    line = one_line_exit_2(runner.invoke(app, ["validate", str(path)]))
    assert "attackers.0.attack.params: target must be a class 0..1, got 5" in line and "has 2 classes" in line
    # the same check for every attack that names a class
    for name, params in (("fgsm", {"target": 3}), ("backdoor", {"target": 2}),
                         ("targeted", {"target": 0, "source_class": 4})):
        path = write_scenario(tmp_path, _with_attack(tiny, name, params))
        assert "must be" in one_line_exit_2(runner.invoke(app, ["validate", str(path)]))


def test_a_class_beyond_ten_is_fine_where_the_data_has_it():
    attack = build("attack", "label-flip", {"target": 15}, "a")[0]  # the constructor no longer assumes 10 classes
    attack.check_classes(20)
    with pytest.raises(ConfigError, match="0..9"):
        attack.check_classes(10)


def test_crafting_work_is_bounded_by_steps_times_poisons(tiny, tmp_path):
    # one million steps is a valid count (the naming convention's range) but not on every poison
    path = write_scenario(tmp_path, _with_attack(tiny, "pgd", {"steps": 1_000_000}))
    line = one_line_exit_2(runner.invoke(app, ["validate", str(path)]))
    assert "2,000,000 gradient steps per poison" in line and f"limit of {MAX_CRAFT_STEPS:,}" in line
    tiny["attackers"][0]["budget"] = 40  # the same steps on 40 poisons, with a single stage, is within the cap
    path = write_scenario(tmp_path, _with_attack(tiny, "pgd", {"steps": 1_000_000, "mode": "classifier"}))
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0
    del tiny["attackers"][0]["budget"]
    path = write_scenario(tmp_path, _with_attack(tiny, "adaptive", {"steps": 1_000_000}))
    assert "gradient steps per poison" in one_line_exit_2(runner.invoke(app, ["validate", str(path)]))


# --- committed results --------------------------------------------------------------------------------

RESULTS = Path(__file__).resolve().parent.parent / "experiments" / "results"


@pytest.mark.parametrize("sweep", sorted(p.parent.name for p in RESULTS.glob("*/sweep.json")))
def test_every_committed_sweep_cell_still_builds(sweep):
    # `sweep --resume` and experiments/leaderboard_merge.py read these settings again
    from streamsim.running.grid import grid_cells

    meta = json.loads((RESULTS / sweep / "sweep.json").read_text())
    for params in grid_cells(meta["grid"]):
        build_components(load_scenario(meta["scenario"], meta["overrides"], params))


def test_the_committed_leaderboard_grid_is_what_leaderboard_sh_sweeps():
    # the cell ids (hashes of the grid values) of a rerun must match the committed rows to merge into them
    from streamsim.running.sweep import split_values
    from streamsim.scenario.config import parse_value

    six = re.search(r"SIX_ATTACKS='(.*)'", (RESULTS.parent / "leaderboard.sh").read_text()).group(1)
    meta = json.loads((RESULTS / "leaderboard" / "sweep.json").read_text())
    assert meta["grid"]["attackers.0.attack"] == [parse_value(v) for v in split_values(six)]
