"""Top-k item lists per user (deterministic tie order) and the overlap of two such lists."""

from __future__ import annotations

import numpy as np
import torch

from redteam.metrics_ranks import check_scores, exclusion_index

__all__ = ["agreement_at_k", "expected_agreement_at_k", "topk_items"]


def topk_items(
    scores: torch.Tensor,
    k: int,
    *,
    exclude: list[np.ndarray] | None = None,
) -> torch.Tensor:
    """Top-``k`` item ids per row, best first, as a ``LongTensor [B, k]``.

    Items are ordered by score descending; equal scores are ordered by lower item id first
    (deterministic). NaN scores sort last. The padding id 0 and the ids in ``exclude[b]``
    are never returned. Raises ``ValueError`` when a row has fewer than ``k`` eligible
    items. ``scores`` is not modified.
    """
    scores = check_scores(scores)
    n_rows, n_cols = scores.shape
    n_items = n_cols - 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    eligible = torch.ones((n_rows, n_cols), dtype=torch.bool, device=scores.device)
    eligible[:, 0] = False
    excl = exclusion_index(exclude, n_rows, n_items, scores.device)
    if excl is not None:
        eligible[excl[0], excl[1]] = False
    if n_rows == 0:
        return torch.zeros((0, k), dtype=torch.long, device=scores.device)
    counts = eligible.sum(dim=1)
    if int(counts.min()) < k:
        raise ValueError(f"a row has only {int(counts.min())} eligible items, fewer than k={k}")

    fast = _topk_fast(scores, k, eligible)
    if fast is not None:
        return fast
    return _topk_stable(scores, k, eligible)


def _topk_fast(scores: torch.Tensor, k: int, eligible: torch.Tensor) -> torch.Tensor | None:
    """torch.topk, then ties inside the top k ordered by id; None when a row needs the exact path.

    The exact path is needed when a row's k-th and (k+1)-th eligible scores tie (which tied
    items get in would be arbitrary) or a non-finite score reaches its top k + 1.
    """
    n_rows, n_cols = scores.shape
    depth = min(k + 1, n_cols)
    key = scores.masked_fill(~eligible, float("-inf"))
    vals, ids = torch.topk(key, depth, dim=1)
    top_vals = vals[:, :k]
    if not bool(torch.isfinite(top_vals).all()):
        return None
    if depth > k and bool((vals[:, k - 1] == vals[:, k]).any()):
        return None
    by_id = torch.sort(ids[:, :k], dim=1).values
    order = torch.sort(scores.gather(1, by_id), dim=1, descending=True, stable=True).indices
    return by_id.gather(1, order)


def _topk_stable(scores: torch.Tensor, k: int, eligible: torch.Tensor) -> torch.Tensor:
    n_rows = scores.shape[0]
    nan_scores = torch.isnan(scores)
    has_nan = bool(nan_scores.any())
    key = torch.where(nan_scores, torch.full_like(scores, float("-inf")), scores) if has_nan else scores
    # A stable descending sort keeps equal scores in index order: lower item id first.
    order = torch.sort(key, dim=1, descending=True, stable=True).indices
    if has_nan:
        # Second stable pass: non-NaN items (in score order) before NaN items (in id order).
        is_number = (~nan_scores).to(torch.uint8).gather(1, order)
        order = order.gather(1, torch.sort(is_number, dim=1, descending=True, stable=True).indices)
    eligible_sorted = eligible.gather(1, order)
    # Keep the first k eligible entries of each row, in order.
    selected = eligible_sorted & (eligible_sorted.cumsum(dim=1) <= k)
    return order.masked_select(selected).view(n_rows, k)


def agreement_at_k(
    top_a: torch.Tensor | np.ndarray, top_b: torch.Tensor | np.ndarray, k: int
) -> np.ndarray:
    """Per-row overlap of two top-k lists: ``|topk(a) ∩ topk(b)| / k``.

    Uses the first ``k`` columns of each ``[B, >=k]`` array (rows are assumed free of
    duplicate ids, as ``topk_items`` returns them). Returns a float64 array ``[B]``.
    """
    a = top_a.detach().cpu().numpy() if isinstance(top_a, torch.Tensor) else np.asarray(top_a)
    b = top_b.detach().cpu().numpy() if isinstance(top_b, torch.Tensor) else np.asarray(top_b)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"top lists must be [B, k] with equal B, got {a.shape} and {b.shape}")
    if a.shape[1] < k or b.shape[1] < k:
        raise ValueError(f"top lists have fewer than k={k} columns: {a.shape}, {b.shape}")
    a, b = a[:, :k], b[:, :k]
    common = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
    return common.astype(np.float64) / k


def expected_agreement_at_k(scores: torch.Tensor, reference_top: np.ndarray, k: int, *,
                            exclude: list[np.ndarray] | None = None) -> np.ndarray:
    """Per-row Agreement@K of a scorer with a reference top-k list, ties in the scorer drawn at random.

    ``|topk(scores) ∩ reference_top[:, :k]| / k`` where the items tied at the scorer's k-th score
    enter its top k in a uniformly random order: the expected overlap is
    ``|above ∩ R| + (k - |above|) * |tied ∩ R| / |tied|`` (``above``: eligible items scored strictly
    higher than the k-th; ``tied``: eligible items scored equal to it). Without ties it equals
    :func:`agreement_at_k` of :func:`topk_items`; with ties it does not reward a scorer whose tied
    items happen to come first by id in both lists (a collapsed surrogate giving every item the same
    score agrees with any list only by chance). Padding and ``exclude[b]`` are never eligible.
    """
    scores = check_scores(scores).to(torch.float64)
    ref = np.asarray(reference_top)[:, :k]
    n_rows, n_cols = scores.shape
    eligible = torch.ones((n_rows, n_cols), dtype=torch.bool)
    eligible[:, 0] = False
    excl = exclusion_index(exclude, n_rows, n_cols - 1, scores.device)
    if excl is not None:
        eligible[excl[0], excl[1]] = False
    key = scores.masked_fill(~eligible | torch.isnan(scores), float("-inf"))
    kth = torch.topk(key, k, dim=1).values[:, -1:]
    above, tied = (key > kth) & eligible, (key == kth) & eligible
    in_ref = torch.zeros((n_rows, n_cols), dtype=torch.bool)
    in_ref.scatter_(1, torch.as_tensor(ref, dtype=torch.long).clamp(0, n_cols - 1), True)
    n_above = above.sum(1).to(torch.float64)
    expected = (above & in_ref).sum(1) + (k - n_above) * (tied & in_ref).sum(1) / tied.sum(1).clamp(min=1)
    return (expected / k).numpy()
