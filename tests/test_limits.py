"""Absurd sizes are refused when a scenario is validated, naming the key and the limit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from redteam import limits
from redteam.errors import ConfigError

SCENARIO = {
    "name": "tiny",
    "dataset": {"name": "synthetic", "users": 60, "items": 40},
    "victims": [{"name": "popularity"}, {"name": "sasrec", "epochs": 1, "hidden": 8}],
    "runtime": {"threads": 1},
}
HUGE = 1_000_000_000_000


def error_of(overrides: list[str], raw: dict | None = None) -> str:
    from redteam.scenario import build_scenario

    with pytest.raises(ConfigError) as info:
        build_scenario(raw or SCENARIO, overrides, source="x.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("override", "key", "limit"),
    [
        (f"dataset.users={HUGE}", "dataset.users", "MAX_USERS"),
        (f"dataset.items={HUGE}", "dataset.items", "MAX_ITEMS"),
        (f"api.budget={HUGE}", "api.budget", "MAX_BUDGET"),
        (f"api.topk={HUGE}", "api.topk", "MAX_ITEMS"),
        (f"eval.max_users={HUGE}", "eval.max_users", "MAX_USERS"),
        (f"eval.bootstrap={HUGE}", "eval.bootstrap", "MAX_BOOTSTRAP"),
        (f"sts.trials={HUGE}", "sts.trials", "MAX_TRIALS"),
        (f"poisoning.finetune_epochs={HUGE}", "poisoning.finetune_epochs", "MAX_EPOCHS"),
        (f"victims.1.epochs={HUGE}", "victims[1]: epochs", "MAX_EPOCHS"),
        (f"victims.1.hidden={HUGE}", "victims[1]: hidden", "MAX_HIDDEN"),
        (f"victims.1.max_len={HUGE}", "victims[1]: max_len", "MAX_SEQ_LEN"),
    ],
)
def test_sizes_over_the_limit_name_key_and_limit(override, key, limit) -> None:
    value = getattr(limits, limit)
    assert f"{key}: {HUGE} is over the limit of {value} (redteam.limits.{limit})" in error_of([override])


@pytest.mark.parametrize(
    ("attack", "param", "limit"),
    [
        ("extraction.random", "distill_epochs", "MAX_EPOCHS"),
        ("extraction.fewshot", "sampler_epochs", "MAX_EPOCHS"),
    ],
)
def test_attack_epochs_over_the_limit(attack, param, limit) -> None:
    raw = {**SCENARIO, "attacks": [{"name": attack, param: HUGE}]}
    value = getattr(limits, limit)
    assert f"attacks[0]: {param}: {HUGE} is over the limit of {value}" in error_of([], raw)


def test_sts_steps_over_the_limit() -> None:
    from attacks.sts.search import GCGParams

    with pytest.raises(ValueError, match=f"{HUGE} is over the limit of {limits.MAX_STEPS}"):
        GCGParams(steps=HUGE)


def test_limits_themselves_are_allowed() -> None:
    from redteam.scenario import build_scenario

    sc = build_scenario(SCENARIO, [f"api.budget={limits.MAX_BUDGET}", f"eval.bootstrap={limits.MAX_BOOTSTRAP}",
                                   f"victims.1.epochs={limits.MAX_EPOCHS}"])
    assert sc.api.budget == limits.MAX_BUDGET and sc.api.topk == 100 and sc.eval.bootstrap == limits.MAX_BOOTSTRAP


def test_make_synthetic_refuses_huge_sizes_directly() -> None:
    from redteam.data import make_synthetic

    with pytest.raises(ConfigError, match=f"users: {HUGE} is over the limit of {limits.MAX_USERS}"):
        make_synthetic(users=HUGE, items=40)


def test_cli_exits_2_without_allocating(run_cli, tmp_path: Path) -> None:
    raw = {**SCENARIO, "dataset": {"name": "synthetic", "users": HUGE}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = run_cli("run", path, "--out", tmp_path / "runs", "-q")
    assert result.code == 2, result
    assert result.stderr == (f"error: {path}: dataset.users: {HUGE} is over the limit of {limits.MAX_USERS} "
                             "(redteam.limits.MAX_USERS)\n")
    assert not (tmp_path / "runs").exists()


def test_compare_bootstrap_option_is_bounded(run_cli, tmp_path: Path) -> None:
    result = run_cli("compare", tmp_path, tmp_path, "--bootstrap", str(HUGE))
    assert result.code == 2 and "--bootstrap" in result.stderr, result
