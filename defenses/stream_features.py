"""Features of one API key's query stream, in the spirit of PRADA (Juuti et al., EuroS&P 2019).

PRADA flags a client whose successive queries stop looking like benign traffic. For a sequential
recommender the known extraction attacks leave signatures in the stream itself:

* ``extends_answer``: the query extends an earlier query of the key by one item taken from that
  query's own answer (autoregressive extraction, Yue et al. 2021, builds its sequences this way);
* ``extends_prefix``: the query extends an earlier query by any item (real sessions grow too);
* ``popularity``: the popularity percentile of the query's newest item (random histories draw
  items uniformly; real users favour popular ones);
* ``length``: the query's length (generated sequences run to a fixed length).

A stream's feature vector after ``n`` queries is the mean of each over its first ``n`` queries.
"""

from __future__ import annotations

import numpy as np

FEATURES = ("extends_answer", "extends_prefix", "popularity", "length")


class StreamFeatures:
    """Per-query feature rows of one key's stream, in arrival order."""

    def __init__(self, popularity_rank: np.ndarray) -> None:
        self.popularity_rank = popularity_rank  # [n_items + 1] percentile of each item's training count
        self._answers: dict[bytes, np.ndarray] = {}  # int32 arrays: 100k answers of 100 ids take 40 MB
        self.rows: list[tuple[float, float, float, float]] = []

    def observe(self, history: np.ndarray, answer: np.ndarray) -> None:
        history = np.asarray(history, dtype=np.int64)
        prefix = self._answers.get(history[:-1].tobytes()) if history.size > 1 else None
        extends = prefix is not None
        from_answer = extends and bool((prefix == history[-1]).any())
        newest = float(self.popularity_rank[history[-1]]) if history.size else 0.0
        self.rows.append((float(from_answer), float(extends), newest, float(history.size)))
        self._answers.setdefault(history.tobytes(), np.asarray(answer, dtype=np.int32))

    def __len__(self) -> int:
        return len(self.rows)

    def vector(self, n: int | None = None) -> np.ndarray:
        """Mean feature vector over the first ``n`` queries (all when None)."""
        rows = np.asarray(self.rows[: len(self.rows) if n is None else n], dtype=np.float64)
        return rows.mean(axis=0) if rows.size else np.zeros(len(FEATURES))

    def windows(self, n: int) -> np.ndarray:
        """Mean vectors of consecutive, disjoint windows of ``n`` queries ([windows, features]):
        the key split as an attacker spreading its queries over keys of ``n`` queries would."""
        rows = np.asarray(self.rows, dtype=np.float64)
        full = len(rows) // n
        return rows[: full * n].reshape(full, n, -1).mean(axis=1) if full else np.zeros((0, len(FEATURES)))


def popularity_ranks(counts: np.ndarray) -> np.ndarray:
    """Each item's percentile (0..1) among the catalog by training count; padding 0."""
    counts = np.asarray(counts, dtype=np.float64)
    ranks = np.zeros_like(counts)
    items = counts[1:]
    order = items.argsort(kind="stable")
    ranks[1:][order] = np.arange(items.size) / max(items.size - 1, 1)
    return ranks
