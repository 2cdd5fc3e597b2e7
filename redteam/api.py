"""The black-box query API every attack goes through (kept importable for plugins and notebooks).

:class:`BlackBoxAPI` is a :class:`~redteam.serving.metered.MeteredEndpoint` in front of a local
score function: ``BlackBoxAPI(score_fn, n_items=..., topk=..., budget=...)``. It returns ranked
item ids (and scores only when exposed), counts each history as one query, enforces the budget
before answering and logs queries. The victim is held in a closure, never in an attribute.
"""

from __future__ import annotations

from redteam.serving.local import LocalRecommender
from redteam.serving.metered import Answer, MeteredEndpoint, QueryRecord
from redteam.serving.port import ScoreFn

__all__ = ["Answer", "BlackBoxAPI", "QueryRecord", "ScoreFn"]


class BlackBoxAPI(MeteredEndpoint):
    """Top-k recommendations for histories from ``score_fn``, with a budget and a query log."""

    __slots__ = ()

    def __init__(self, score_fn: ScoreFn, *, n_items: int, topk: int = 100, budget: int | None = None,
                 expose_scores: bool = False, exclude_history: bool = False, batch_size: int = 512,
                 log_queries: bool = True, log_topk: int = 10) -> None:
        local = LocalRecommender(score_fn, n_items=n_items, exclude_history=exclude_history, batch_size=batch_size)
        super().__init__(local, topk=topk, budget=budget, expose_scores=expose_scores,
                         log_queries=log_queries, log_topk=log_topk)
