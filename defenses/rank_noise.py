"""Rank noise: the returned list is shuffled inside consecutive windows of ``window`` positions.

Output perturbation (specs/extraction_defenses.md): the set of items in each window is kept, their
order is not, so an attacker that distils the victim's ranking (Yue et al., RecSys 2021; the
few-shot recipe) learns a blurred order. Membership of the top-``window`` multiples is untouched,
so Agreement@K at multiples of the window barely moves; the cost to real users is the lost order
(NDCG falls, HR@K at multiples of the window does not). The noise is keyed per history
(:mod:`defenses.keyed_noise`): asking a history again returns the same order, so repeats cannot
average it out.

Threat model: the defender controls what the serving API returns, not the attacker's queries.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from defenses.base import ServingDefense
from defenses.keyed_noise import history_rng, secret_key
from redteam.params import Params
from redteam.serving.middleware import Middleware
from redteam.serving.port import Histories, TopK, check_ids


class RankNoiseParams(Params):
    window: int = Field(5, ge=2, description="positions shuffled together (1-5, 6-10, ...)")


class RankNoise(ServingDefense):
    """Shuffle the answer inside windows of ``window`` positions, keyed per history."""

    alias: ClassVar[str] = "rank_noise"
    family: ClassVar[str] = "output-perturbation"
    Params = RankNoiseParams

    def wrap(self, inner: Any, rng: np.random.Generator) -> "RankNoised":
        return RankNoised(inner, self.params.window, secret_key(rng))


class RankNoised(Middleware):
    def __init__(self, inner: Any, window: int, key: int) -> None:
        super().__init__(inner)
        self.window, self.key = window, key

    def recommend(self, histories: Histories, k: int) -> TopK:
        cleaned = check_ids(histories, self.n_items)
        top = self.inner.recommend(cleaned, k)
        items = top.items.copy()
        scores = None if top.scores is None else top.scores.copy()
        for b, history in enumerate(cleaned):
            rng = history_rng(self.key, history)
            for start in range(0, items.shape[1], self.window):
                stop = min(start + self.window, items.shape[1])
                order = start + rng.permutation(stop - start)
                items[b, start:stop] = items[b, order]
        # the scores stay in place: they are the window's sorted scores, not the moved items' own
        return TopK(items, scores)
