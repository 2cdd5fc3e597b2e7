"""Full-catalog ranking metrics, exposure of target items, and bootstrap confidence intervals.

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

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

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

# Bound on the number of int64 indices drawn at once by the bootstrap (about 32 MiB).
_BOOTSTRAP_CHUNK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _check_scores(scores: torch.Tensor) -> torch.Tensor:
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"scores must be a torch.Tensor, got {type(scores).__name__}")
    if scores.dim() != 2:
        raise ValueError(f"scores must have shape [B, N + 1], got {tuple(scores.shape)}")
    if scores.shape[1] < 2:
        raise ValueError("scores must have at least one real item column besides padding")
    if scores.is_complex() or not scores.is_floating_point():
        scores = scores.float()
    return scores.detach()


def _exclusion_index(
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


def _to_numpy_1d(values: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


# --------------------------------------------------------------------------------------
# Ranks
# --------------------------------------------------------------------------------------


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
    scores = _check_scores(scores)
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
    excl = _exclusion_index(exclude, n_rows, n_items, scores.device)
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
    scores = _check_scores(scores)
    n_rows, n_cols = scores.shape
    n_items = n_cols - 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    eligible = torch.ones((n_rows, n_cols), dtype=torch.bool, device=scores.device)
    eligible[:, 0] = False
    excl = _exclusion_index(exclude, n_rows, n_items, scores.device)
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


# --------------------------------------------------------------------------------------
# Target-item exposure (promotion / push attacks)
# --------------------------------------------------------------------------------------


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
    scores = _check_scores(scores)
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


# --------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------


def _check_bootstrap_args(n_resamples: int, confidence: float) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 0:
        raise ValueError(f"n_resamples must be a non-negative integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def _bootstrap_means(values: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """Means of ``n_resamples`` resamples (with replacement, same size) of ``values``.

    Index matrices are drawn in chunks of at most ``_BOOTSTRAP_CHUNK_ELEMENTS`` entries.
    """
    n = values.size
    rows_per_chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // n)
    means = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, rows_per_chunk):
        stop = min(n_resamples, start + rows_per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    return means


def _percentile_interval(means: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_ci(
    values: np.ndarray,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap confidence interval over rows: ``(mean, low, high)``.

    ``mean = (1/n) sum_i v_i``; each of the ``R = n_resamples`` resamples draws ``n`` rows
    with replacement and takes its mean ``m_r``; with ``alpha = 1 - confidence``,
    ``low = quantile({m_r}, alpha/2)`` and ``high = quantile({m_r}, 1 - alpha/2)``.
    ``n_resamples=0`` gives ``(mean, mean, mean)``; an empty array gives ``(nan, nan, nan)``.
    """
    _check_bootstrap_args(n_resamples, confidence)
    v = _to_numpy_1d(values, "values")
    if v.size == 0:
        nan = float("nan")
        return nan, nan, nan
    mean = float(v.mean())
    if n_resamples == 0:
        return mean, mean, mean
    low, high = _percentile_interval(_bootstrap_means(v, rng, int(n_resamples)), confidence)
    return mean, low, high


def bootstrap_ci_grouped(
    values: np.ndarray,
    groups: np.ndarray,
    clusters: np.ndarray | None = None,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Macro mean over groups with a cluster-bootstrap interval: ``(mean, low, high)``.

    ``values[i]`` belongs to group ``groups[i]`` (a target item, say) and to cluster
    ``clusters[i]`` (the user it was measured on; one user may appear in several groups). The
    point value is :func:`mean_over_targets`' macro average: each group's mean, then the mean
    of those, so every group weighs the same. Each of the ``R`` resamples draws as many
    clusters as there are, with replacement, and recomputes every group's mean over the drawn
    clusters' values (a cluster drawn twice counts twice), then the macro mean; a group none of
    whose clusters was drawn is left out of that resample. Resampling whole clusters keeps the
    correlation between one user's values for different targets. ``clusters=None`` makes every
    value its own cluster. ``n_resamples=0`` gives ``(mean, mean, mean)``; empty input NaNs.
    """
    _check_bootstrap_args(n_resamples, confidence)
    v = _to_numpy_1d(values, "values")
    g = np.asarray(groups).reshape(-1)
    c = np.arange(v.size) if clusters is None else np.asarray(clusters).reshape(-1)
    if g.size != v.size or c.size != v.size:
        raise ValueError(f"groups and clusters need one entry per value ({v.size}), got {g.size} and {c.size}")
    nan = float("nan")
    if v.size == 0:
        return nan, nan, nan
    _, g_idx = np.unique(g, return_inverse=True)
    _, c_idx = np.unique(c, return_inverse=True)
    n_groups, n_clusters = int(g_idx.max()) + 1, int(c_idx.max()) + 1
    sums = np.zeros((n_clusters, n_groups))
    counts = np.zeros((n_clusters, n_groups))
    np.add.at(sums, (c_idx, g_idx), v)
    np.add.at(counts, (c_idx, g_idx), 1.0)
    mean = float(np.mean(sums.sum(axis=0) / counts.sum(axis=0)))
    if n_resamples == 0:
        return mean, mean, mean
    rows_per_chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // n_clusters)
    macro = np.empty(int(n_resamples), dtype=np.float64)
    for start in range(0, int(n_resamples), rows_per_chunk):
        stop = min(int(n_resamples), start + rows_per_chunk)
        r = stop - start
        drawn = rng.integers(0, n_clusters, size=(r, n_clusters))
        drawn += (np.arange(r) * n_clusters)[:, None]
        weight = np.bincount(drawn.ravel(), minlength=r * n_clusters).reshape(r, n_clusters).astype(np.float64)
        num, den = weight @ sums, weight @ counts
        with np.errstate(invalid="ignore", divide="ignore"):
            per_group = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        seen = ~np.isnan(per_group)
        macro[start:stop] = np.where(seen.any(axis=1), np.nansum(per_group, axis=1) / np.maximum(seen.sum(axis=1), 1), np.nan)
    macro = macro[~np.isnan(macro)]
    if macro.size == 0:
        return mean, nan, nan
    low, high = _percentile_interval(macro, confidence)
    return mean, low, high


def paired_bootstrap_diff(
    a: np.ndarray,
    b: np.ndarray,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> tuple[float, float, float, float]:
    """Paired bootstrap of ``d_i = a_i - b_i``: ``(mean_diff, low, high, p_value)``.

    Rows are resampled jointly (the pairing is kept). ``low``/``high`` are the percentile
    interval of the resampled mean differences ``m_r``. The two-sided p-value estimate is::

        p = min(1, 2 * #{r : m_r on the opposite side of 0 from mean_diff, or 0} / R)

    (``p = 1`` when ``mean_diff == 0``; ``p = 0`` means below ``2/R``.)
    ``n_resamples=0`` gives ``(d, d, d, nan)``; empty input gives a NaN quadruple.
    """
    _check_bootstrap_args(n_resamples, confidence)
    va = _to_numpy_1d(a, "a")
    vb = _to_numpy_1d(b, "b")
    if va.shape != vb.shape:
        raise ValueError(f"a and b must be paired (same length), got {va.size} and {vb.size}")
    nan = float("nan")
    if va.size == 0:
        return nan, nan, nan, nan
    d = va - vb
    mean = float(d.mean())
    if n_resamples == 0:
        return mean, mean, mean, nan
    return _difference_summary(mean, _bootstrap_means(d, rng, int(n_resamples)), confidence)


def _difference_summary(mean: float, means: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """(mean, low, high, two-sided p) from resampled mean differences (see paired_bootstrap_diff)."""
    low, high = _percentile_interval(means, confidence)
    if mean > 0:
        opposite = np.count_nonzero(means <= 0)
    elif mean < 0:
        opposite = np.count_nonzero(means >= 0)
    else:
        return mean, low, high, 1.0
    return mean, low, high, float(min(1.0, 2.0 * opposite / means.size))


def unpaired_bootstrap_diff(
    a: np.ndarray,
    b: np.ndarray,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> tuple[float, float, float, float]:
    """Bootstrap of ``mean(a) - mean(b)`` for independent samples: ``(diff, low, high, p_value)``.

    Each resample draws ``a`` and ``b`` with replacement, separately, at their own sizes; the
    interval and the two-sided p-value are read off the resampled differences as in
    :func:`paired_bootstrap_diff`. Use it when the two sides were not scored on the same units.
    """
    _check_bootstrap_args(n_resamples, confidence)
    va = _to_numpy_1d(a, "a")
    vb = _to_numpy_1d(b, "b")
    nan = float("nan")
    if va.size == 0 or vb.size == 0:
        return nan, nan, nan, nan
    mean = float(va.mean() - vb.mean())
    if n_resamples == 0:
        return mean, mean, mean, nan
    means = _bootstrap_means(va, rng, int(n_resamples)) - _bootstrap_means(vb, rng, int(n_resamples))
    return _difference_summary(mean, means, confidence)


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


# --------------------------------------------------------------------------------------
# Streaming over large catalogs / many users
# --------------------------------------------------------------------------------------


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
