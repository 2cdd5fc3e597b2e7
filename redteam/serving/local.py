"""A model in this process behind the serving port (the usual victim, and every surrogate)."""

from __future__ import annotations

import numpy as np

from redteam.serving.port import Histories, ScoreFn, TopK, check_ids


class LocalRecommender:
    """Top-k answers from a full-catalog score function (``victim.score``).

    Ties are broken by lower item id; the padding id (and, with ``exclude_history``, the query's
    own items) is never returned. It offers the full-scoring capability: metrics on a local
    model rank the whole catalog.
    """

    def __init__(self, score_fn: ScoreFn, *, n_items: int, exclude_history: bool = False, batch_size: int = 512) -> None:
        if n_items < 1:
            raise ValueError("n_items must be >= 1")
        self._score = score_fn
        self.n_items = n_items
        self.max_k = n_items
        self.exclude_history = exclude_history
        self.batch_size = batch_size

    def full_scorer(self) -> ScoreFn:
        return self._score

    def recommend(self, histories: Histories, k: int) -> TopK:
        import torch

        from redteam.metrics import topk_items

        cleaned = check_ids(histories, self.n_items)
        ids, vals = [], []
        for start in range(0, len(cleaned), self.batch_size):
            chunk = cleaned[start : start + self.batch_size]
            with torch.no_grad():
                scores = self._score(chunk)
            top = topk_items(scores, k, exclude=chunk if self.exclude_history else None)
            ids.append(top.numpy())
            vals.append(torch.gather(scores, 1, top).numpy())
        if not ids:
            return TopK(np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32))
        return TopK(np.concatenate(ids), np.concatenate(vals))
