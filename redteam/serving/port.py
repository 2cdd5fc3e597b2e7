"""The serving port: what a victim's consumers (attacks, metrics, defenses) may ask of it.

A recommender answers ``recommend(histories, k)`` with ranked item ids (and their scores, which
only the operator sees unless the endpoint exposes them). Metrics that need a score for every
item ask for it through :func:`full_scorer`, an explicit capability: a local model has it, a
recommender reached over the network or wrapped by a serving defense usually does not, and is
then evaluated from its top-k lists (HR/NDCG@K for K up to its list length, Agreement@K).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

Histories = Sequence[Sequence[int] | np.ndarray]
ScoreFn = Callable[[list[np.ndarray]], "torch.Tensor"]  # noqa: F821 - torch is imported lazily by users


@dataclass(frozen=True)
class TopK:
    """Ranked ids ``items[b]`` (best first, int64 ``[B, k]``) and their ``scores`` (``[B, k]``, or None
    when the recommender does not produce them)."""

    items: np.ndarray
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.items.ndim != 2:
            raise ValueError(f"TopK.items must be [batch, k], got shape {self.items.shape}")
        if self.scores is not None and self.scores.shape != self.items.shape:
            raise ValueError(f"TopK.scores {self.scores.shape} does not match items {self.items.shape}")


@runtime_checkable
class Recommender(Protocol):
    """Anything that ranks items for histories: a local model, a remote service, a middleware.

    ``n_items``: the catalog size (ids 1..n_items). ``max_k``: the longest list it returns.
    """

    n_items: int
    max_k: int

    def recommend(self, histories: Histories, k: int) -> TopK: ...


def full_scorer(recommender: object) -> ScoreFn | None:
    """The recommender's full-catalog score function (``[B, n_items + 1]``), or None when it
    only returns top-k lists. A middleware hides the inner scorer unless it declares that it
    leaves scores unchanged."""
    capability = getattr(recommender, "full_scorer", None)
    return capability() if callable(capability) else None


def check_ids(histories: Histories, n_items: int) -> list[np.ndarray]:
    """Histories as int64 arrays; :class:`~redteam.errors.InvalidQuery` for an id outside 1..n_items."""
    from redteam.errors import InvalidQuery

    cleaned = []
    for i, h in enumerate(histories):
        arr = np.asarray(h)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise InvalidQuery(f"history {i}: expected a flat list of integer item ids")
        arr = arr.astype(np.int64, copy=False)
        if arr.size and (arr.min() < 1 or arr.max() > n_items):
            bad = int(arr[(arr < 1) | (arr > n_items)][0])
            raise InvalidQuery(f"history {i}: item id {bad} is outside the catalog; item ids must be in 1..{n_items}")
        cleaned.append(arr)
    return cleaned
