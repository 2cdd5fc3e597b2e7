"""The query-stream detector: stream features by hand, benign replay, and a tiny run in which it
tells extraction streams from replayed users."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from defenses.benign_traffic import benign_keys
from defenses.query_stream import QueryStreamParams, auc
from defenses.stream_features import StreamFeatures, popularity_ranks


def test_stream_features_by_hand() -> None:
    ranks = popularity_ranks(np.array([0, 5, 1, 3, 9, 0]))  # ascending counts: items 5, 2, 3, 1, 4
    assert ranks.tolist() == [0.0, 0.75, 0.25, 0.5, 1.0, 0.0]
    s = StreamFeatures(ranks)
    s.observe(np.array([1]), np.array([2, 3]))        # a new session
    s.observe(np.array([1, 2]), np.array([4, 5]))     # extends [1] by 2, which [1]'s answer held
    s.observe(np.array([1, 2, 3]), np.array([5, 4]))  # extends [1, 2] by 3, not in its answer
    s.observe(np.array([4, 4]), np.array([1, 2]))     # [4] was never asked
    np.testing.assert_allclose(s.vector(), [1 / 4, 2 / 4, (0.75 + 0.25 + 0.5 + 1.0) / 4, (1 + 2 + 3 + 2) / 4])
    np.testing.assert_allclose(s.vector(2), [1 / 2, 1 / 2, 0.5, 1.5])
    np.testing.assert_allclose(s.windows(2), [[0.5, 0.5, 0.5, 1.5], [0.0, 0.5, 0.75, 2.5]])


def test_auc_and_benign_sessions() -> None:
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 3.0])) == pytest.approx(0.875)
    histories = [np.array([1, 2, 3]), np.array([4, 5]), np.array([6])]
    p = QueryStreamParams(app_keys=4, users_per_app_key=2, user_keys=3)
    keys = benign_keys(histories, p, np.random.default_rng(0))
    assert len(keys) == 7
    for stream in keys[:4]:  # an app key: two users' sessions, each asked as it grows, interleaved
        assert len(stream) in (3, 4, 5) and all(len(h) >= 1 for h in stream)
    assert sorted(len(k) for k in keys[4:]) == [1, 2, 3]
    assert [h.tolist() for h in sorted(keys[4:], key=len)[-1]] == [[1], [1, 2], [1, 2, 3]]


def test_the_detector_tells_extraction_streams_from_replayed_users(run_cli, tmp_path) -> None:
    scenario = {
        "name": "stream", "seed": 5, "dataset": {"name": "synthetic", "users": 600, "items": 200},
        "victim": {"name": "sasrec", "epochs": 3, "hidden": 16, "max_len": 20},
        "api": {"topk": 20, "budget": 2000}, "attacker": {"few_shot_ratio": 0.1},
        "attacks": [{"name": "extraction.autoregressive", "distill_epochs": 1, "curve": []},
                    {"name": "extraction.random", "distill_epochs": 1, "curve": [], "length": 20}],
        "defenses": [{"name": "none"}, {"name": "query_stream", "checkpoints": [25, 50, 100, 200],
                                         "users_per_app_key": 40, "app_keys": 30, "user_keys": 100},
                     {"name": "query_stream", "label": "blocking", "action": "block", "checkpoints": [25, 50, 100, 200],
                      "users_per_app_key": 40, "app_keys": 30, "user_keys": 100}],
        "eval": {"k": [10], "bootstrap": 0}, "runtime": {"threads": 1},
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = run_cli("run", path, "-q", "--out", tmp_path / "runs")
    assert result.code == 0, result.stderr
    rows = json.loads(next((tmp_path / "runs").glob("stream-*/results.json")).read_text())["rows"]
    watched = {r["attack"]: r for r in rows if r["defense"] == "query_stream"}
    clean = watched["none"]
    assert clean["info"]["serving_calibration"]["25"]["benign_keys"] >= 30
    for attack in ("extraction.autoregressive", "extraction.random"):
        report = watched[attack]["info"]["stream_detector"][0]
        print(attack, report["features"], [(p["queries"], round(p["auc"], 3), round(p["benign_fpr"], 3)) for p in report["points"]])
        assert watched[attack]["metrics"]["detector_auc"]["value"] >= 0.9
        assert report["flagged_after"] is not None and report["flagged_after"] <= 200
        assert report["keys_to_evade"] == -(-2000 // 24)  # keys of 24 queries never reach the first checkpoint
    blocked = {r["attack"]: r for r in rows if r["defense"] == "blocking"}
    for attack in ("extraction.autoregressive", "extraction.random"):
        flagged = watched[attack]["info"]["stream_detector"][0]["flagged_after"]
        # blocked at the same checkpoint as flagged (same stream), left with only those answers
        assert blocked[attack]["info"]["stream_detector"][0]["flagged_after"] == flagged
        assert blocked[attack]["metrics"]["queries"]["value"] == flagged
        extraction = blocked[attack]["info"]["extraction"][0]
        assert extraction["blocked_after"] == flagged and extraction["queries_asked"] == 2000
        assert blocked[attack]["metrics"]["agreement@10"]["value"] < watched[attack]["metrics"]["agreement@10"]["value"]
    undefended = {r["attack"]: r for r in rows if r["defense"] == "none"}
    assert watched["extraction.random"]["metrics"]["agreement@10"] == undefended["extraction.random"]["metrics"]["agreement@10"]
