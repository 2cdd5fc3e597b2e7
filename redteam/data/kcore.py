"""k-core filtering and user subsetting, with compact item re-indexing."""

from __future__ import annotations

import numpy as np

from redteam.data.dataset import SequenceDataset
from redteam.errors import ConfigError

__all__ = ["first_users", "kcore", "subset"]


def _flatten(dataset: SequenceDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user index, item id, sequence length per user) over all interactions."""
    lengths = np.array([len(s) for s in dataset.sequences], dtype=np.int64)
    users = np.repeat(np.arange(dataset.n_users, dtype=np.int64), lengths)
    items = np.concatenate(dataset.sequences).astype(np.int64) if dataset.sequences else np.zeros(0, np.int64)
    return users, items, lengths


def subset(dataset: SequenceDataset, keep: np.ndarray) -> SequenceDataset:
    """Keep the interactions where ``keep`` (a mask over the concatenated sequences) is true.

    Users left with no interaction are dropped; surviving items are re-indexed to 1..N' in their
    old order; ``item_text``, ``item_ids``, ``user_ids`` and ``timestamps`` follow.
    """
    users, items, lengths = _flatten(dataset)
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != items.shape:
        raise ValueError(f"keep must have one entry per interaction ({len(items)}), got {keep.shape}")
    kept_items = np.flatnonzero(np.bincount(items[keep], minlength=dataset.n_items + 1)[1:]) + 1
    remap = np.zeros(dataset.n_items + 1, dtype=np.int64)
    remap[kept_items] = np.arange(1, len(kept_items) + 1)
    new_lengths = np.bincount(users[keep], minlength=dataset.n_users)
    kept_users = np.flatnonzero(new_lengths)
    bounds = np.cumsum(new_lengths[kept_users])[:-1]
    sequences = np.split(remap[items[keep]], bounds) if len(kept_users) else []
    timestamps = None
    if dataset.timestamps is not None:
        flat_ts = np.concatenate(dataset.timestamps) if dataset.timestamps else np.zeros(0)
        timestamps = np.split(flat_ts[keep], bounds) if len(kept_users) else []

    def table(values: list[str] | None) -> list[str] | None:
        return None if values is None else [values[0]] + [values[i] for i in kept_items]

    return SequenceDataset(
        name=dataset.name,
        sequences=sequences,
        n_items=len(kept_items),
        item_text=table(dataset.item_text),
        item_ids=table(dataset.item_ids),
        user_ids=None if dataset.user_ids is None else [dataset.user_ids[u] for u in kept_users],
        timestamps=timestamps,
        meta=dict(dataset.meta),
    )


def kcore(dataset: SequenceDataset, k_user: int, k_item: int) -> SequenceDataset:
    """The (k_user, k_item)-core: repeatedly drop users with fewer than ``k_user`` interactions
    and interactions with items seen fewer than ``k_item`` times, until both hold everywhere.

    The result is the unique largest such sub-dataset (removal order does not matter). Items are
    re-indexed compactly 1..N' preserving order. With both k <= 1 the dataset is returned as is.
    """
    if k_user < 0 or k_item < 0:
        raise ConfigError(f"kcore: k must be >= 0, got k_user={k_user}, k_item={k_item}")
    if k_user <= 1 and k_item <= 1:
        return dataset
    users, items, _ = _flatten(dataset)
    keep = np.ones(len(items), dtype=bool)
    while True:
        item_counts = np.bincount(items[keep], minlength=dataset.n_items + 1)
        user_counts = np.bincount(users[keep], minlength=dataset.n_users)
        new_keep = keep & (item_counts[items] >= k_item) & (user_counts[users] >= k_user)
        if new_keep.sum() == keep.sum():
            break
        keep = new_keep
    return subset(dataset, keep)


def first_users(dataset: SequenceDataset, n: int) -> SequenceDataset:
    """The first ``n`` users (deterministic), items re-indexed compactly to those they touch."""
    if n < 1:
        raise ConfigError(f"max_users must be >= 1, got {n}")
    if n >= dataset.n_users:
        return dataset
    users, _, _ = _flatten(dataset)
    return subset(dataset, users < n)
