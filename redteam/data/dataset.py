"""The one dataset type: chronological item sequences over items 1..N (0 is padding)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

PAD = 0


@dataclass(frozen=True)
class SequenceDataset:
    """Users' chronological interaction sequences.

    ``sequences[u]`` is an int64 array of item ids in 1..``n_items``. ``item_text[i]``,
    ``item_ids[i]`` (raw id from the source file) are indexed by item id, with index 0 the
    padding slot (empty string). ``timestamps[u]`` aligns with ``sequences[u]`` when known.
    """

    name: str
    sequences: list[np.ndarray]
    n_items: int
    item_text: list[str] | None = None
    item_ids: list[str] | None = None
    user_ids: list[str] | None = None
    timestamps: list[np.ndarray] | None = None
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name, table in (("item_text", self.item_text), ("item_ids", self.item_ids)):
            if table is not None and len(table) != self.n_items + 1:
                raise ValueError(f"{name} must have n_items + 1 = {self.n_items + 1} entries, got {len(table)}")
        if self.user_ids is not None and len(self.user_ids) != len(self.sequences):
            raise ValueError("user_ids must have one entry per sequence")

    @property
    def n_users(self) -> int:
        return len(self.sequences)

    @property
    def n_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    @cached_property
    def checksum(self) -> str:
        """Content hash of the sequences, catalog size and item text (not of the name)."""
        h = hashlib.sha256()
        h.update(f"n_items={self.n_items};n_users={self.n_users};".encode())
        for seq in self.sequences:
            h.update(np.asarray(seq, dtype=np.int64).tobytes())
            h.update(b"|")
        if self.item_text is not None:
            h.update("\x1f".join(self.item_text).encode())
        return h.hexdigest()[:16]

    def item_popularity(self, sequences: list[np.ndarray] | None = None) -> np.ndarray:
        """Interaction counts per item id (index 0 = padding = 0)."""
        seqs = self.sequences if sequences is None else sequences
        flat = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
        return np.bincount(flat, minlength=self.n_items + 1)

    def summary(self) -> dict:
        lengths = np.array([len(s) for s in self.sequences])
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "mean_length": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
            "max_length": int(lengths.max()) if len(lengths) else 0,
            "has_text": self.item_text is not None,
            "checksum": self.checksum,
        }


@dataclass(frozen=True)
class LeaveOneOutSplit:
    """Leave-one-out split: last item = test target, second to last = validation target.

    ``train[u]`` is ``seq[:-2]`` for users with at least 3 interactions (they are evaluated) and the
    whole sequence for shorter users (training only). Validation inputs are ``train[u]``; test inputs
    are ``seq[:-1]``.
    """

    dataset: SequenceDataset
    train: list[np.ndarray]
    eval_users: np.ndarray  # indices of users with a validation and a test target

    @classmethod
    def of(cls, dataset: SequenceDataset) -> "LeaveOneOutSplit":
        train, eval_users = [], []
        for u, seq in enumerate(dataset.sequences):
            if len(seq) >= 3:
                train.append(seq[:-2])
                eval_users.append(u)
            else:
                train.append(seq)
        return cls(dataset, train, np.asarray(eval_users, dtype=np.int64))

    @cached_property
    def train_times(self) -> list[np.ndarray] | None:
        """Event times aligned with :attr:`train` (None when the data set has no timestamps)."""
        stamps = self.dataset.timestamps
        if stamps is None:
            return None
        return [np.asarray(stamps[u], dtype=np.float64)[: len(self.train[u])] for u in range(len(self.train))]

    def valid_times(self, users: np.ndarray | None = None) -> list[np.ndarray] | None:
        """Event times of :meth:`valid_histories` (None without timestamps)."""
        times = self.train_times
        users = self.eval_users if users is None else users
        return None if times is None else [times[u] for u in users]

    def test_times(self, users: np.ndarray | None = None) -> list[np.ndarray] | None:
        """Event times of :meth:`test_histories` (None without timestamps)."""
        stamps = self.dataset.timestamps
        users = self.eval_users if users is None else users
        return None if stamps is None else [np.asarray(stamps[u], dtype=np.float64)[:-1] for u in users]

    def valid_histories(self, users: np.ndarray | None = None) -> list[np.ndarray]:
        users = self.eval_users if users is None else users
        return [self.train[u] for u in users]

    def valid_targets(self, users: np.ndarray | None = None) -> np.ndarray:
        users = self.eval_users if users is None else users
        return np.array([self.dataset.sequences[u][-2] for u in users], dtype=np.int64)

    def test_histories(self, users: np.ndarray | None = None) -> list[np.ndarray]:
        users = self.eval_users if users is None else users
        return [self.dataset.sequences[u][:-1] for u in users]

    def test_targets(self, users: np.ndarray | None = None) -> np.ndarray:
        users = self.eval_users if users is None else users
        return np.array([self.dataset.sequences[u][-1] for u in users], dtype=np.int64)
