"""Order averaging: rank the catalog under several random product orders and average the positions.

A mitigation against order-sensitive LLM rankers and against STSs tuned to particular orders
(specs/sts.md, "order randomisation / averaging"; Kumar & Lakkaraju, 2024, show that an STS
optimised under one fixed order fails under others). Each request is ranked ``orders`` times with
the products shuffled; products are ordered by their mean position (a product the ranker did not
name counts as N + 1; a product never named under any order stays unnamed). Costs ``orders``
times the ranker's compute. A bi-encoder ignores order, so
this changes nothing for it.

Threat model: the defender controls the serving prompt, not the product texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from defenses.base import ServingDefense
from redteam.catalog import Product
from redteam.params import Params
from victims.ranker_base import order_by_scores


class OrderAveragingParams(Params):
    orders: int = Field(3, ge=2, description="random catalog orders per request")


class OrderAveraging(ServingDefense):
    """Serve the mean rank over several random catalog orders."""

    alias: ClassVar[str] = "order_averaging"
    family: ClassVar[str] = "ranker"
    victim_family: ClassVar[str] = "ranker"
    Params = OrderAveragingParams

    def wrap(self, inner: Any, rng: np.random.Generator) -> "OrderAveragedRanker":
        return OrderAveragedRanker(inner, self.params.orders, rng)

    def identifier(self) -> dict[str, Any]:
        return {"defense": self.alias, **self.params.model_dump(mode="json")}


class OrderAveragedRanker:
    def __init__(self, ranker: Any, orders: int, rng: np.random.Generator) -> None:
        self.ranker, self.orders, self.rng = ranker, orders, rng

    def rank(self, products: Sequence[Product], request: str) -> list[int]:
        n = len(products)
        total = np.zeros(n)
        named = np.zeros(n, dtype=bool)
        for _ in range(self.orders):
            perm = self.rng.permutation(n)
            order = self.ranker.rank([products[i] for i in perm], request)
            position = np.full(n, n + 1.0)
            for pos, shown in enumerate(order):
                position[perm[shown]] = pos + 1
                named[perm[shown]] = True
            total += position
        return [i for i in order_by_scores(-total) if named[i]]
