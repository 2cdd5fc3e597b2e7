"""Bandwagon attack: a share of every profile's fillers comes from the most popular items, the
rest is random (Burke et al. 2005; the "bandwagon" row of LoRec, RecAD and ARLib). Pairing the
target with items most real users hold ties it to many real histories.

Threat model: the attacker knows item popularity. The scenario grants it with
``attacker.item_popularity`` (default true: training interaction counts, what a public
bestseller list approximates); without it the recipe counts items in its few-shot sequences
(``attacker.few_shot_ratio``) and says so in the row's info; with neither it refuses to run.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from attacks.poisoning.base import FakePlan, PoisoningAttack, PoisoningParams, draw_distinct
from redteam.errors import ConfigError
from redteam.knowledge import Knowledge
from redteam.seeding import numpy_rng


class BandwagonParams(PoisoningParams):
    popular_share: float = Field(0.3, ge=0, le=1, description="share of each profile's fillers drawn from the popular items")
    popular_items: float = Field(0.01, gt=0, le=1, description="the popular items: this share of the catalog (at least 10 items), most popular first")


def known_popularity(knowledge: Knowledge, where: str) -> tuple[np.ndarray, str]:
    """Counts per item id (index 0 = padding) and where they come from."""
    if knowledge.item_popularity is not None:
        return np.asarray(knowledge.item_popularity, dtype=np.float64), "granted item popularity"
    if knowledge.few_shot:
        flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in knowledge.few_shot])
        return np.bincount(flat, minlength=knowledge.n_items + 1).astype(np.float64), "counts in the few-shot sequences"
    raise ConfigError(f"{where}: needs item popularity: set attacker.item_popularity: true, or give the attacker few-shot data")


class Bandwagon(PoisoningAttack):
    """Popular items plus random fillers around the targets (bandwagon shilling)."""

    alias: ClassVar[str] = "poisoning.bandwagon"
    Params: ClassVar[type[BandwagonParams]] = BandwagonParams

    def craft(self, knowledge: Knowledge, plan: FakePlan) -> list[np.ndarray]:
        p = self.params
        rng = numpy_rng(knowledge.seed, "bandwagon")
        counts, source = known_popularity(knowledge, f"attacks.{self.alias}")
        pool = self.filler_pool(knowledge, plan)
        size = min(len(pool), max(10, int(round(p.popular_items * knowledge.n_items))))
        # Most popular first; ties broken by a seeded shuffle rather than by id.
        order = pool[rng.permutation(len(pool))]
        popular = order[np.argsort(-counts[order], kind="stable")][:size]
        fillers = []
        for i in range(plan.n_fakes):
            n = len(plan.filler_slots(i))
            n_pop = int(rng.binomial(n, p.popular_share)) if 0 < p.popular_share < 1 else int(round(p.popular_share * n))
            chosen = draw_distinct(rng, popular, n_pop)
            chosen = np.concatenate([chosen, draw_distinct(rng, pool, n - n_pop, avoid=chosen)])
            fillers.append(chosen[rng.permutation(n)])
        self.diagnostics = {"knowledge": source, "popular_items": popular[:20].tolist(), "popular_pool": int(size)}
        return self.fill(plan, fillers)
