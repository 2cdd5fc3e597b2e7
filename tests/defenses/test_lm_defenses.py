"""The defenses that read users through a language model (all-MiniLM-L6-v2, offline): LLM4Dec's
detector, and LoRec's language-model term against its ablation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from defenses.base import DefenseInputs
from defenses.llm4dec import LLM4Dec
from redteam.data.dataset import LeaveOneOutSplit
from redteam.data.synthetic import make_synthetic


@pytest.fixture(scope="module")
def poisoned():
    """A 200-user shop with item titles, plus 10 random-item fake users appended."""
    dataset = make_synthetic(users=200, items=150, seed=4)
    train = list(LeaveOneOutSplit.of(dataset).train)
    rng = np.random.default_rng(0)
    fakes = [rng.choice(np.arange(1, 151), size=8, replace=False) for _ in range(10)]
    all_train = [*train, *fakes]
    inputs = DefenseInputs(train=all_train, n_items=150, seed=1, item_popularity=dataset.item_popularity(all_train),
                           item_text=tuple(dataset.item_text), domain="product", epochs=10)
    return inputs, np.arange(len(all_train)) >= len(train)


def test_llm4dec_ranks_injected_random_fakes_above_real_users(poisoned, one_thread):
    inputs, is_fake = poisoned
    detector = LLM4Dec(epochs=30)
    scores = detector.score_users(inputs)
    assert scores.shape == (len(inputs.train),) and np.all((0 <= scores) & (scores <= 1))
    assert roc_auc_score(is_fake, scores) > 0.6  # chance is .5; measured .752 (15 fakes among 315 users)
    assert detector.diagnostics["simulated_fakes"] > 0 and "language_model" in detector.diagnostics


SCENARIO = {
    "name": "lorec-lm",
    "seed": 2,
    "dataset": {"name": "synthetic", "users": 400, "items": 150},
    "victim": {"name": "sasrec", "epochs": 6, "patience": 6, "hidden": 16},
    "api": {"topk": 20, "budget": 500},
    "attacker": {"few_shot_ratio": 0.1},
    "poisoning": {"fake_share": 0.03, "defend_clean": False, "targets": 2},
    "attacks": [{"name": "poisoning.random"}],
    "defenses": [{"name": "lorec"}, {"name": "lorec", "label": "lorec-no-lm", "lm_term": False}],
    "eval": {"k": [10], "bootstrap": 50},
}


def test_lorecs_language_model_term_changes_the_calibrator(run_cli, tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SCENARIO, sort_keys=False))
    result = run_cli("run", tmp_path / "s.yaml", "--out", tmp_path / "out", "-q")
    assert result.code == 0, result.stderr
    [run_dir] = (tmp_path / "out").iterdir()
    rows = {r["defense"]: r for r in json.loads((run_dir / "results.json").read_text())["rows"] if r["attack"] != "none"}
    with_lm, without = rows["lorec"]["info"]["defense"][0], rows["lorec-no-lm"]["info"]["defense"][0]
    assert with_lm["identifier"]["lm_term"] is True and "language_model" in with_lm["fit"]["defense"]
    assert "language_model" not in without["fit"]["defense"]
    auc = rows["lorec"]["metrics"]["detector_auc"]["value"], rows["lorec-no-lm"]["metrics"]["detector_auc"]["value"]
    assert auc[0] != auc[1]  # the term changes the calibrator's output, so its ranking of the users
