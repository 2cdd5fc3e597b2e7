"""Pessimistic full-catalog ranks of target items and the per-user metrics read off them.

The ranking conventions (padding column 0, pessimistic ties, NaN handling) are documented in
:mod:`redteam.metrics`. Also the score-tensor checks shared by the other ``metrics_*`` modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = ["check_scores", "exclusion_index", "hit_rate", "mrr", "ndcg", "rank_in_batches", "target_ranks"]


def check_scores(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` checked to be a ``[B, N + 1]`` tensor, as a detached float tensor (not a copy)."""
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"scores must be a torch.Tensor, got {type(scores).__name__}")
    if scores.dim() != 2:
        raise ValueError(f"scores must have shape [B, N + 1], got {tuple(scores.shape)}")
    if scores.shape[1] < 2:
        raise ValueError("scores must have at least one real item column besides padding")
    if scores.is_complex() or not scores.is_floating_point():
        scores = scores.float()
    return scores.detach()


def exclusion_index(
    exclude: Sequence[np.ndarray] | None, n_rows: int, n_items: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Flattened (row, item) index pairs of the excluded items; padding ids (0) are dropped."""
    if exclude is None:
        return None
    if len(exclude) != n_rows:
        raise ValueError(f"exclude must have one entry per row ({n_rows}), got {len(exclude)}")
    arrays = [np.asarray(e, dtype=np.int64).reshape(-1) for e in exclude]
    lengths = np.array([a.size for a in arrays], dtype=np.int64)
    if lengths.sum() == 0:
        return None
    cols = np.concatenate(arrays)
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)
    if cols.min() < 0 or cols.max() > n_items:
        raise ValueError(f"excluded item ids must lie in 0..{n_items} (0 = padding is ignored)")
    keep = cols != 0
    return (
        torch.from_numpy(rows[keep]).to(device),
        torch.from_numpy(cols[keep]).to(device),
    )


def _as_ranks(ranks: np.ndarray | Sequence[int], k: int) -> np.ndarray:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    arr = np.asarray(ranks)
    if arr.ndim != 1:
        raise ValueError(f"ranks must be a 1-D array, got shape {arr.shape}")
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0):
        raise ValueError("ranks must be non-negative integers")
    return arr.astype(np.int64, copy=False)


def target_ranks(
    scores: torch.Tensor,
    targets: torch.Tensor | np.ndarray,
    *,
    exclude: list[np.ndarray] | None = None,
) -> np.ndarray:
    """0-based pessimistic rank of each row's target among the items ``1..N``.

    For row ``b`` with target ``t`` and scores ``s``::

        rank_b = #{ j in 1..N : j != t, j not in exclude[b], s_j >= s_t }

    Ties count against the target (a constant scorer gets the worst rank, never the best).
    The padding column 0 never counts, whatever its score. ``exclude[b]`` lists item ids to
    drop from row ``b``'s ranking (for instance the user's history); the row's own target is
    never dropped, and padding ids (0) in ``exclude`` are ignored. NaN scores are held against
    the target (see the module docstring). ``scores`` is not modified.

    Returns an int64 array of shape ``[B]``.
    """
    scores = check_scores(scores)
    n_rows, n_cols = scores.shape
    n_items = n_cols - 1
    tgt = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets)
    tgt = tgt.reshape(-1).to(device=scores.device, dtype=torch.long)
    if tgt.numel() != n_rows:
        raise ValueError(f"need one target per row ({n_rows}), got {tgt.numel()}")
    if n_rows == 0:
        return np.zeros(0, dtype=np.int64)
    if int(tgt.min()) < 1 or int(tgt.max()) > n_items:
        raise ValueError(f"targets must be item ids in 1..{n_items}")

    row_idx = torch.arange(n_rows, device=scores.device)
    target_scores = scores[row_idx, tgt].unsqueeze(1)
    ahead = scores >= target_scores  # fresh bool tensor: the input is left untouched
    nan_scores = torch.isnan(scores)
    if bool(nan_scores.any()):
        ahead |= nan_scores  # a NaN item counts as ahead of the target
        ahead |= torch.isnan(target_scores)  # a NaN target is behind every candidate
    ahead[:, 0] = False  # padding never counts
    excl = exclusion_index(exclude, n_rows, n_items, scores.device)
    if excl is not None:
        ahead[excl[0], excl[1]] = False
    ahead[row_idx, tgt] = False  # the target is not ahead of itself (and is never excluded)
    return ahead.sum(dim=1).cpu().numpy().astype(np.int64)


def hit_rate(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-user hit rate: ``HR@k = 1[rank < k]`` (float64 array)."""
    r = _as_ranks(ranks, k)
    return (r < k).astype(np.float64)


def ndcg(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG with one relevant item: ``NDCG@k = 1 / log2(rank + 2)`` if ``rank < k`` else 0."""
    r = _as_ranks(ranks, k)
    return np.where(r < k, 1.0 / np.log2(r.astype(np.float64) + 2.0), 0.0)


def mrr(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-user reciprocal rank: ``MRR@k = 1 / (rank + 1)`` if ``rank < k`` else 0."""
    r = _as_ranks(ranks, k)
    return np.where(r < k, 1.0 / (r.astype(np.float64) + 1.0), 0.0)


def rank_in_batches(
    score_fn: Callable[[list[np.ndarray]], torch.Tensor],
    histories: list[np.ndarray],
    targets: np.ndarray,
    *,
    batch_size: int = 512,
    exclude_history: bool = False,
) -> np.ndarray:
    """Pessimistic full-catalog ranks of ``targets``, scoring ``batch_size`` users at a time.

    ``score_fn(histories[i:j])`` must return scores ``[j - i, N + 1]``; only one chunk of
    scores is alive at a time. With ``exclude_history`` each user's history items are
    dropped from that user's ranking (except the target itself). Runs under
    ``torch.no_grad()``. Returns int64 ranks ``[len(histories)]``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    tgt = np.asarray(targets, dtype=np.int64).reshape(-1)
    if tgt.size != len(histories):
        raise ValueError(f"need one target per history ({len(histories)}), got {tgt.size}")
    parts: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, len(histories), int(batch_size)):
            chunk = list(histories[start : start + int(batch_size)])
            scores = score_fn(chunk)
            if scores.dim() != 2 or scores.shape[0] != len(chunk):
                raise ValueError(
                    f"score_fn returned shape {tuple(scores.shape)} for {len(chunk)} histories"
                )
            parts.append(
                target_ranks(
                    scores,
                    tgt[start : start + len(chunk)],
                    exclude=chunk if exclude_history else None,
                )
            )
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
