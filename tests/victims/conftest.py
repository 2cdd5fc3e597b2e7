"""Shared by the victim tests: one torch thread per module, the 300-item shop quality check, and
a small steal scenario run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread_per_module():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shop_quality():
    """``quality(victim) -> (victim NDCG@10, popularity NDCG@10, fit report)`` on the 1,000-user,
    300-item shop (seed 0), full ranking over the test users."""
    from redteam.data import LeaveOneOutSplit, make_synthetic
    from redteam.evaluation import ranking_values
    from victims.popularity import Popularity

    split = LeaveOneOutSplit.of(make_synthetic(users=1000, items=300, seed=0))
    valid = (split.valid_histories(), split.valid_targets())
    tests = (split.test_histories(), split.test_targets())
    popularity = Popularity()
    popularity.fit(split.train, valid, n_items=300, seed=0)
    pop = ranking_values(popularity.score, *tests, ks=[10])["ndcg@10"].mean()

    def quality(victim):
        report = victim.fit(split.train, valid, n_items=300, seed=0)
        return ranking_values(victim.score, *tests, ks=[10])["ndcg@10"].mean(), pop, report

    return quality


STEAL = """
name: steal
seed: 3
dataset: {name: synthetic, users: 300, items: 120}
victim: {name: VICTIM, epochs: 3, hidden: 16}
api: {topk: 20, budget: 600}
attacker: {few_shot_ratio: 0.1, knows_architecture: true, item_text: ITEM_TEXT}
attacks: [{name: extraction.fewshot, distill_epochs: 2, curve: []}]
eval: {k: [10], bootstrap: 50}
"""


@pytest.fixture
def run_steal(run_cli, tmp_path: Path):
    """``run_steal(victim, item_text=True, out="runs", extra="") -> (exit code, results or None, CliResult)``:
    a few-shot steal of a small ``victim`` with a same-architecture surrogate, on the 300-user shop
    (``extra``: more scenario YAML)."""

    def run(victim: str, *, item_text: bool = True, out: str = "runs", extra: str = ""):
        path = tmp_path / f"{victim}-{out}.yaml"
        path.write_text(STEAL.replace("VICTIM", victim).replace("ITEM_TEXT", str(item_text).lower()) + extra)
        result = run_cli("run", path, "--out", tmp_path / out, "-q")
        if result.code != 0:
            return result.code, None, result
        [run_dir] = (tmp_path / out).iterdir()
        return 0, json.loads((run_dir / "results.json").read_text()), result

    return run
