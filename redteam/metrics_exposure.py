"""Exposure of target items in users' full-catalog rankings (promotion / push attacks)."""

from __future__ import annotations

import numpy as np
import torch

from redteam.metrics_ranks import check_scores, hit_rate, ndcg, target_ranks

__all__ = ["mean_over_targets", "target_exposure"]


def target_exposure(
    scores: torch.Tensor,
    histories: list[np.ndarray],
    targets: list[int],
    *,
    k: int,
    exclude_history: bool = False,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Exposure of each target item in the users' full-catalog rankings.

    For each target item ``t``, only the rows whose history does NOT already contain ``t``
    are kept; on those rows ``t`` is ranked with the pessimistic rule of
    :func:`target_ranks` and the result is ``(HR@k array, NDCG@k array)``, with
    ``HR@k = 1[rank < k]`` and ``NDCG@k = 1[rank < k] / log2(rank + 2)``. With
    ``exclude_history`` the other history items are dropped from each row's ranking.
    The arrays are empty when every row already holds ``t``.
    """
    scores = check_scores(scores)
    n_rows = scores.shape[0]
    if len(histories) != n_rows:
        raise ValueError(f"need one history per row ({n_rows}), got {len(histories)}")
    hist = [np.asarray(h, dtype=np.int64).reshape(-1) for h in histories]
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for t in targets:
        t = int(t)
        keep = np.array([not np.any(h == t) for h in hist], dtype=bool)
        if n_rows and keep.any():
            ranks = target_ranks(
                scores,
                np.full(n_rows, t, dtype=np.int64),
                exclude=hist if exclude_history else None,
            )[keep]
        else:
            ranks = np.zeros(0, dtype=np.int64)
        out[t] = (hit_rate(ranks, k), ndcg(ranks, k))
    return out


def mean_over_targets(per_target: dict[int, np.ndarray]) -> float:
    """Macro average: ``(1/|T|) * sum_t mean(per_target[t])``.

    Each target's values are averaged first, then the per-target means are averaged, so
    every target weighs the same whatever its number of eligible users. Targets with no
    values are skipped; ``nan`` when none has any.
    """
    means = [float(np.mean(v)) for v in per_target.values() if np.asarray(v).size > 0]
    return float(np.mean(means)) if means else float("nan")
