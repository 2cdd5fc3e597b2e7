"""The metered endpoint: the only handle an attacker gets on a victim.

It answers top-k queries from any :class:`~redteam.serving.port.Recommender` (a local model, a
chain of serving defenses, a remote service), counts each history as one query per caller,
refuses a batch that would go past the caller's budget before answering it, returns scores only
when the operator exposes them, and logs every query for defenses that audit traffic.

Sealed: the budget, the counters, the top-k, score exposure and the log live in a closure; the
object itself has no writable attribute (``api.queries_used = 0`` raises), the log is handed out
as an immutable tuple, and the object cannot be pickled or copied. Inside one Python process this
is a discipline boundary against honest mistakes, not a sandbox against code that reads closure
cells on purpose; ``redteam serve`` puts a process boundary there.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redteam.errors import BudgetExceeded, ConfigError, InvalidQuery
from redteam.serving.port import Histories, Recommender, check_ids

DEFAULT_CALLER = "attacker"


@dataclass(frozen=True)
class QueryRecord:
    """One logged query: the history, the ids returned (first ``log_topk`` of them), the caller."""

    history: tuple[int, ...]
    returned: tuple[int, ...]
    caller: str = DEFAULT_CALLER


@dataclass(frozen=True)
class Answer:
    """A batch answer: ``items[b]`` ranked ids; ``scores[b]`` only when scores are exposed."""

    items: list[list[int]]
    scores: list[list[float]] | None = None


class _Meter:
    """The endpoint's state; only the closures built in :func:`_operations` hold a reference."""

    def __init__(self, inner: Recommender, topk: int, budget: int | None, expose_scores: bool,
                 log_queries: bool, log_topk: int) -> None:
        self.inner, self.topk, self.budget, self.expose_scores = inner, topk, budget, expose_scores
        self.used: dict[str, int] = {}
        self.log: list[QueryRecord] | None = [] if log_queries else None
        self.log_topk = log_topk


def _operations(meter: _Meter) -> dict[str, Callable[..., Any]]:
    def query(histories: Histories, k: int | None, caller: str) -> Answer:
        k = meter.topk if k is None else k
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1 or k > meter.topk:
            raise ConfigError(f"api: k must be between 1 and the API's top-k {meter.topk}, got {k!r}")
        cleaned = check_ids(histories, meter.inner.n_items)
        used = meter.used.get(caller, 0)
        if meter.budget is not None and used + len(cleaned) > meter.budget:
            raise BudgetExceeded(f"query budget exceeded: {used} used + {len(cleaned)} asked > budget {meter.budget}")
        top = meter.inner.recommend(cleaned, int(k))
        if len(top.items) != len(cleaned):
            raise InvalidQuery(f"api: the recommender answered {len(top.items)} of {len(cleaned)} histories")
        items = top.items.tolist()
        scores = top.scores.tolist() if meter.expose_scores and top.scores is not None else None
        meter.used[caller] = used + len(cleaned)
        if meter.log is not None:
            meter.log.extend(QueryRecord(tuple(h.tolist()), tuple(r[: meter.log_topk]), caller)
                             for h, r in zip(cleaned, items))
        return Answer(items, scores if meter.expose_scores else None)

    def view(name: str, caller: str = DEFAULT_CALLER) -> Any:
        if name == "used":
            return meter.used.get(caller, 0)
        if name == "usage":
            return dict(meter.used)
        if name == "log":
            return None if meter.log is None else tuple(meter.log)
        return getattr(meter, name) if name in ("topk", "budget", "expose_scores", "log_topk") else None

    def n_items() -> int:
        return meter.inner.n_items

    return {"query": query, "view": view, "n_items": n_items}


class MeteredEndpoint:
    """Budgeted, logged top-k queries against ``inner`` (see the module docstring)."""

    __slots__ = ("_ops",)

    def __init__(self, inner: Recommender, *, topk: int = 100, budget: int | None = None, expose_scores: bool = False,
                 log_queries: bool = True, log_topk: int = 10) -> None:
        if topk < 1 or topk > min(inner.n_items, inner.max_k):
            raise ConfigError(f"api.topk: must be between 1 and the catalog size {inner.n_items}"
                              f"{'' if inner.max_k >= inner.n_items else f' (the service returns at most {inner.max_k})'}, got {topk}")
        if budget is not None and budget < 0:
            raise ConfigError(f"api.budget: must be >= 0, got {budget}")
        ops = _operations(_Meter(inner, topk, budget, expose_scores, log_queries, log_topk))
        object.__setattr__(self, "_ops", tuple(ops[name] for name in ("query", "view", "n_items")))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: '{name}' cannot be set")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: '{name}' cannot be deleted")

    def query(self, histories: Histories, k: int | None = None, *, caller: str = DEFAULT_CALLER) -> Answer:
        """Ranked ids (and scores if exposed) for each history; one query per history."""
        return self._ops[0](histories, k, caller)

    def topk(self, histories: Histories, k: int | None = None, *, caller: str = DEFAULT_CALLER) -> list[list[int]]:
        """Ranked item ids only."""
        return self.query(histories, k, caller=caller).items

    @property
    def n_items(self) -> int:
        return self._ops[2]()

    @property
    def topk_default(self) -> int:
        return self._ops[1]("topk")

    @property
    def budget(self) -> int | None:
        return self._ops[1]("budget")

    @property
    def expose_scores(self) -> bool:
        return self._ops[1]("expose_scores")

    @property
    def log_topk(self) -> int:
        return self._ops[1]("log_topk")

    @property
    def queries_used(self) -> int:
        """Queries charged to the default caller."""
        return self._ops[1]("used")

    def used_by(self, caller: str) -> int:
        return self._ops[1]("used", caller)

    @property
    def usage(self) -> dict[str, int]:
        """Queries charged per caller (a copy)."""
        return self._ops[1]("usage")

    @property
    def remaining(self) -> int | None:
        budget = self.budget
        return None if budget is None else budget - self.queries_used

    @property
    def log(self) -> tuple[QueryRecord, ...] | None:
        """Every answered query, oldest first (an immutable snapshot; None when logging is off)."""
        return self._ops[1]("log")

    def __reduce__(self):  # no pickling or copying a way around the closure
        raise TypeError(f"{type(self).__name__} cannot be pickled or copied")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(topk={self.topk_default}, budget={self.budget}, used={self.queries_used}, "
                f"scores={self.expose_scores})")
