"""Output-perturbation serving defenses on a recommender whose rankings are known by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from redteam.serving.local import LocalRecommender
from redteam.serving.metered import MeteredEndpoint

N = 60


def rotated_scores(histories) -> torch.Tensor:
    """Item i scores -((i - shift) mod N) with shift = sum(history): ranks shift, shift+1, ..."""
    rows = []
    for h in histories:
        shift = int(np.sum(h)) % N
        ids = torch.arange(N + 1, dtype=torch.float32)
        rows.append(-((ids - 1 - shift) % N))
    out = torch.stack(rows)
    out[:, 0] = float("-inf")
    return out


def expected(history, k: int) -> list[int]:
    shift = int(np.sum(history)) % N
    return [(shift + j) % N + 1 for j in range(k)]


HISTORIES = [np.array(h) for h in ([1, 2], [7], [3, 3, 9], [40, 41, 42], [5], [11, 12])]


def served(alias: str, seed: int = 0, **params):
    from redteam.registry import resolve

    cls = resolve("defenses", alias)
    return cls(cls.Params(**params)).wrap(LocalRecommender(rotated_scores, n_items=N), np.random.default_rng(seed))


def test_truncation_answers_at_most_keep_items_through_the_endpoint() -> None:
    rec = served("topk_truncation", keep=4)
    assert rec.max_k == 4
    api = MeteredEndpoint(rec, topk=min(20, rec.max_k), budget=None, expose_scores=False)
    answer = api.topk(HISTORIES)
    assert [len(r) for r in answer] == [4] * len(HISTORIES)
    assert [list(r) for r in answer] == [expected(h, 4) for h in HISTORIES]


def test_rank_noise_keeps_each_window_and_is_keyed_per_history() -> None:
    rec = served("rank_noise", window=5)
    items = rec.recommend(HISTORIES, 20).items
    moved = 0
    for row, h in zip(items, HISTORIES):
        truth = expected(h, 20)
        for s in range(0, 20, 5):
            assert sorted(row[s:s + 5]) == sorted(truth[s:s + 5])
        moved += int(np.sum(row != np.array(truth)))
    assert moved > 0.5 * 20 * len(HISTORIES)  # a random permutation of 5 moves 4 of them on average
    alone = rec.recommend([HISTORIES[3]], 20).items[0]
    np.testing.assert_array_equal(alone, items[3])  # the same history, the same answer, in any batch
    other_key = served("rank_noise", seed=1, window=5).recommend(HISTORIES, 20).items
    assert not np.array_equal(other_key, items)


def test_random_replacement_swaps_its_share_for_deeper_items() -> None:
    rec = served("random_replacement", share=0.2, depth=3)
    items = rec.recommend(HISTORIES, 10).items
    for row, h in zip(items, HISTORIES):
        truth = expected(h, 30)
        changed = row != np.array(truth[:10])
        assert changed.sum() == 2 and len(set(row)) == 10
        assert set(row[changed]) <= set(truth[10:30])
    again = rec.recommend(HISTORIES[::-1], 10).items[::-1]
    np.testing.assert_array_equal(again, items)


@pytest.mark.parametrize(("params", "scores"), [({"decimals": 0}, True), ({"hide": True}, False)])
def test_score_rounding_keeps_the_order(params, scores) -> None:
    from redteam.serving.port import full_scorer

    rec = served("score_rounding", **params)
    noisy = LocalRecommender(lambda h: rotated_scores(h) + 0.3, n_items=N)
    rec.inner = noisy
    top = rec.recommend(HISTORIES, 5)
    assert top.items.tolist() == [expected(h, 5) for h in HISTORIES]
    if scores:
        assert np.all(top.scores == np.round(top.scores)) and top.scores[0, 0] == 0.0
    else:
        assert top.scores is None
    assert full_scorer(rec) is not None  # the ranking is the victim's: full-catalog metrics stay valid
