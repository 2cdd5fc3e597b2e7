"""k-core filtering: a hand-checked cascade, invariants and a naive reference."""

from __future__ import annotations

import numpy as np
import pytest

from redteam.data.dataset import SequenceDataset
from redteam.data.kcore import first_users, kcore
from redteam.errors import ConfigError


def make(seqs: list[list[int]], n_items: int, *, with_tables: bool = True) -> SequenceDataset:
    return SequenceDataset(
        name="toy",
        sequences=[np.array(s, dtype=np.int64) for s in seqs],
        n_items=n_items,
        item_text=[""] + [f"text{i}" for i in range(1, n_items + 1)] if with_tables else None,
        item_ids=[""] + [f"raw{i}" for i in range(1, n_items + 1)] if with_tables else None,
        user_ids=[f"u{u}" for u in range(len(seqs))] if with_tables else None,
        timestamps=[np.arange(len(s)) * 10 + 100 * u for u, s in enumerate(seqs)] if with_tables else None,
        meta={"source": "hand"},
    )


def as_lists(ds: SequenceDataset) -> list[list[int]]:
    return [s.tolist() for s in ds.sequences]


def test_cascade_hand_checked() -> None:
    # k=2/2. Round 1 drops u3 ([5]) -> item 5 has one user left (u2). Round 2 drops item 5 ->
    # u2 = [3] is too short. Round 3 drops u2 -> item 3 only in u1. Round 4 drops item 3.
    # Item 4 (count 1) and u4 (only item 4) go in round 1. Left: u0=[1,2], u1=[1,2].
    ds = make([[1, 2], [1, 3, 2], [3, 5], [5], [4]], n_items=5)
    core = kcore(ds, 2, 2)
    assert as_lists(core) == [[1, 2], [1, 2]]
    assert core.n_items == 2
    assert core.item_ids == ["", "raw1", "raw2"] and core.item_text == ["", "text1", "text2"]
    assert core.user_ids == ["u0", "u1"]
    assert [t.tolist() for t in core.timestamps] == [[0, 10], [100, 120]]
    assert core.meta == {"source": "hand"}


def test_compact_reindex_preserves_item_order() -> None:
    ds = make([[5, 2, 5], [2, 5, 2], [1, 3]], n_items=5)
    core = kcore(ds, 3, 1)
    assert as_lists(core) == [[2, 1, 2], [1, 2, 1]]  # 2 -> 1, 5 -> 2
    assert core.item_ids == ["", "raw2", "raw5"]


def test_users_and_items_thresholds_differ() -> None:
    ds = make([[1, 2, 3], [1, 2], [1, 4]], n_items=4)
    assert as_lists(kcore(ds, 1, 3)) == [[1], [1], [1]]
    assert as_lists(kcore(ds, 3, 1)) == [[1, 2, 3]]


@pytest.mark.parametrize("k", [0, 1])
def test_small_k_is_noop(k: int) -> None:
    ds = make([[1, 2], [3]], n_items=4)  # item 4 unused: still a no-op
    assert kcore(ds, k, k) is ds


def test_everything_removed() -> None:
    core = kcore(make([[1, 2], [3]], n_items=3), 5, 5)
    assert core.n_users == 0 and core.n_items == 0 and core.item_text == [""]


def test_negative_k_rejected() -> None:
    with pytest.raises(ConfigError):
        kcore(make([[1]], n_items=1), -1, 2)


def naive_kcore(seqs: list[list[int]], k: int) -> list[list[int]]:
    """One removal at a time until stable (the fixed point does not depend on order)."""
    seqs = [list(s) for s in seqs]
    changed = True
    while changed:
        changed = False
        counts: dict[int, int] = {}
        for s in seqs:
            for i in s:
                counts[i] = counts.get(i, 0) + 1
        for s in seqs:
            if 0 < len(s) < k:
                s.clear()
                changed = True
                break
        else:
            rare = next((i for i, c in counts.items() if c < k), None)
            if rare is not None:
                seqs = [[i for i in s if i != rare] for s in seqs]
                changed = True
    return [s for s in seqs if s]


def test_matches_naive_reference() -> None:
    rng = np.random.default_rng(7)
    raw = [rng.integers(1, 41, size=rng.integers(1, 9)).tolist() for _ in range(60)]
    core = kcore(make(raw, n_items=40, with_tables=False), 3, 3)
    expected = naive_kcore(raw, 3)
    kept = sorted({i for s in expected for i in s})
    remap = {old: new for new, old in enumerate(kept, start=1)}
    assert as_lists(core) == [[remap[i] for i in s] for s in expected]
    assert core.n_items == len(kept)
    assert min(len(s) for s in core.sequences) >= 3
    assert core.item_popularity()[1:].min() >= 3


def test_first_users() -> None:
    ds = make([[3, 4], [4], [1, 2]], n_items=4)
    head = first_users(ds, 2)
    assert as_lists(head) == [[1, 2], [2]] and head.item_ids == ["", "raw3", "raw4"]
    assert first_users(ds, 10) is ds
