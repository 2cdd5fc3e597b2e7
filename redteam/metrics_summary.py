"""A metric's mean with its bootstrap interval (:class:`MetricValue`), and HR/NDCG/MRR at several K."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from redteam.metrics_bootstrap import bootstrap_ci
from redteam.metrics_ranks import hit_rate, mrr, ndcg

__all__ = ["MetricValue", "ranking_metrics", "summarize"]


@dataclass(frozen=True)
class MetricValue:
    """A metric's mean over users with its bootstrap interval and the number of users."""

    value: float
    ci_low: float
    ci_high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize(
    values: np.ndarray,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> MetricValue:
    """:func:`bootstrap_ci` of ``values`` packed as a :class:`MetricValue` (``n`` = rows)."""
    mean, low, high = bootstrap_ci(values, rng=rng, n_resamples=n_resamples, confidence=confidence)
    return MetricValue(value=mean, ci_low=low, ci_high=high, n=int(np.asarray(values).size))


def ranking_metrics(
    ranks: np.ndarray,
    ks: list[int],
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> dict[str, MetricValue]:
    """``hr@K``, ``ndcg@K`` and ``mrr@K`` for each ``K`` in ``ks``, each with a bootstrap CI.

    Keys come in the order ``hr@K1, ndcg@K1, mrr@K1, hr@K2, ...``.
    """
    out: dict[str, MetricValue] = {}
    for k in ks:
        for name, fn in (("hr", hit_rate), ("ndcg", ndcg), ("mrr", mrr)):
            out[f"{name}@{k}"] = summarize(
                fn(ranks, k), rng=rng, n_resamples=n_resamples, confidence=confidence
            )
    return out
