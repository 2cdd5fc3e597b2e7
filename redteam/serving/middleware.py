"""Serving middleware: a recommender that wraps a recommender (the home of serving defenses).

A serving defense (output perturbation, query monitoring, rate shaping) subclasses
:class:`Middleware` and overrides :meth:`Middleware.recommend`. By default it hides the inner
full-catalog scorer, so metrics see what the defended service actually returns; a middleware
that never changes rankings may set ``passes_scores = True``.
"""

from __future__ import annotations

from redteam.serving.port import Histories, Recommender, ScoreFn, TopK, full_scorer


class Middleware:
    """Forwards everything to ``inner``; subclasses change what passes through."""

    passes_scores: bool = False

    def __init__(self, inner: Recommender) -> None:
        self.inner = inner
        self.n_items = inner.n_items
        self.max_k = inner.max_k

    def recommend(self, histories: Histories, k: int) -> TopK:
        return self.inner.recommend(histories, k)

    def full_scorer(self) -> ScoreFn | None:
        return full_scorer(self.inner) if self.passes_scores else None
