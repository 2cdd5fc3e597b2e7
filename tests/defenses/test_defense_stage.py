"""Attacks x defenses through the CLI on tiny data: one row per (attack, defense), the defense
applied to the clean and the poisoned training sets, detector metrics against the injected
users, gates on the defended rows, and cached defended victims on a second run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

USERS, ITEMS, FAKE_SHARE = 400, 300, 0.05
N_FAKES = int(round(FAKE_SHARE * USERS))

SCENARIO = {
    "name": "tiny-defenses",
    "seed": 3,
    "dataset": {"name": "synthetic", "users": USERS, "items": ITEMS},
    "victim": {"name": "sasrec", "hidden": 32, "epochs": 6, "patience": 6},
    "api": {"topk": 20, "budget": 2000},
    "attacker": {"few_shot_ratio": 0.1},
    "poisoning": {"fake_share": FAKE_SHARE},
    "attacks": [{"name": "poisoning.random"}],
    "defenses": [{"name": "none"}, {"name": "isolation_forest", "flag_share": FAKE_SHARE},
                 {"name": "lorec", "label": "lorec-no-lm", "lm_term": False}, {"name": "apr"}],
    "eval": {"k": [10], "bootstrap": 200},
    "gates": [
        {"metric": "detector_auc", "attack": "poisoning.random", "defense": "isolation_forest", "min": 0.8},
        {"metric": "ndcg@10", "attack": "none", "defense": "apr", "max_drop_vs": "none", "max_drop": 0.9},
    ],
    "runtime": {"threads": 1},
}


def run(run_cli, tmp_path: Path, scenario: dict, out: str) -> tuple[int, dict]:
    path = tmp_path / f"{out}.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    result = run_cli("run", path, "--out", tmp_path / out, "-q")
    (run_dir,) = (tmp_path / out).iterdir()
    return result.code, json.loads((run_dir / "results.json").read_text())


def test_attacks_x_defenses_end_to_end(run_cli, tmp_path, fits_spy) -> None:
    code, results = run(run_cli, tmp_path, SCENARIO, "first")
    assert code == 0, results["gates"]
    keys = {(r["attack"], r["defense"]) for r in results["rows"]}
    defenses = ["none", "isolation_forest", "lorec-no-lm", "apr"]
    assert keys == {(a, d) for a in ("none", "poisoning.random") for d in defenses}
    for row in results["rows"]:
        assert {"hr@10", "ndcg@10", "target_hr@50", "train_seconds"} <= set(row["metrics"]), (row["attack"], row["defense"])

    check_detection(results)
    check_gates(results)

    # A failed defense gate fails the run; every victim, defended or not, comes from the cache.
    fits_spy.clear()
    strict = {**SCENARIO, "gates": [{"metric": "target_hr@50", "attack": "poisoning.random", "defense": "apr", "max": 0.0}]}
    code, again = run(run_cli, tmp_path, strict, "second")
    assert code == 1 and not again["gates"][0]["held"]
    assert fits_spy == []
    values = {(r["attack"], r["defense"]): r["metrics"]["target_hr@50"]["value"] for r in again["rows"]}
    assert values == {(r["attack"], r["defense"]): r["metrics"]["target_hr@50"]["value"] for r in results["rows"]}
    forest = next(r for r in again["rows"] if (r["attack"], r["defense"]) == ("poisoning.random", "isolation_forest"))
    assert forest["info"]["defense"][0]["cached"] is True and "detector_auc" in forest["metrics"]


def check_detection(results: dict) -> None:
    rows = {(r["attack"], r["defense"]): r for r in results["rows"]}
    forest = rows[("poisoning.random", "isolation_forest")]
    info = forest["info"]["defense"][0]
    # Flagging the top 5% of 420 training users: 21 users; precision/recall against the 20 fakes.
    assert info["detection"]["flagged"] == 21
    auc = forest["metrics"]["detector_auc"]["value"]
    assert auc > 0.8  # random fillers are easy for item-choice features (measured .9+ at this seed)
    precision, recall = forest["metrics"]["precision"]["value"], forest["metrics"]["recall"]["value"]
    assert recall == pytest.approx(precision * 21 / N_FAKES)
    # On the clean set it can only flag real users: its false-positive rate is the flag share.
    clean = rows[("none", "isolation_forest")]
    assert clean["metrics"]["fpr"]["value"] == pytest.approx(20 / 400)  # ceil(5% of 400)
    assert "detector_auc" not in clean["metrics"]
    # A defense that removes users changes the data the victim learns from; APR detects nobody.
    assert "detector_auc" not in rows[("poisoning.random", "apr")]["metrics"]
    lorec = rows[("poisoning.random", "lorec-no-lm")]["info"]["defense"][0]
    assert lorec["identifier"]["lm_term"] is False and "language_model" not in lorec["fit"]["defense"]
    assert lorec["fit"]["defense"]["schedule"]["warmup_epochs"] == 1  # round(0.2 * 6)
    # The defended row's effect is paired against the undefended poisoned victim.
    effect = info["vs_undefended"]["target_hr@50"]
    undefended = rows[("poisoning.random", "none")]["metrics"]["target_hr@50"]["value"]
    assert effect["value"] == pytest.approx(forest["metrics"]["target_hr@50"]["value"] - undefended)


def check_gates(results: dict) -> None:
    gates = {g["gate"]: g for g in results["gates"]}
    assert len(gates) == 2 and all(g["held"] for g in gates.values())
    drop = next(g for g in gates.values() if g["metric"] == "ndcg@10")
    assert (drop["attack"], drop["defense"]) == ("none", "apr") and drop["relative_drop"] is not None


@pytest.fixture
def fits_spy(monkeypatch):
    from victims.base import NeuralVictim

    calls: list[int] = []
    original = NeuralVictim.fit

    def spy(self, train, valid, **kwargs):
        calls.append(len(train))
        return original(self, train, valid, **kwargs)

    monkeypatch.setattr(NeuralVictim, "fit", spy)
    return calls


def test_unknown_defense_is_a_one_line_error(run_cli, tmp_path) -> None:
    bad = {**SCENARIO, "defenses": [{"name": "lorek"}]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = run_cli("run", path, "--out", tmp_path / "out", "-q")
    assert result.code == 2 and "lorec" in result.stderr and not (tmp_path / "out").exists()


def test_compare_flags_a_weakened_defense_as_a_significant_regression(run_cli, tmp_path) -> None:
    """The same scenario twice; the second run's detector removes almost nobody (flag_share 0.1%
    instead of the 5% fake share), so the random attack's target exposure under it rises."""
    def with_detector(flag_share: float) -> dict:
        return {**SCENARIO, "defenses": [{"name": "none"},
                                         {"name": "isolation_forest", "label": "detector", "flag_share": flag_share}],
                "gates": []}

    run(run_cli, tmp_path, with_detector(FAKE_SHARE), "strong")
    run(run_cli, tmp_path, with_detector(0.001), "weak")
    (strong,), (weak,) = (tmp_path / "strong").iterdir(), (tmp_path / "weak").iterdir()
    result = run_cli("compare", strong, weak, "--bootstrap", "500", "--fail-on-regression", "target_hr@50", "--json")
    assert result.code == 1, result
    doc = json.loads(result.stdout)
    (regression,) = [d for d in doc["regressions"] if d["defense"] == "detector"]
    assert regression["attack"] == "poisoning.random" and regression["metric"] == "target_hr@50"
    assert regression["test"] == "paired" and regression["low"] > 0 and regression["change"] == "worse"


def test_a_defense_can_cover_fewer_attacker_seeds(run_cli, tmp_path, fits_spy) -> None:
    """``attacker_seeds`` on a defense: trained on those seeds' poisoned sets only (and once on the
    clean set); the undefended rows cover every attacker seed."""
    scenario = {**SCENARIO, "attacker": {"few_shot_ratio": 0.1, "seeds": [3, 4]}, "gates": [],
                "defenses": [{"name": "none"}, {"name": "isolation_forest", "flag_share": FAKE_SHARE, "attacker_seeds": [4]}]}
    code, results = run(run_cli, tmp_path, scenario, "subset")
    assert code == 0
    rows = {(r["attack"], r["defense"]): r for r in results["rows"]}
    assert [d["attack_seed"] for d in rows[("poisoning.random", "isolation_forest")]["info"]["defense"]] == [4]
    assert [p["attack_seed"] for p in rows[("poisoning.random", "none")]["info"]["poisoning"]] == [3, 4]
    # paired with seed 4's undefended victim only (the second of its two repetitions)
    defended, undefended = rows[("poisoning.random", "isolation_forest")], rows[("poisoning.random", "none")]
    change = defended["paired"]["metrics"]["target_hr@50"]
    assert change["repetitions"] == 1
    assert change["diff"] == pytest.approx(defended["metrics"]["target_hr@50"]["value"]
                                           - undefended["metrics"]["target_hr@50"]["per_seed"][1])
    # clean victim, two poisoned victims, the forest on the clean set and on seed 4's poisoned set
    assert len(fits_spy) == 5


def test_defend_clean_false_skips_the_clean_defended_retrain(run_cli, tmp_path, fits_spy) -> None:
    """``poisoning.defend_clean: false``: no (none, defense) row and one fit fewer per defense."""
    scenario = {**SCENARIO, "gates": [], "poisoning": {**SCENARIO["poisoning"], "defend_clean": False},
                "defenses": [{"name": "none"}, {"name": "isolation_forest", "flag_share": FAKE_SHARE}]}
    code, results = run(run_cli, tmp_path, scenario, "no-clean")
    assert code == 0
    pairs = {(r["attack"], r["defense"]) for r in results["rows"]}
    assert ("poisoning.random", "isolation_forest") in pairs
    assert ("none", "isolation_forest") not in pairs
    assert len(fits_spy) == 3  # clean victim, poisoned victim, the forest on the poisoned set
