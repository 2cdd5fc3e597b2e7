"""Clean-accuracy evaluation of a scorer on the test users: full ranking, per-user values."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from redteam.metrics import hit_rate, mrr, ndcg, rank_in_batches
from redteam.progress import unsized_stage

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
        "ci": f"{int(confidence * 100)}% percentile bootstrap over users, {bootstrap} resamples",
    }
