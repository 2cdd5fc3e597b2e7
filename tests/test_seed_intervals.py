"""Intervals over seeds and users (redteam/metrics_seeds.py) and per-row bootstrap generators."""

from __future__ import annotations

import numpy as np
import pytest

from redteam.metrics import bootstrap_ci
from redteam.metrics_seeds import bootstrap_ci_two_level, t_interval_over_seeds
from redteam.results import RowTable


def test_t_interval_over_seed_means_by_hand():
    mean, low, high = t_interval_over_seeds([1.0, 2.0, 3.0])
    half = 4.302653 * 1.0 / np.sqrt(3)  # t(.975, 2 df) * sd / sqrt(n)
    assert mean == 2.0 and low == pytest.approx(2 - half, abs=1e-5) and high == pytest.approx(2 + half, abs=1e-5)
    assert np.isnan(t_interval_over_seeds([0.5])[1])


def test_identical_seeds_give_the_interval_over_users():
    rng = np.random.default_rng(0)
    values = (rng.random(4000) < 0.1).astype(float)
    _, low, high = bootstrap_ci_two_level([values] * 3, rng=np.random.default_rng(1), n_resamples=2000)
    _, u_low, u_high = bootstrap_ci(values, rng=np.random.default_rng(1), n_resamples=2000)
    assert low == pytest.approx(u_low, abs=0.003) and high == pytest.approx(u_high, abs=0.003)


def test_seeds_that_disagree_widen_the_interval_to_cover_them():
    rng = np.random.default_rng(0)
    seeds = [(rng.random(20000) < p).astype(float) for p in (0.076, 0.084, 0.097)]
    mean, low, high = bootstrap_ci_two_level(seeds, rng=np.random.default_rng(1), n_resamples=1000)
    _, u_low, u_high = bootstrap_ci(np.mean(seeds, axis=0), rng=np.random.default_rng(1), n_resamples=1000)
    assert mean == pytest.approx(np.mean([s.mean() for s in seeds]))
    assert high - low > 3 * (u_high - u_low)  # users alone: about +-.002; seeds add about +-.009
    assert low < 0.080 and high > 0.092


def test_grouped_units_resample_users_shared_across_targets_and_seeds():
    groups = np.repeat([7, 9], 500)
    clusters = np.tile(np.arange(500), 2)
    a = np.concatenate([np.ones(500), np.zeros(500)])  # target 7 always hit, target 9 never: macro mean .5
    mean, low, high = bootstrap_ci_two_level([a, a], [(groups, clusters)] * 2, rng=np.random.default_rng(0),
                                             n_resamples=200)
    assert mean == low == high == 0.5  # resampling users cannot move a per-target mean of constants


def test_adding_a_row_does_not_move_another_rows_interval():
    def table(extra: bool) -> dict:
        rows, rng = RowTable(), np.random.default_rng(0)
        row = rows.row("d", "v")
        for _ in range(2):
            row.add("hr@10", (rng.random(300) < 0.2).astype(float))
        if extra:
            rows.row("d", "v", attack="a").add("hr@10", rng.random(300))
        return rows.row("d", "v").aggregate(seed=3, n_resamples=300, confidence=0.95)["hr@10"]

    alone, beside = table(False), table(True)
    assert alone == beside and "seed_t_ci" in alone and alone["ci_users_low"] >= alone["ci_low"] - 1e-12
