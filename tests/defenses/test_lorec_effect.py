"""LoRec end to end on the embedded shop (about a minute on 2 cores): its calibrator, trained only on the defender's own
simulated random fakes, must rank the attacker's injected random fakes above the real users, and
down-weighting them must lower the targets' exposure against the undefended poisoned victim."""

from __future__ import annotations

import json

import pytest
import yaml

SCENARIO = {
    "name": "lorec-effect",
    "seed": 7,
    "dataset": {"name": "synthetic", "users": 2000, "items": 1000},
    "victim": {"name": "sasrec", "epochs": 20, "patience": 20},
    "api": {"topk": 20, "budget": 1000},
    "attacker": {"few_shot_ratio": 0.1},
    "poisoning": {"fake_share": 0.01, "defend_clean": False},
    "attacks": [{"name": "poisoning.random"}],
    "defenses": [{"name": "none"}, {"name": "lorec", "label": "lorec-no-lm", "lm_term": False}],
    "eval": {"k": [10], "bootstrap": 200},
    "runtime": {"threads": 2},
}


@pytest.mark.slow
def test_pooled_calibrator_flags_unseen_injected_fakes_and_lowers_exposure(run_cli, tmp_path) -> None:
    path = tmp_path / "lorec.yaml"
    path.write_text(yaml.safe_dump(SCENARIO, sort_keys=False))
    result = run_cli("run", path, "--out", tmp_path / "out", "-q")
    assert result.code == 0, result.stderr
    (run_dir,) = (tmp_path / "out").iterdir()
    rows = {(r["attack"], r["defense"]): r["metrics"] for r in json.loads((run_dir / "results.json").read_text())["rows"]}
    defended, undefended = rows[("poisoning.random", "lorec-no-lm")], rows[("poisoning.random", "none")]
    # Measured at this seed: AUC .938, target HR@50 .0008 defended vs .0106 undefended.
    assert defended["detector_auc"]["value"] > 0.8  # chance is .5
    assert defended["target_hr@50"]["ci_high"] < undefended["target_hr@50"]["value"]
