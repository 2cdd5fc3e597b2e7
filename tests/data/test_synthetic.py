"""The embedded synthetic data set: determinism, text, lengths and sequential structure."""

from __future__ import annotations

import numpy as np
import pytest

from redteam.data.dataset import LeaveOneOutSplit, SequenceDataset
from redteam.data.synthetic import CATEGORIES, make_synthetic
from redteam.errors import ConfigError


@pytest.fixture(scope="module")
def default() -> SequenceDataset:
    return make_synthetic(seed=0)


def test_deterministic_for_a_seed(default: SequenceDataset) -> None:
    again = make_synthetic(seed=0)
    assert again.checksum == default.checksum
    assert again.item_text == default.item_text
    assert make_synthetic(seed=1).checksum != default.checksum


def test_shape_and_ids(default: SequenceDataset) -> None:
    assert default.n_users == 2000 and default.n_items == 1000
    flat = np.concatenate(default.sequences)
    assert flat.dtype == np.int64 and flat.min() >= 1 and flat.max() <= 1000
    assert (default.item_popularity()[1:] > 0).mean() > 0.95  # nearly every item is used
    assert len(set(default.user_ids)) == 2000 and default.item_ids[0] == ""


def test_item_text(default: SequenceDataset) -> None:
    text = default.item_text
    assert text is not None and text[0] == "" and all(text[1:])
    assert len(set(text[1:])) == 1000  # titles are distinct
    labels = {c.label for c in CATEGORIES}
    for t in text[1:20]:
        title, category, brand = t.rstrip(".").split(". ")
        assert category in labels and title.startswith(brand)


def test_lengths(default: SequenceDataset) -> None:
    lengths = np.array([len(s) for s in default.sequences])
    assert lengths.min() >= 5 and lengths.max() <= 50
    assert 11 <= lengths.mean() <= 13
    assert np.median(lengths) < lengths.mean()  # right-skewed like real data
    short = make_synthetic(users=300, items=200, mean_length=8, seed=2)
    assert 7 <= np.mean([len(s) for s in short.sequences]) <= 9


def test_small_catalogs_and_validation() -> None:
    tiny = make_synthetic(users=5, items=3, mean_length=6, seed=0)
    assert tiny.n_items == 3 and all(1 <= s.min() and s.max() <= 3 for s in tiny.sequences)
    with pytest.raises(ConfigError):
        make_synthetic(mean_length=4)
    with pytest.raises(ConfigError):
        make_synthetic(items=1)


# --------------------------------------------------------------------------- structure proxy


def ranking_metrics(scores: np.ndarray, targets: np.ndarray, k: int = 10) -> tuple[float, float]:
    """HR@k and NDCG@k over a full ranking of items 1..N, ties counted against the target."""
    scores = scores.copy()
    scores[:, 0] = -np.inf
    target_scores = scores[np.arange(len(targets)), targets]
    rank = (scores > target_scores[:, None]).sum(1) + (scores == target_scores[:, None]).sum(1) - 1
    hit = rank < k
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(rank + 2), 0.0).mean())


def popularity_and_markov(dataset: SequenceDataset) -> dict[str, float]:
    """Leave-one-out test metrics of popularity and a first-order Markov chain (counts from the
    training part; unseen transitions fall back to popularity)."""
    split = LeaveOneOutSplit.of(dataset)
    n = dataset.n_items
    pop = dataset.item_popularity(split.train).astype(np.float64)
    pop /= pop.max()
    counts = np.zeros((n + 1, n + 1))
    for seq in split.train:
        np.add.at(counts, (seq[:-1], seq[1:]), 1.0)
    last = np.array([h[-1] for h in split.test_histories()])
    targets = split.test_targets()
    pop_hr, pop_ndcg = ranking_metrics(np.tile(pop, (len(targets), 1)), targets)
    mk_hr, mk_ndcg = ranking_metrics(counts[last] + 1e-3 * pop, targets)
    return {"pop_hr": pop_hr, "pop_ndcg": pop_ndcg, "markov_hr": mk_hr, "markov_ndcg": mk_ndcg}


def test_sequential_structure(default: SequenceDataset) -> None:
    m = popularity_and_markov(default)
    print(m)
    assert m["markov_ndcg"] > 2 * m["pop_ndcg"]
    assert m["markov_ndcg"] < 0.35
    assert m["pop_hr"] < 0.2
