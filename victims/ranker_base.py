"""The protocol of LLM and embedding rankers: a product list and a shopper request in, an order out.

Rankers are the victims of strategic-text-sequence attacks (Kumar & Lakkaraju, 2024). Unlike the
sequential recommenders they are not trained by the testbed: they wrap a pretrained language model
loaded from a local path (``redteam.lm``). The evaluation sees only :meth:`rank`; a white-box
attacker additionally builds an :class:`attacks.sts.objective.STSObjective` from the ranker's
model (stated in the scenario as the attacker's knowledge).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from redteam.catalog import Product
from redteam.params import Params


@runtime_checkable
class CatalogRanker(Protocol):
    alias: ClassVar[str]
    family: ClassVar[str]  # "ranker"
    params: Params

    def scores(self, products: Sequence[Product], request: str) -> np.ndarray:
        """One score per product, higher = ranked earlier (float64 ``[len(products)]``)."""

    def rank(self, products: Sequence[Product], request: str) -> list[int]:
        """Indices of ``products``, best first; a product the ranker never names is left out."""

    def identifier(self) -> dict[str, Any]:
        """The alias, the parameters and the loaded model's id."""


def order_by_scores(scores: np.ndarray) -> list[int]:
    """Best first; ties keep catalog order (a stable sort), so results do not depend on noise."""
    return [int(i) for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")]


def rank_of(order: Sequence[int], target: int, n_products: int) -> int:
    """1-based position of ``target`` in ``order``; ``n_products + 1`` when it is not named."""
    for pos, idx in enumerate(order):
        if idx == target:
            return pos + 1
    return n_products + 1
