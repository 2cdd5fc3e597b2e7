"""The typed exchange between stages: products one stage makes and a later stage consumes.

A stage declares the product types it ``produces`` and ``consumes``; the runner orders stages so
that every producer runs before its consumers. Products are frozen dataclasses keyed by what
they belong to, so a consumer asks for exactly the one it needs and gets a clear error otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

P = TypeVar("P")


@dataclass(frozen=True)
class SurrogateKey:
    """Which surrogate: stolen from victim ``victim`` (run seed ``seed``) by attack ``attack``
    (its label) with attacker seed ``attack_seed``, through the serving defense ``defense``
    (its label; ``none``: the undefended endpoint)."""

    victim: str
    seed: int
    attack_seed: int
    attack: str
    defense: str = "none"


@dataclass(frozen=True)
class StolenSurrogate:
    """A model the attacker stole through the black-box API (scored like a victim)."""

    key: SurrogateKey
    model: Any
    queries: int


class Exchange:
    """Products of this run, by type and key."""

    def __init__(self) -> None:
        self._items: dict[tuple[type, Any], Any] = {}

    def put(self, product: Any) -> None:
        self._items[(type(product), product.key)] = product

    def get(self, kind: type[P], key: Any) -> P | None:
        return self._items.get((kind, key))
