"""Full-catalog ranking metrics, exposure of target items, and bootstrap confidence intervals.

This module is the public face of the metrics: every name below is importable from here. The code
lives in one module per job:

* :mod:`redteam.metrics_ranks`: pessimistic target ranks, HR / NDCG / MRR, batched ranking;
* :mod:`redteam.metrics_topk`: top-k item lists and the agreement of two of them;
* :mod:`redteam.metrics_exposure`: exposure of target items (promotion / push attacks);
* :mod:`redteam.metrics_bootstrap`: bootstrap intervals and paired / unpaired differences;
* :mod:`redteam.metrics_summary`: :class:`MetricValue` and HR / NDCG / MRR at several K.

Conventions
-----------
* Items are ids ``1..N``; id ``0`` is padding. A batch of model scores is a float tensor of
  shape ``[B, N + 1]`` whose column 0 (padding) is never ranked, whatever its score.
* Evaluation is a FULL ranking over the whole catalog: no sampled negatives.
* Ranks are 0-based: rank 0 means the target is the top item.
* Ties are broken AGAINST the target (pessimistic ranking)::

      rank(t) = #{ j in 1..N, j != t, j not excluded : s_j >= s_t }

  so a constant scorer puts every target at rank ``N - 1 - |excluded|`` (the worst place)
  instead of looking good by accident of an index order. A NaN target score is ranked last
  (every other candidate counts as ahead of it); a NaN score of another item also counts as
  ahead of the target (an unknown order is held against the target).
* Input score tensors are never modified.
"""

from __future__ import annotations

from redteam.metrics_bootstrap import (
    bootstrap_ci,
    bootstrap_ci_grouped,
    paired_bootstrap_diff,
    unpaired_bootstrap_diff,
)
from redteam.metrics_exposure import mean_over_targets, target_exposure
from redteam.metrics_ranks import hit_rate, mrr, ndcg, rank_in_batches, target_ranks
from redteam.metrics_summary import MetricValue, ranking_metrics, summarize
from redteam.metrics_topk import agreement_at_k, topk_items

__all__ = [
    "MetricValue",
    "agreement_at_k",
    "bootstrap_ci",
    "bootstrap_ci_grouped",
    "hit_rate",
    "mean_over_targets",
    "mrr",
    "ndcg",
    "paired_bootstrap_diff",
    "rank_in_batches",
    "ranking_metrics",
    "summarize",
    "target_exposure",
    "target_ranks",
    "topk_items",
    "unpaired_bootstrap_diff",
]
