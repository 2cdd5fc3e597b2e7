"""The serving chain: a victim that only returns top-k lists is still evaluated (HR/NDCG@K up to its
list length, Agreement@K), and a serving defense is one class that the extraction stage applies
between the victim and the attacker's metered endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from defenses.base import ServingDefense
from redteam.evaluation import ranking_values, recommender_ranking_values
from redteam.params import Params
from redteam.registry import REGISTRY
from redteam.serving.local import LocalRecommender
from redteam.serving.middleware import Middleware
from redteam.serving.port import TopK, full_scorer

N = 6
SCORES = torch.tensor([[-np.inf, 6, 5, 4, 3, 2, 1], [-np.inf, 1, 2, 3, 4, 5, 6]], dtype=torch.float32)


def score_fn(histories):
    return SCORES[[len(h) % 2 for h in histories]].clone()


class TopOnly(Middleware):
    """Answers like the inner recommender but offers no full scorer (a remote service)."""


def test_top_k_only_victim_gets_hand_computed_hr_and_ndcg() -> None:
    local = LocalRecommender(score_fn, n_items=N)
    remote = TopOnly(local)
    assert full_scorer(local) is score_fn and full_scorer(remote) is None
    histories = [np.array([1, 2]), np.array([3]), np.array([2, 4])]
    targets = np.array([3, 4, 6])  # ranks 2, 2 and 5 (0-based) in the answered lists
    got = recommender_ranking_values(remote, histories, targets, ks=[3])
    assert got["hr@3"].tolist() == [1.0, 1.0, 0.0]
    assert got["ndcg@3"] == pytest.approx([1 / np.log2(4), 1 / np.log2(4), 0.0])
    full = ranking_values(score_fn, histories, targets, ks=[3])
    assert all(np.allclose(got[m], full[m]) for m in full)  # no ties: the same numbers as a full ranking
    excluded = recommender_ranking_values(remote, histories, targets, ks=[3], exclude_history=True)
    # row 0 drops 1, 2 (target first); row 1's 3 ranks below its target; row 2 drops 2, 4 (6 moves to rank 3)
    assert excluded["hr@3"].tolist() == [1.0, 1.0, 0.0] and excluded["mrr@3"] == pytest.approx([1.0, 1 / 3, 0.0])


def test_top_k_only_victim_refuses_k_past_its_list_length() -> None:
    from redteam.errors import ConfigError

    class Short(TopOnly):
        max_k = 2

        def recommend(self, histories, k):
            return TopK(np.tile(np.arange(1, k + 1), (len(histories), 1)))

    short = Short(LocalRecommender(score_fn, n_items=N))
    short.max_k = 2
    with pytest.raises(ConfigError, match="eval.k: 3 is longer than the lists this victim returns"):
        recommender_ranking_values(short, [np.array([1])], np.array([2]), ks=[3])


class ReverseParams(Params):
    keep: int = 1


class ReverseBelowTop(ServingDefense):
    """Test serving defense: keeps the first ``keep`` ids and reverses the rest of each list."""

    alias = "test.reverse_below_top"

    Params = ReverseParams

    def wrap(self, inner, rng):
        keep = self.params.keep

        class Reversed(Middleware):
            def recommend(self, histories, k):
                items = self.inner.recommend(histories, k).items.copy()
                items[:, keep:] = items[:, keep:][:, ::-1]
                return TopK(items)

        return Reversed(inner)


def test_a_serving_defense_sits_between_the_victim_and_the_attacker(monkeypatch, run_cli, tmp_path: Path) -> None:
    monkeypatch.setitem(REGISTRY["defenses"], "test.reverse_below_top", f"{__name__}:ReverseBelowTop")
    scenario = {"name": "serving", "seed": 5, "dataset": {"name": "synthetic", "users": 150, "items": 60},
                "victim": {"name": "sasrec", "hidden": 16, "epochs": 2},
                "api": {"topk": 20, "budget": 300}, "attacks": [{"name": "extraction.random", "curve": [],
                                                                 "distill_epochs": 2}],
                "defenses": [{"name": "none"}, {"name": "test.reverse_below_top", "label": "reversed"}],
                "eval": {"k": [10], "bootstrap": 0}, "runtime": {"threads": 1}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = run_cli("run", path, "--out", tmp_path / "runs", "-q")
    assert result.code == 0, result
    [run_dir] = (tmp_path / "runs").iterdir()
    rows = {(r["attack"], r["defense"]): r for r in json.loads((run_dir / "results.json").read_text())["rows"]}
    assert set(rows) == {("none", "none"), ("none", "reversed"), ("extraction.random", "none"),
                         ("extraction.random", "reversed")}
    # Real users are served the reversed lists: their HR@10 is read from the top-20 answers.
    assert rows[("none", "reversed")]["metrics"]["ndcg@10"]["value"] != rows[("none", "none")]["metrics"]["ndcg@10"]["value"]
    assert rows[("none", "reversed")]["info"]["serving_defense"][0]["identifier"]["defense"] == "test.reverse_below_top"
    for defense in ("none", "reversed"):
        row = rows[("extraction.random", defense)]
        assert row["metrics"]["queries"]["value"] == 300 and 0 <= row["metrics"]["agreement@10"]["value"] <= 1
