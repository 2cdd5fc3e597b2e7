"""The attacker's exposure signal: where its item sits in the API's answers to its own histories."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, order=True)
class ProbeScore:
    """Ordered by hits (probes whose top-k holds the item), then by mean reciprocal rank."""

    hits: int
    mrr: float


@dataclass
class ProbeBudget:
    """The queries one listing may still spend: ``limit`` (None: unlimited) counted from the
    endpoint's use when the listing's rewrite began."""

    api: object
    limit: int | None
    start: int = 0

    @classmethod
    def of(cls, api: object, limit: int | None) -> "ProbeBudget":
        return cls(api, limit, int(api.queries_used))

    def allows(self, queries: int) -> bool:
        return self.limit is None or int(self.api.queries_used) - self.start + queries <= self.limit


def probe_exposure(api: object, probes: list[np.ndarray], item: int) -> ProbeScore:
    """Ask the API for every probe's top-k list (one metered query per probe) and score ``item``."""
    found = np.asarray(api.topk(probes)) == item
    ranks = np.where(found.any(1), found.argmax(1) + 1, 0)
    return ProbeScore(int(found.any(1).sum()), float(np.where(ranks > 0, 1.0 / np.maximum(ranks, 1), 0.0).mean()))
