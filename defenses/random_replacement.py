"""Random replacement: a share of the returned items is swapped for plausible items from deeper in
the victim's own ranking.

LLM4MEA (arXiv 2507.16969) reports that replacing 10% of the returned items cut its extraction
attack's Agreement@10 from .639 to .448 (their setup). Here the replacements are drawn from the
victim's ranks ``k+1 .. depth*k`` for the same history, so they look like recommendations (the
model scores them highly) rather than noise an attacker could filter by popularity. Positions and
replacements are keyed per history (:mod:`defenses.keyed_noise`): repeats return the same list.
Real users lose the replaced hits: about ``share`` of HR@K.

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


class RandomReplacementParams(Params):
    share: float = Field(0.1, gt=0, le=1, description="share of the returned positions replaced")
    depth: int = Field(3, ge=2, le=20, description="replacements come from ranks k+1 .. depth*k")


class RandomReplacement(ServingDefense):
    """Replace ``share`` of each answer by items from the victim's ranks k+1..depth*k."""

    alias: ClassVar[str] = "random_replacement"
    family: ClassVar[str] = "output-perturbation"
    Params = RandomReplacementParams

    def wrap(self, inner: Any, rng: np.random.Generator) -> "Replaced":
        return Replaced(inner, self.params.share, self.params.depth, secret_key(rng))


class Replaced(Middleware):
    def __init__(self, inner: Any, share: float, depth: int, key: int) -> None:
        super().__init__(inner)
        self.share, self.depth, self.key = share, depth, key

    def recommend(self, histories: Histories, k: int) -> TopK:
        cleaned = check_ids(histories, self.n_items)
        deep = self.inner.recommend(cleaned, min(self.inner.max_k, self.depth * k))
        items = deep.items[:, :k].copy()
        pool = deep.items[:, k:]
        swaps = min(int(round(self.share * items.shape[1])), pool.shape[1])
        for b, history in enumerate(cleaned):
            if swaps == 0:
                break
            rng = history_rng(self.key, history)
            positions = rng.choice(items.shape[1], size=swaps, replace=False)
            items[b, positions] = rng.choice(pool[b], size=swaps, replace=False)
        return TopK(items, None)  # the replaced items' scores would give them away
