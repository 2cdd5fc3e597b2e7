"""The black-box query API every attack goes through.

It returns ranked item ids (and scores only when the scenario exposes them), counts each
history as one query, enforces the query budget before answering, and logs queries for
defenses that audit traffic later. The victim is held in a closure, not an attribute: an
attack handed this object has no attribute path to the model. (This is a discipline boundary
inside one Python process, not a sandbox against deliberately malicious code.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from redteam.errors import BudgetExceeded, ConfigError

ScoreFn = Callable[[list[np.ndarray]], torch.Tensor]


@dataclass(frozen=True)
class QueryRecord:
    """One logged query: the history and the ids returned (first ``log_topk`` of them)."""

    history: tuple[int, ...]
    returned: tuple[int, ...]


@dataclass(frozen=True)
class Answer:
    """A batch answer: ``items[b]`` ranked ids; ``scores[b]`` only when scores are exposed."""

    items: list[list[int]]
    scores: list[list[float]] | None = None


class BlackBoxAPI:
    """Top-k recommendations for histories, with a budget and a query log."""

    __slots__ = ("_answer", "topk_default", "budget", "expose_scores", "queries_used", "log", "log_topk", "batch_size")

    def __init__(
        self,
        score_fn: ScoreFn,
        *,
        n_items: int,
        topk: int = 100,
        budget: int | None = None,
        expose_scores: bool = False,
        exclude_history: bool = False,
        batch_size: int = 512,
        log_queries: bool = True,
        log_topk: int = 10,
    ) -> None:
        if topk < 1 or topk > n_items:
            raise ConfigError(f"api.topk: must be between 1 and the catalog size {n_items}, got {topk}")
        if budget is not None and budget < 0:
            raise ConfigError(f"api.budget: must be >= 0, got {budget}")
        self.topk_default = topk
        self.budget = budget
        self.expose_scores = expose_scores
        self.queries_used = 0
        self.log: list[QueryRecord] | None = [] if log_queries else None
        self.log_topk = log_topk
        self.batch_size = batch_size
        self._answer = _make_answerer(score_fn, n_items=n_items, exclude_history=exclude_history)

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries_used

    def query(self, histories: Sequence[Sequence[int] | np.ndarray], k: int | None = None) -> Answer:
        """Ranked ids (and scores if exposed) for each history; one query per history."""
        k = self.topk_default if k is None else k
        if k < 1 or k > self.topk_default:
            raise ConfigError(f"api: k must be between 1 and the API's top-k {self.topk_default}, got {k}")
        cleaned = [np.asarray(h, dtype=np.int64) for h in histories]
        if self.budget is not None and self.queries_used + len(cleaned) > self.budget:
            raise BudgetExceeded(
                f"query budget exceeded: {self.queries_used} used + {len(cleaned)} asked > budget {self.budget}"
            )
        items: list[list[int]] = []
        scores: list[list[float]] = []
        for start in range(0, len(cleaned), self.batch_size):
            ids, vals = self._answer(cleaned[start : start + self.batch_size], k)
            items.extend(ids.tolist())
            if self.expose_scores:
                scores.extend(vals.tolist())
        self.queries_used += len(cleaned)
        if self.log is not None:
            self.log.extend(
                QueryRecord(tuple(h.tolist()), tuple(r[: self.log_topk])) for h, r in zip(cleaned, items)
            )
        return Answer(items, scores if self.expose_scores else None)

    def topk(self, histories: Sequence[Sequence[int] | np.ndarray], k: int | None = None) -> list[list[int]]:
        """Ranked item ids only."""
        return self.query(histories, k).items

    def __reduce__(self):  # no pickling or copying a way around the closure
        raise TypeError("BlackBoxAPI cannot be pickled or copied")

    def __repr__(self) -> str:
        return f"BlackBoxAPI(topk={self.topk_default}, budget={self.budget}, used={self.queries_used}, scores={self.expose_scores})"


def _make_answerer(score_fn: ScoreFn, *, n_items: int, exclude_history: bool) -> Callable[[list[np.ndarray], int], tuple[torch.Tensor, torch.Tensor]]:
    from redteam.metrics import topk_items

    def answer(histories: list[np.ndarray], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        for h in histories:
            if len(h) and (h.min() < 1 or h.max() > n_items):
                raise ValueError(f"api: item ids must be in 1..{n_items}")
        with torch.no_grad():
            scores = score_fn(histories)
        ids = topk_items(scores, k, exclude=histories if exclude_history else None)
        return ids, torch.gather(scores, 1, ids)

    return answer
