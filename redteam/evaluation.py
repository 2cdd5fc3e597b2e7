"""Clean-accuracy evaluation of a scorer on the test users: full ranking, per-user values."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from redteam.metrics import hit_rate, mrr, ndcg, rank_in_batches
from redteam.progress import unsized_stage
from redteam.results import CI_METHOD

ScoreFn = Callable[[list[np.ndarray]], torch.Tensor]


def ranking_values(
    score_fn: ScoreFn,
    histories: list[np.ndarray],
    targets: np.ndarray,
    *,
    ks: list[int],
    exclude_history: bool = False,
) -> dict[str, np.ndarray]:
    """Per-user HR@K, NDCG@K and MRR@K for every K (full ranking over the catalog).

    Inside a progress stage opened without a total, the stage shows the users scored so far.
    """
    stage, total, done = unsized_stage(), len(histories), 0

    def scored(chunk: list[np.ndarray]) -> torch.Tensor:
        nonlocal done
        scores = score_fn(chunk)
        done += len(chunk)
        stage.update(completed=done, total=total, status=f"{done:,} of {total:,} users scored")
        return scores

    ranks = rank_in_batches(scored, histories, targets, exclude_history=exclude_history)
    return values_at(ranks, ks)


def values_at(ranks: np.ndarray, ks: list[int]) -> dict[str, np.ndarray]:
    """Per-user HR@K, NDCG@K and MRR@K from 0-based ranks, for every K."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"hr@{k}"] = hit_rate(ranks, k)
        out[f"ndcg@{k}"] = ndcg(ranks, k)
        out[f"mrr@{k}"] = mrr(ranks, k)
    return out


def protocol(*, n_items: int, n_users: int, ks: list[int], exclude_history: bool, seeds: list[int],
             bootstrap: int, confidence: float, attacker_users: int = 0) -> dict[str, object]:
    """The evaluation protocol printed in every report header and stored in results.json."""
    return {
        "split": "leave-one-out: last item = test, second-to-last = validation, rest = training",
        "ranking": f"full ranking over all {n_items} items (no sampled negatives)",
        "excluded": "padding + the user's own history" if exclude_history else "padding only",
        "ties": "broken against the target (pessimistic)",
        "k": ks,
        "test_users": n_users,
        "attacker_users": attacker_users,
        "seeds": seeds,
        "ci": f"{int(confidence * 100)}% intervals, {bootstrap} resamples; " + CI_METHOD,
    }


def recommender_ranking_values(recommender: object, histories: list[np.ndarray], targets: np.ndarray, *,
                               ks: list[int], exclude_history: bool = False) -> dict[str, np.ndarray]:
    """:func:`ranking_values` for any recommender: a full ranking when it offers the full-scoring
    capability, else from its top-k lists (HR/NDCG/MRR@K for K up to its list length)."""
    from redteam.serving.port import full_scorer

    score_fn = full_scorer(recommender)
    if score_fn is not None:
        return ranking_values(score_fn, histories, targets, ks=ks, exclude_history=exclude_history)
    return topk_ranking_values(recommender, histories, targets, ks=ks, exclude_history=exclude_history)


def topk_ranking_values(recommender: object, histories: list[np.ndarray], targets: np.ndarray, *, ks: list[int],
                        exclude_history: bool = False, batch: int = 512) -> dict[str, np.ndarray]:
    """HR/NDCG/MRR@K from the recommender's returned lists: a target past the list is a miss.
    With ``exclude_history`` the user's own items are dropped from the list before ranking."""
    from redteam.errors import ConfigError

    max_k = int(getattr(recommender, "max_k"))
    kmax = max(ks)
    if kmax > max_k:
        raise ConfigError(f"eval.k: {kmax} is longer than the lists this victim returns ({max_k}); "
                          "a top-k-only victim is evaluated at K up to its list length")
    asked = max_k if exclude_history else kmax
    ranks = np.empty(len(histories), dtype=np.int64)
    miss = np.iinfo(np.int64).max // 2
    for start in range(0, len(histories), batch):
        chunk = histories[start : start + batch]
        lists = recommender.recommend(chunk, asked).items
        for row, (h, items) in enumerate(zip(chunk, lists)):
            if exclude_history:
                items = items[~np.isin(items, h)]
            hit = np.flatnonzero(items[:kmax] == targets[start + row])
            ranks[start + row] = int(hit[0]) if hit.size else miss
    return values_at(ranks, ks)
