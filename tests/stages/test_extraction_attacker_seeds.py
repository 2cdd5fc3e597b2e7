"""A serving defense limited by ``attacker_seeds`` steals on those attacker seeds only, and its row
is paired with the same seeds of the undefended row."""

from __future__ import annotations

import pytest
import yaml
from results_json import results_of

SCENARIO = {
    "name": "fewer-seeds", "seed": 2,
    "dataset": {"name": "synthetic", "users": 300, "items": 120},
    "victim": {"name": "popularity"},
    "api": {"topk": 10, "budget": 300},
    "attacker": {"seeds": [0, 1]},
    "attacks": [{"name": "extraction.random", "distill_epochs": 2, "distill_min_epochs": 0, "curve": [],
                 "surrogate": "sasrec", "surrogate_params": {"hidden": 16}}],
    "defenses": [{"name": "none"}, {"name": "rank_noise", "attacker_seeds": [1]}],
    "eval": {"k": [10], "bootstrap": 0},
    "runtime": {"threads": 1},
}


def rows_of_run(run_cli, tmp_path, scenario: dict) -> dict[tuple[str, str], dict]:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = run_cli("run", path, "--out", tmp_path / "out")
    assert result.code == 0, result.stderr
    return {(r["attack"], r["defense"]): r for r in results_of(tmp_path / "out")["rows"]}


def test_a_serving_defense_on_one_attacker_seed_pairs_with_that_seed(run_cli, tmp_path) -> None:
    rows = rows_of_run(run_cli, tmp_path, SCENARIO)
    undefended, defended = rows[("extraction.random", "none")], rows[("extraction.random", "rank_noise")]
    assert [e["attack_seed"] for e in undefended["info"]["extraction"]] == [0, 1]
    assert [e["attack_seed"] for e in defended["info"]["extraction"]] == [1]
    change = defended["paired"]["metrics"]["agreement@10"]
    assert change["repetitions"] == 1
    assert change["diff"] == pytest.approx(defended["metrics"]["agreement@10"]["value"]
                                           - undefended["metrics"]["agreement@10"]["per_seed"][1])


def test_with_run_seeds_as_attacker_seeds_the_clean_cost_pairs_with_the_same_run_seed(run_cli, tmp_path) -> None:
    """Without ``attacker.seeds`` each run seed is its own attacker seed: a defense limited to run
    seed 4 serves real users for that victim only, and its clean cost is paired with it."""
    scenario = {**SCENARIO, "seeds": [3, 4], "attacker": {},
                "defenses": [{"name": "none"}, {"name": "rank_noise", "attacker_seeds": [4]}]}
    rows = rows_of_run(run_cli, tmp_path, scenario)
    clean, served = rows[("none", "none")], rows[("none", "rank_noise")]
    change = served["paired"]["metrics"]["ndcg@10"]
    assert change["repetitions"] == 1
    assert change["diff"] == pytest.approx(served["metrics"]["ndcg@10"]["value"] - clean["metrics"]["ndcg@10"]["per_seed"][1])
