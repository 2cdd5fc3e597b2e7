"""The per-key quota: its declared benign cost by hand, the gate, and runs in which the attacker
plans within the quota (in process and over HTTP alike) and sybil keys buy the budget back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from defenses.key_quota import KeyQuota, QuotaGate, quota_cost, refused_share
from redteam.errors import BudgetExceeded
from redteam.serving.local import LocalRecommender


def test_declared_cost_by_hand() -> None:
    lengths = np.array([3, 10, 5])
    assert quota_cost(lengths, 4, "app") == {"benign_app_keys_limited": pytest.approx(2 / 3), "benign_app_key_longest": 10}
    assert refused_share(lengths, 4) == pytest.approx((0 + 6 + 1) / 18)
    assert refused_share(lengths, 10) == 0.0


def test_allowance_and_calibration() -> None:
    assert KeyQuota(quota=300).attacker_allowance(2000) == 300
    assert KeyQuota(quota=300, attacker_keys=4, periods=2).attacker_allowance(2000) == 2000
    assert KeyQuota(quota=300, attacker_keys=4).attacker_allowance(None) == 1200
    histories = [np.arange(1, n + 1) for n in (2, 3, 4, 5, 6)]
    quota = KeyQuota(quota=4, app_keys=4, users_per_app_key=2, user_keys=5)
    summary = quota.calibrate(None, histories, np.ones(8), k=5, rng=np.random.default_rng(0))
    assert summary["benign_user_keys_limited"] == pytest.approx(2 / 5)  # the sessions of 5 and 6 queries
    assert summary["benign_app_keys_limited"] == 1.0  # two users' sessions: at least 2 + 3 queries
    assert 0 < summary["benign_queries_refused"] < 1


def test_the_gate_refuses_past_its_allowance() -> None:
    import torch

    gate = QuotaGate(LocalRecommender(lambda hs: torch.arange(13.0).repeat(len(hs), 1), n_items=12), allowance=3)
    assert gate.recommend([np.array([1, 2]), np.array([3])], 4).items.shape == (2, 4)
    with pytest.raises(BudgetExceeded, match="quota 3"):
        gate.recommend([np.array([1]), np.array([2])], 4)
    assert gate.recommend([np.array([5])], 4).items.shape == (1, 4)


def _scenario(transport: str, defenses: list[dict]) -> dict:
    return {
        "name": f"quota-{transport}", "seed": 5, "dataset": {"name": "synthetic", "users": 600, "items": 200},
        "victim": {"name": "sasrec", "epochs": 3, "hidden": 16, "max_len": 20},
        "api": {"topk": 20, "budget": 2000, "transport": transport}, "attacker": {"few_shot_ratio": 0.1},
        "attacks": [{"name": "extraction.random", "distill_epochs": 2, "curve": [], "length": 20}],
        "defenses": defenses, "eval": {"k": [10], "bootstrap": 0}, "runtime": {"threads": 1},
    }


def _rows(run_cli, tmp_path, scenario: dict) -> dict[tuple[str, str], dict]:
    path = tmp_path / f"{scenario['name']}.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = run_cli("run", path, "-q", "--out", tmp_path / "runs")
    assert result.code == 0, result.stderr
    doc = json.loads(next((tmp_path / "runs").glob(f"{scenario['name']}-*/results.json")).read_text())
    return {(r["attack"], r["defense"]): r for r in doc["rows"]}


def test_the_quota_caps_the_thief_and_sybil_keys_buy_it_back(run_cli, tmp_path) -> None:
    quota = {"name": "key_quota", "quota": 200, "app_keys": 20, "users_per_app_key": 40, "user_keys": 50}
    rows = _rows(run_cli, tmp_path, _scenario("inprocess", [
        {"name": "none"}, quota, {**quota, "label": "sybil", "attacker_keys": 10}]))
    attack = "extraction.random"

    def value(defense: str, metric: str) -> float:
        return rows[(attack, defense)]["metrics"][metric]["value"]

    assert value("key_quota", "queries") == 200 and value("sybil", "queries") == 2000
    assert value("none", "queries") == 2000
    assert value("key_quota", "agreement@10") < value("none", "agreement@10") - 0.05
    assert value("sybil", "agreement@10") == pytest.approx(value("none", "agreement@10"), abs=0.03)
    clean = rows[("none", "key_quota")]
    assert clean["paired"]["metrics"]["ndcg@10"]["diff"] == 0.0  # answered queries are answered unchanged
    assert clean["metrics"]["benign_app_keys_limited"]["value"] == 1.0  # 40 users' sessions pass 200 queries
    assert 0 < clean["metrics"]["benign_queries_refused"]["value"] < 1
    assert clean["metrics"]["benign_user_keys_limited"]["value"] == 0.0


def test_the_quota_holds_over_http(run_cli, tmp_path) -> None:
    quota = {"name": "key_quota", "quota": 200, "app_keys": 4, "users_per_app_key": 10, "user_keys": 10}
    rows = _rows(run_cli, tmp_path, _scenario("http", [{"name": "none"}, quota]))
    row = rows[("extraction.random", "key_quota")]
    assert row["metrics"]["queries"]["value"] == 200
    assert row["info"]["extraction"][0]["transport"] == "http"
