"""Intervals over seeds and users together: a two-level percentile bootstrap, and a t-interval
over seed means.

With several seeds (run seeds, attacker seeds), a figure varies with the users it is measured on
and with the seed. An interval over users alone (of each user's mean over seeds) leaves the second
out: three seeds of .076, .084 and .097 can sit beside a per-user interval of [.082, .087].
:func:`bootstrap_ci_two_level` resamples both: each resample draws the seeds with replacement,
then the users with replacement, and averages the drawn seeds' means over the drawn users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from redteam.metrics_bootstrap import _check_bootstrap_args, _percentile_interval

_CHUNK = 1 << 22  # bound on the resample-by-cluster weight entries held at once


def _cells(values: np.ndarray, groups: np.ndarray, clusters: np.ndarray, cluster_ids: np.ndarray,
           group_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[clusters, groups] sums and counts of one seed's values on the shared cluster and group ids."""
    c = np.searchsorted(cluster_ids, clusters)
    g = np.searchsorted(group_ids, groups)
    sums = np.zeros((cluster_ids.size, group_ids.size))
    counts = np.zeros_like(sums)
    np.add.at(sums, (c, g), values)
    np.add.at(counts, (c, g), 1.0)
    return sums, counts


def _macro(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Mean over groups of num/den per row, leaving out groups with no weight (NaN if none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        per_group = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    seen = ~np.isnan(per_group)
    return np.where(seen.any(axis=1), np.nansum(per_group, axis=1) / np.maximum(seen.sum(axis=1), 1), np.nan)


def bootstrap_ci_two_level(
    per_seed: Sequence[np.ndarray],
    layouts: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the mean over seeds of each seed's (macro) mean: the percentile
    interval of :func:`two_level_resamples`."""
    _check_bootstrap_args(n_resamples, confidence)
    mean, out = two_level_resamples(per_seed, layouts, rng=rng, n_resamples=n_resamples)
    if out is None:
        return mean, mean, mean
    if out.size == 0:
        return mean, float("nan"), float("nan")
    low, high = _percentile_interval(out, confidence)
    return mean, low, high


def two_level_resamples(
    per_seed: Sequence[np.ndarray],
    layouts: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
) -> tuple[float, np.ndarray | None]:
    """``(mean, resampled means)`` of the mean over seeds of each seed's (macro) mean; the
    resamples leave out NaN ones (None when ``n_resamples`` is 0).

    ``per_seed[s]``: seed ``s``'s values; ``layouts[s] = (groups, clusters)`` when the values are
    units such as (target, user) pairs (macro mean over groups, users as clusters, as in
    :func:`redteam.metrics_bootstrap.bootstrap_ci_grouped`); None: one value per user. Each resample
    draws ``S`` seeds with replacement and, for the users, one draw shared by every seed when all
    seeds measured the same users (the paired case: same cluster labels, or same length without
    layouts), else one draw per seed; its value is the mean of the drawn seeds' macro means.
    """
    arrays = [np.asarray(a, dtype=np.float64).reshape(-1) for a in per_seed]
    if not arrays or any(a.size == 0 for a in arrays):
        return float("nan"), np.empty(0)
    cells, paired = _seed_cells(arrays, layouts)
    mean = float(_seed_means(cells).mean())
    if n_resamples == 0:
        return mean, None
    n_seeds = len(arrays)
    out = np.empty(int(n_resamples))
    largest = max(s.shape[0] for s, _ in cells)
    step = max(1, _CHUNK // largest)
    for start in range(0, int(n_resamples), step):
        r = min(int(n_resamples), start + step) - start
        chosen = rng.integers(0, n_seeds, size=(r, n_seeds))
        shared = _weights(rng, cells[0][0].shape[0], r) if paired else None
        macro = np.empty((r, n_seeds))
        for s, (sums, counts) in enumerate(cells):
            w = shared if paired else _weights(rng, sums.shape[0], r)
            macro[:, s] = _macro(w @ sums, w @ counts)
        out[start : start + r] = np.take_along_axis(macro, chosen, axis=1).mean(axis=1)
    return mean, out[~np.isnan(out)]


def seed_macro_means(per_seed: Sequence[np.ndarray], layouts: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """Each seed's (macro) mean, as :func:`two_level_resamples` averages them: over groups (e.g.
    targets) of each group's mean when ``layouts`` give groups, else the plain mean."""
    arrays = [np.asarray(a, dtype=np.float64).reshape(-1) for a in per_seed]
    if not arrays or any(a.size == 0 for a in arrays):
        return np.full(len(arrays), np.nan)
    return _seed_means(_seed_cells(arrays, layouts)[0])


def _seed_cells(arrays: list[np.ndarray], layouts: Sequence[tuple[np.ndarray, np.ndarray]] | None
                ) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool]:
    """Each seed's [clusters, groups] sums and counts, and whether every seed has the same clusters."""
    if layouts is None:
        layouts = [(np.zeros(a.size, dtype=np.int64), np.arange(a.size)) for a in arrays]
    paired = all(np.array_equal(np.sort(np.unique(c)), np.sort(np.unique(layouts[0][1]))) for _, c in layouts)
    group_ids = np.unique(np.concatenate([np.asarray(g).reshape(-1) for g, _ in layouts]))
    cells = []
    for a, (g, c) in zip(arrays, layouts):
        c = np.asarray(c).reshape(-1)
        ids = np.unique(layouts[0][1] if paired else c)
        cells.append(_cells(a, np.asarray(g).reshape(-1), c, ids, group_ids))
    return cells, paired


def _seed_means(cells: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    return np.array([_macro(s.sum(0, keepdims=True), n.sum(0, keepdims=True))[0] for s, n in cells])


def _weights(rng: np.random.Generator, n: int, r: int) -> np.ndarray:
    """[r, n] how many times each of ``n`` clusters is drawn in each of ``r`` resamples of size ``n``."""
    drawn = rng.integers(0, n, size=(r, n)) + (np.arange(r) * n)[:, None]
    return np.bincount(drawn.ravel(), minlength=r * n).reshape(r, n).astype(np.float64)


def t_interval_over_seeds(seed_means: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: Student's t interval of the seed means (NaN bounds with one seed)."""
    from scipy import stats

    m = np.asarray(seed_means, dtype=np.float64)
    mean = float(m.mean()) if m.size else float("nan")
    if m.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, m.size - 1) * m.std(ddof=1) / np.sqrt(m.size))
    return mean, mean - half, mean + half
