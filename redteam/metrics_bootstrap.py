"""Percentile-bootstrap confidence intervals: plain, grouped by target (cluster bootstrap), and
paired / unpaired differences with a two-sided p-value."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bootstrap_ci", "bootstrap_ci_grouped", "paired_bootstrap_diff", "unpaired_bootstrap_diff"]

# Bound on the number of int64 indices drawn at once by the bootstrap (about 32 MiB).
_BOOTSTRAP_CHUNK_ELEMENTS = 1 << 22


def _to_numpy_1d(values: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


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
    point value is :func:`redteam.metrics_exposure.mean_over_targets`' macro average: each group's mean, then the mean
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
    return difference_summary(mean, _bootstrap_means(d, rng, int(n_resamples)), confidence)


def difference_summary(mean: float, means: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
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
    return difference_summary(mean, means, confidence)
