"""Hand-computed checks of redteam.metrics (full ranking, pessimistic ties, bootstrap)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from redteam import metrics_bootstrap
from redteam.metrics import (
    MetricValue,
    agreement_at_k,
    bootstrap_ci,
    hit_rate,
    mean_over_targets,
    mrr,
    ndcg,
    paired_bootstrap_diff,
    rank_in_batches,
    ranking_metrics,
    summarize,
    target_exposure,
    target_ranks,
    topk_items,
)

# N = 5 items (ids 1..5), column 0 = padding.
#            pad    1    2    3    4    5
ROW0 = [9.0, 0.1, 0.5, 0.5, 0.9, 0.2]  # padding has the LARGEST score: must be ignored
ROW1 = [0.0, 0.3, 0.8, 0.1, 0.4, 0.6]
TARGETS = np.array([3, 5])
LOG2_3 = math.log2(3.0)


def two_rows() -> torch.Tensor:
    return torch.tensor([ROW0, ROW1], dtype=torch.float32)


# ----------------------------------------------------------------------------- ranks


def test_ranks_hand_computed_with_pessimistic_tie_and_padding_ignored():
    # Row 0, target 3 (score 0.5): others with score >= 0.5 are item 2 (0.5, a TIE -> counts
    # against the target) and item 4 (0.9); padding (9.0) does not count -> rank 2.
    # Row 1, target 5 (score 0.6): only item 2 (0.8) is >= 0.6 -> rank 1.
    ranks = target_ranks(two_rows(), TARGETS)
    assert ranks.dtype == np.int64
    np.testing.assert_array_equal(ranks, [2, 1])


def test_ranks_accept_torch_targets_and_do_not_mutate_input():
    scores = two_rows()
    before = scores.clone()
    ranks = target_ranks(scores, torch.tensor([3, 5]), exclude=[np.array([4]), np.array([2])])
    np.testing.assert_array_equal(ranks, [1, 0])
    assert torch.equal(scores, before)


def test_exclusion_of_history_changes_rank_but_never_removes_target():
    # Row 0 history {4}: item 4 leaves the ranking -> only the tie with item 2 remains -> 1.
    # Row 1 history {2}: item 2 leaves -> nothing is >= 0.6 -> 0.
    ranks = target_ranks(two_rows(), TARGETS, exclude=[np.array([4]), np.array([2])])
    np.testing.assert_array_equal(ranks, [1, 0])
    # The row's own target in its exclusion list is ignored (3 in row 0, 5 in row 1);
    # padding id 0 in a history is ignored too.
    ranks = target_ranks(
        two_rows(), TARGETS, exclude=[np.array([0, 3, 4]), np.array([5, 2, 0])]
    )
    np.testing.assert_array_equal(ranks, [1, 0])
    # Empty exclusion lists change nothing.
    ranks = target_ranks(two_rows(), TARGETS, exclude=[np.array([], dtype=np.int64)] * 2)
    np.testing.assert_array_equal(ranks, [2, 1])


def test_constant_scorer_gets_the_worst_rank():
    # All 5 items tie: the 4 other items all count as ahead -> rank 4 = N - 1 for any target.
    scores = torch.ones(3, 6)
    np.testing.assert_array_equal(target_ranks(scores, np.array([1, 3, 5])), [4, 4, 4])
    # With 2 other items excluded: 4 - 2 = 2.
    ranks = target_ranks(scores[:1], np.array([1]), exclude=[np.array([2, 3])])
    np.testing.assert_array_equal(ranks, [2])


def test_nan_scores_count_against_the_target():
    # Row: item 1 = NaN, target 2 = 0.5, items 3..5 below -> NaN item counts as ahead -> 1.
    # Row: target 1 = NaN -> all 4 other items are ahead -> 4.
    nan = float("nan")
    scores = torch.tensor([[0.0, nan, 0.5, 0.1, 0.2, 0.3], [0.0, nan, 0.5, 0.1, 0.2, 0.3]])
    np.testing.assert_array_equal(target_ranks(scores, np.array([2, 1])), [1, 4])


def test_ranks_reject_bad_targets_and_exclusions():
    with pytest.raises(ValueError):
        target_ranks(two_rows(), np.array([0, 5]))  # padding is not a target
    with pytest.raises(ValueError):
        target_ranks(two_rows(), np.array([6, 5]))  # outside 1..N
    with pytest.raises(ValueError):
        target_ranks(two_rows(), np.array([3]))  # one target per row
    with pytest.raises(ValueError):
        target_ranks(two_rows(), TARGETS, exclude=[np.array([1])])  # one list per row
    with pytest.raises(ValueError):
        target_ranks(two_rows(), TARGETS, exclude=[np.array([7]), np.array([1])])


def test_ranks_work_on_tensors_that_require_grad():
    scores = two_rows().requires_grad_(True)
    np.testing.assert_array_equal(target_ranks(scores, TARGETS), [2, 1])


# ------------------------------------------------------------------------ HR/NDCG/MRR


def test_metrics_at_1_and_3_without_exclusion():
    ranks = np.array([2, 1])
    # k=1: neither rank is < 1.
    np.testing.assert_array_equal(hit_rate(ranks, 1), [0.0, 0.0])
    np.testing.assert_array_equal(ndcg(ranks, 1), [0.0, 0.0])
    np.testing.assert_array_equal(mrr(ranks, 1), [0.0, 0.0])
    # k=3: both hit. NDCG: rank 2 -> 1/log2(4) = 0.5; rank 1 -> 1/log2(3) = 0.6309297535714575.
    # MRR: rank 2 -> 1/3; rank 1 -> 1/2.
    np.testing.assert_array_equal(hit_rate(ranks, 3), [1.0, 1.0])
    np.testing.assert_allclose(ndcg(ranks, 3), [0.5, 1.0 / LOG2_3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ndcg(ranks, 3)[1], 0.6309297535714575, rtol=0, atol=1e-15)
    np.testing.assert_allclose(mrr(ranks, 3), [1.0 / 3.0, 0.5], rtol=0, atol=1e-15)


def test_metrics_at_1_and_3_with_history_excluded():
    ranks = target_ranks(two_rows(), TARGETS, exclude=[np.array([4]), np.array([2])])  # [1, 0]
    # k=1: only rank 0 hits; NDCG(rank 0) = 1/log2(2) = 1; MRR(rank 0) = 1.
    np.testing.assert_array_equal(hit_rate(ranks, 1), [0.0, 1.0])
    np.testing.assert_allclose(ndcg(ranks, 1), [0.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(mrr(ranks, 1), [0.0, 1.0], atol=1e-15)
    # k=3: NDCG = [1/log2(3), 1]; MRR = [1/2, 1].
    np.testing.assert_array_equal(hit_rate(ranks, 3), [1.0, 1.0])
    np.testing.assert_allclose(ndcg(ranks, 3), [1.0 / LOG2_3, 1.0], atol=1e-15)
    np.testing.assert_allclose(mrr(ranks, 3), [0.5, 1.0], atol=1e-15)


def test_metric_boundary_rank_equal_k_is_a_miss():
    # rank 3 at k=3 is the 4th position -> miss; rank 2 at k=3 is the 3rd -> hit.
    np.testing.assert_array_equal(hit_rate(np.array([3, 2]), 3), [0.0, 1.0])
    np.testing.assert_array_equal(mrr(np.array([3]), 3), [0.0])
    with pytest.raises(ValueError):
        hit_rate(np.array([0]), 0)
    with pytest.raises(ValueError):
        ndcg(np.array([-1]), 3)


# ------------------------------------------------------------------------------- top-k


def test_topk_ignores_padding_and_breaks_ties_by_lower_id():
    # Row 0: 4 (0.9), then the tie 2 and 3 (0.5) in id order; padding (9.0) never listed.
    # Row 1: 2 (0.8), 5 (0.6), 4 (0.4).
    top = topk_items(two_rows(), 3)
    assert top.dtype == torch.long and tuple(top.shape) == (2, 3)
    assert top.tolist() == [[4, 2, 3], [2, 5, 4]]


def test_topk_with_exclusion():
    # Row 0 without 4: 2, 3 (tie 0.5, id order), then 5 (0.2).
    # Row 1 without 2: 5 (0.6), 4 (0.4), 1 (0.3).
    top = topk_items(two_rows(), 3, exclude=[np.array([4]), np.array([2])])
    assert top.tolist() == [[2, 3, 5], [5, 4, 1]]


def test_topk_all_ties_and_excluded_minus_inf_items():
    scores = torch.zeros(2, 6)
    assert topk_items(scores, 3).tolist() == [[1, 2, 3], [1, 2, 3]]
    assert topk_items(scores, 3, exclude=[np.array([2]), np.array([1, 3])]).tolist() == [
        [1, 3, 4],
        [2, 4, 5],
    ]
    # Eligible items scored -inf are still preferred to excluded ones; NaN sorts last.
    inf = float("inf")
    scores = torch.tensor([[0.0, -inf, float("nan"), -inf, 1.0, -inf]])
    before = scores.clone()
    top = topk_items(scores, 4, exclude=[np.array([3])])
    # 4 (1.0), then -inf items 1, 5 by id (3 excluded), then the NaN item 2.
    assert top.tolist() == [[4, 1, 5, 2]]
    assert torch.equal(torch.nan_to_num(scores), torch.nan_to_num(before))


def test_topk_needs_enough_eligible_items():
    with pytest.raises(ValueError):
        topk_items(two_rows(), 5, exclude=[np.array([1]), np.array([])])
    assert topk_items(two_rows(), 5).shape == (2, 5)


def test_agreement_at_k():
    a = torch.tensor([[1, 2, 3], [5, 4, 1], [1, 2, 3]])
    b = np.array([[2, 3, 4], [1, 4, 5], [4, 5, 2]])
    # {1,2,3} & {2,3,4} = {2,3} -> 2/3; {5,4,1} & {1,4,5} -> 3/3; {1,2,3} & {4,5,2} -> 1/3.
    np.testing.assert_allclose(agreement_at_k(a, b, 3), [2 / 3, 1.0, 1 / 3])
    # k=1 uses the first column only: 1 vs 2, 5 vs 1, 1 vs 4 -> 0 everywhere.
    np.testing.assert_array_equal(agreement_at_k(a, b, 1), [0.0, 0.0, 0.0])
    # k=2: {1,2}&{2,3} = 1/2; {5,4}&{1,4} = 1/2; {1,2}&{4,5} = 0.
    np.testing.assert_allclose(agreement_at_k(a, b, 2), [0.5, 0.5, 0.0])
    with pytest.raises(ValueError):
        agreement_at_k(a, b, 4)


# ---------------------------------------------------------------------------- exposure


def exposure_setup() -> tuple[torch.Tensor, list[np.ndarray]]:
    scores = torch.tensor(
        [
            [5.0, 0.1, 0.9, 0.7, 0.3, 0.2],  # history {1, 2}
            [0.0, 0.5, 0.2, 0.9, 0.5, 0.5],  # history {3}
            [0.0, 0.7, 0.9, 0.7, 0.8, 0.1],  # history {2, 4}
        ]
    )
    histories = [np.array([1, 2]), np.array([3]), np.array([2, 4])]
    return scores, histories


def test_target_exposure_skips_users_who_have_the_target():
    scores, histories = exposure_setup()
    out = target_exposure(scores, histories, [3, 2], k=2)
    assert set(out) == {3, 2}
    # Target 3: row 1 already has it -> rows 0 and 2 only.
    #   row 0: 0.7; ahead: item 2 (0.9) -> rank 1 -> hit@2, ndcg 1/log2(3).
    #   row 2: 0.7; ahead: item 1 (0.7 tie), 2 (0.9), 4 (0.8) -> rank 3 -> miss.
    hits, nd = out[3]
    np.testing.assert_array_equal(hits, [1.0, 0.0])
    np.testing.assert_allclose(nd, [1.0 / LOG2_3, 0.0])
    # Target 2: rows 0 and 2 already have it -> row 1 only: 0.2; ahead 1, 3, 4, 5 -> rank 4.
    hits, nd = out[2]
    np.testing.assert_array_equal(hits, [0.0])
    np.testing.assert_array_equal(nd, [0.0])


def test_target_exposure_with_history_excluded_and_all_rows_holding_target():
    scores, histories = exposure_setup()
    # Row 2 without its history {2, 4}: only item 1 (tie) is ahead of target 3 -> rank 1.
    # Row 0 without its history {1, 2}: nothing is >= 0.7 -> rank 0 -> ndcg 1/log2(2) = 1.
    hits, nd = target_exposure(scores, histories, [3], k=2, exclude_history=True)[3]
    np.testing.assert_array_equal(hits, [1.0, 1.0])
    np.testing.assert_allclose(nd, [1.0, 1.0 / LOG2_3])
    # Every row already holds item 2 in this variant -> empty arrays.
    out = target_exposure(scores, [np.array([2])] * 3, [2], k=2)
    assert out[2][0].size == 0 and out[2][1].size == 0


def test_mean_over_targets_is_a_macro_average():
    scores, histories = exposure_setup()
    out = target_exposure(scores, histories, [3, 2], k=2)
    hits = {t: h for t, (h, _) in out.items()}
    # Target 3: mean([1, 0]) = 0.5; target 2: mean([0]) = 0 -> (0.5 + 0) / 2 = 0.25
    # (a pooled mean over the 3 rows would give 1/3 instead).
    assert mean_over_targets(hits) == pytest.approx(0.25)
    # {1: [1,1,1,0] -> 0.75, 2: [0,0] -> 0} -> 0.375; a target without users is skipped.
    per = {1: np.array([1.0, 1, 1, 0]), 2: np.array([0.0, 0]), 3: np.array([])}
    assert mean_over_targets(per) == pytest.approx(0.375)
    assert math.isnan(mean_over_targets({4: np.array([])}))
    assert math.isnan(mean_over_targets({}))


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_mean_and_is_deterministic():
    values = np.random.default_rng(0).random(200)
    m1 = bootstrap_ci(values, rng=np.random.default_rng(7), n_resamples=500)
    m2 = bootstrap_ci(values, rng=np.random.default_rng(7), n_resamples=500)
    assert m1 == m2
    mean, low, high = m1
    assert mean == pytest.approx(values.mean())
    assert low < mean < high
    # Width ~ 2 * 1.96 * sd / sqrt(n) = 2 * 1.96 * 0.289 / sqrt(200) = 0.080 (sd of U(0,1)).
    assert 0.06 < high - low < 0.10


def test_bootstrap_ci_shrinks_with_more_data():
    rng = np.random.default_rng(1)
    small = rng.random(50)
    large = rng.random(5000)
    _, lo_s, hi_s = bootstrap_ci(small, rng=np.random.default_rng(2), n_resamples=400)
    _, lo_l, hi_l = bootstrap_ci(large, rng=np.random.default_rng(2), n_resamples=400)
    # Width scales like 1/sqrt(n): a 100x larger sample -> ~10x narrower.
    assert (hi_l - lo_l) < 0.3 * (hi_s - lo_s)


def test_bootstrap_edge_cases():
    values = np.array([1.0, 0.0, 1.0, 1.0])
    assert bootstrap_ci(values, rng=np.random.default_rng(0), n_resamples=0) == (0.75, 0.75, 0.75)
    assert all(math.isnan(x) for x in bootstrap_ci(np.array([]), rng=np.random.default_rng(0)))
    # A constant sample has a zero-width interval.
    assert bootstrap_ci(np.full(10, 0.3), rng=np.random.default_rng(0), n_resamples=50) == (
        pytest.approx(0.3),
        pytest.approx(0.3),
        pytest.approx(0.3),
    )
    with pytest.raises(ValueError):
        bootstrap_ci(values, rng=np.random.default_rng(0), confidence=1.0)
    with pytest.raises(ValueError):
        bootstrap_ci(values, rng=np.random.default_rng(0), n_resamples=-1)


def test_bootstrap_chunking_gives_the_same_draws(monkeypatch):
    values = np.random.default_rng(3).random(64)
    whole = bootstrap_ci(values, rng=np.random.default_rng(9), n_resamples=300)
    monkeypatch.setattr(metrics_bootstrap, "_BOOTSTRAP_CHUNK_ELEMENTS", 64 * 7)  # 7 resamples per chunk
    chunked = bootstrap_ci(values, rng=np.random.default_rng(9), n_resamples=300)
    assert chunked == pytest.approx(whole)


def test_paired_bootstrap_small_p_for_clear_shift():
    rng = np.random.default_rng(4)
    b = rng.random(300)
    a = b + 0.2 + 0.05 * rng.standard_normal(300)
    diff, low, high, p = paired_bootstrap_diff(a, b, rng=np.random.default_rng(5), n_resamples=1000)
    assert diff == pytest.approx(np.mean(a - b))
    assert 0.0 < low < diff < high
    assert p < 0.01
    # Swapping the arms flips the sign, keeps the p-value small.
    diff2, low2, high2, p2 = paired_bootstrap_diff(b, a, rng=np.random.default_rng(5), n_resamples=1000)
    assert diff2 == pytest.approx(-diff) and high2 < 0 and p2 < 0.01


def test_paired_bootstrap_large_p_for_noise():
    # a - b alternates +1, -1: the mean difference is exactly 0 and resamples are symmetric.
    b = np.random.default_rng(6).random(200)
    a = b + np.tile([1.0, -1.0], 100)
    diff, low, high, p = paired_bootstrap_diff(a, b, rng=np.random.default_rng(7), n_resamples=1000)
    assert diff == pytest.approx(0.0, abs=1e-12)
    assert low < 0 < high
    assert p > 0.5
    # Independent noise around zero: no evidence of a shift.
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal(400), rng.standard_normal(400)
    *_, p = paired_bootstrap_diff(a, b, rng=np.random.default_rng(9), n_resamples=1000)
    assert p > 0.05


def test_paired_bootstrap_edge_cases():
    a, b = np.array([1.0, 2.0]), np.array([0.0, 0.0])
    d, lo, hi, p = paired_bootstrap_diff(a, b, rng=np.random.default_rng(0), n_resamples=0)
    assert (d, lo, hi) == (1.5, 1.5, 1.5) and math.isnan(p)
    assert all(math.isnan(x) for x in paired_bootstrap_diff(np.array([]), np.array([]), rng=np.random.default_rng(0)))
    with pytest.raises(ValueError):
        paired_bootstrap_diff(a, np.array([1.0]), rng=np.random.default_rng(0))
    # Every resampled mean of a constant +1.5 shift is > 0 -> p = 0.
    *_, p = paired_bootstrap_diff(a, a - 1.5, rng=np.random.default_rng(0), n_resamples=100)
    assert p == 0.0


# ---------------------------------------------------------------------- summaries


def test_metric_value_and_summarize():
    mv = summarize(np.array([1.0, 0.0, 1.0, 1.0]), rng=np.random.default_rng(0), n_resamples=0)
    assert mv == MetricValue(value=0.75, ci_low=0.75, ci_high=0.75, n=4)
    assert mv.to_dict() == {"value": 0.75, "ci_low": 0.75, "ci_high": 0.75, "n": 4}
    with pytest.raises(Exception):
        mv.value = 1.0  # frozen


def test_ranking_metrics_keys_and_values():
    ranks = np.array([2, 1])
    out = ranking_metrics(ranks, [1, 3], rng=np.random.default_rng(0), n_resamples=0)
    assert list(out) == ["hr@1", "ndcg@1", "mrr@1", "hr@3", "ndcg@3", "mrr@3"]
    assert out["hr@1"].value == 0.0
    assert out["hr@3"].value == 1.0
    # mean(0.5, 1/log2(3)) and mean(1/3, 1/2) = 5/12
    assert out["ndcg@3"].value == pytest.approx((0.5 + 1.0 / LOG2_3) / 2)
    assert out["mrr@3"].value == pytest.approx(5.0 / 12.0)
    assert all(v.n == 2 for v in out.values())
    boot = ranking_metrics(ranks, [3], rng=np.random.default_rng(0), n_resamples=200)
    assert boot["mrr@3"].ci_low <= boot["mrr@3"].value <= boot["mrr@3"].ci_high


# ---------------------------------------------------------------------- streaming


def test_rank_in_batches_matches_one_shot_ranking():
    rng = np.random.default_rng(10)
    n_users, n_items = 5, 8
    # Rounded scores make ties likely, so the pessimistic rule is exercised too.
    full = torch.from_numpy(np.round(rng.random((n_users, n_items + 1)), 1)).float()
    histories = [rng.choice(np.arange(1, n_items + 1), size=3, replace=False) for _ in range(n_users)]
    targets = np.array([h[-1] for h in histories])  # a target inside its own history
    calls: list[int] = []

    def score_fn(chunk: list[np.ndarray]) -> torch.Tensor:
        start = sum(calls)
        calls.append(len(chunk))
        return full[start : start + len(chunk)]

    ranks = rank_in_batches(score_fn, histories, targets, batch_size=2)
    assert calls == [2, 2, 1]
    np.testing.assert_array_equal(ranks, target_ranks(full, targets))

    calls.clear()
    ranks_ex = rank_in_batches(score_fn, histories, targets, batch_size=2, exclude_history=True)
    np.testing.assert_array_equal(ranks_ex, target_ranks(full, targets, exclude=histories))
    # Excluding the 2 other history items can only improve each rank.
    assert np.all(ranks_ex <= ranks)
    assert rank_in_batches(score_fn, [], np.array([], dtype=np.int64)).size == 0


def test_expected_agreement_draws_the_surrogates_ties_at_random():
    import torch

    from redteam.metrics import agreement_at_k, topk_items
    from redteam.metrics_topk import expected_agreement_at_k

    reference = np.array([[1, 2, 3]])
    # no ties: the plain overlap (items 1, 2 of the scorer's top 3 {1, 2, 5})
    scores = torch.tensor([[float("-inf"), 9.0, 8.0, 1.0, 0.5, 7.0]])
    assert expected_agreement_at_k(scores, reference, 3)[0] == pytest.approx(2 / 3)
    assert agreement_at_k(topk_items(scores, 3), reference, 3)[0] == pytest.approx(2 / 3)
    # a collapsed scorer (all five items tied): id order would give {1, 2, 3} and agreement 1;
    # at random, each of the 3 slots holds a reference item with chance 3/5
    flat = torch.tensor([[float("-inf"), 1.0, 1.0, 1.0, 1.0, 1.0]])
    assert agreement_at_k(topk_items(flat, 3), reference, 3)[0] == 1.0
    assert expected_agreement_at_k(flat, reference, 3)[0] == pytest.approx(3 / 5)
    # one item above, four tied for the remaining two slots, two of the tied in the reference
    part = torch.tensor([[float("-inf"), 5.0, 1.0, 1.0, 1.0, 1.0]])
    assert expected_agreement_at_k(part, reference, 3)[0] == pytest.approx((1 + 2 * 2 / 4) / 3)
    # an excluded history item never enters the scorer's top 3: {2, 5, 3}, overlap {2, 3}
    assert expected_agreement_at_k(scores, reference, 3, exclude=[np.array([1])])[0] == pytest.approx(2 / 3)
