"""Collecting metric values into rows and aggregating them over seeds with bootstrap CIs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redteam.metrics import bootstrap_ci, bootstrap_ci_grouped
from redteam.metrics_seeds import bootstrap_ci_two_level, t_interval_over_seeds
from redteam.seeding import numpy_rng

CI_METHOD = ("one seed: percentile bootstrap over users (targets fixed, a resampled user brings all its targets); "
             "several seeds: two-level percentile bootstrap (seeds with replacement, then users), beside a "
             "t-interval over the seed means")

RowKey = tuple[str, str, str, str]  # dataset, victim, attack, defense


@dataclass
class Row:
    dataset: str
    victim: str
    attack: str = "none"
    defense: str = "none"
    per_seed: dict[str, list[np.ndarray]] = field(default_factory=dict)  # metric -> one array per seed
    info: dict[str, Any] = field(default_factory=dict)
    # metric -> one (groups, clusters) pair per seed, for macro-averaged metrics (see ``add``)
    layout: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    # metric -> the repetition each array came from, e.g. (run seed, attacker seed); None where untagged
    repetitions: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def key(self) -> RowKey:
        return (self.dataset, self.victim, self.attack, self.defense)

    def add(self, metric: str, values: np.ndarray | float, *, groups: np.ndarray | None = None,
            clusters: np.ndarray | None = None, repetition: Any = None) -> None:
        """One seed's per-user (or per-target) values of a metric; a scalar is one value.

        With ``groups`` (and ``clusters``), the values are units such as (target, user) pairs: the
        metric is the macro average over groups (each target's mean, then their mean) and its
        interval resamples clusters (users), see :func:`redteam.metrics.bootstrap_ci_grouped`.
        ``repetition`` names the seeds this array came from (``(run seed, attacker seed)``), so a row
        run on fewer attacker seeds can be paired with the matching part of a row run on all.
        """
        arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
        if (groups is None) != (metric not in self.layout) and metric in self.per_seed:
            raise ValueError(f"{metric}: every seed must be added with groups, or none")
        self.per_seed.setdefault(metric, []).append(arr)
        self.repetitions.setdefault(metric, []).append(repetition)
        if groups is not None:
            g = np.asarray(groups).reshape(-1)
            c = np.arange(arr.size) if clusters is None else np.asarray(clusters).reshape(-1)
            if g.size != arr.size or c.size != arr.size:
                raise ValueError(f"{metric}: groups and clusters need one entry per value")
            self.layout.setdefault(metric, []).append((g, c))

    def aggregate(self, *, seed: int, n_resamples: int, confidence: float) -> dict[str, dict[str, Any]]:
        """Each metric's value, interval and per-seed values. Every (row, metric) draws its bootstrap
        from its own generator (``seed`` and the row's key), so adding a row moves no other interval.
        With several seeds the interval is two-level (:func:`redteam.metrics_seeds.bootstrap_ci_two_level`)
        and ``seed_t_ci`` is the t-interval over the seed means; ``ci_users_*`` keeps the interval
        over users alone (of each user's mean over seeds) for comparison."""
        out = {}
        for metric, arrays in self.per_seed.items():
            rng = numpy_rng(seed, "bootstrap", *self.key, metric)
            if metric in self.layout:
                out[metric] = self._aggregate_grouped(metric, rng=rng, n_resamples=n_resamples, confidence=confidence)
            else:
                out[metric] = self._aggregate_plain(arrays, rng=rng, n_resamples=n_resamples, confidence=confidence)
            if len(arrays) > 1 and all(a.size for a in arrays):
                self._add_seed_intervals(metric, out[metric], rng=rng, n_resamples=n_resamples, confidence=confidence)
        return out

    def _add_seed_intervals(self, metric: str, summary: dict[str, Any], *, rng: np.random.Generator,
                            n_resamples: int, confidence: float) -> None:
        arrays = self.per_seed[metric]
        layouts = self.layout.get(metric)
        if layouts is None and len({a.size for a in arrays}) > 1:  # different users per seed: no pairing by index
            layouts = [(np.zeros(a.size, dtype=np.int64), np.array([f"{s}:{i}" for i in range(a.size)]))
                       for s, a in enumerate(arrays)]
        _, low, high = bootstrap_ci_two_level(arrays, layouts, rng=rng, n_resamples=n_resamples, confidence=confidence)
        _, t_low, t_high = t_interval_over_seeds(summary["per_seed"], confidence)
        summary.update({"ci_users_low": summary["ci_low"], "ci_users_high": summary["ci_high"],
                        "ci_low": float(low), "ci_high": float(high), "seed_t_ci": [t_low, t_high]})

    @staticmethod
    def _aggregate_plain(arrays: list[np.ndarray], *, rng: np.random.Generator, n_resamples: int,
                         confidence: float) -> dict[str, Any]:
        seed_means = [float(a.mean()) if a.size else float("nan") for a in arrays]
        same_units = len({a.size for a in arrays}) == 1
        # Paired over users when every seed scored the same users: CI of the per-user seed mean.
        pooled = np.mean(np.stack(arrays), axis=0) if same_units else np.concatenate(arrays)
        value = float(np.mean(seed_means))
        low = high = value
        if pooled.size > 1:
            _, low, high = bootstrap_ci(pooled, rng=rng, n_resamples=n_resamples, confidence=confidence)
        return {
            "value": value, "ci_low": float(low), "ci_high": float(high),
            "std_over_seeds": float(np.std(seed_means)) if len(seed_means) > 1 else 0.0,
            "per_seed": seed_means, "n": int(arrays[0].size),
        }

    def _aggregate_grouped(self, metric: str, *, rng: np.random.Generator, n_resamples: int,
                           confidence: float) -> dict[str, Any]:
        arrays, layouts = self.per_seed[metric], self.layout[metric]
        seed_means = [float(np.mean([a[g == k].mean() for k in np.unique(g)])) if a.size else float("nan")
                      for a, (g, _) in zip(arrays, layouts)]
        g0, c0 = layouts[0]
        paired = all(a.size == arrays[0].size and np.array_equal(g, g0) and np.array_equal(c, c0)
                     for a, (g, c) in zip(arrays, layouts))
        if paired:  # the same (group, cluster) units every seed: CI of the per-unit seed mean
            pooled, groups, clusters = np.mean(np.stack(arrays), axis=0), g0, c0
        else:
            pooled = np.concatenate(arrays)
            groups = np.concatenate([g for g, _ in layouts])
            clusters = np.concatenate([np.asarray([f"{s}:{x}" for x in c]) for s, (_, c) in enumerate(layouts)])
        value = float(np.mean(seed_means))
        if pooled.size > 1:
            _, low, high = bootstrap_ci_grouped(pooled, groups, clusters, rng=rng, n_resamples=n_resamples, confidence=confidence)
        else:
            low = high = value
        return {
            "value": value, "ci_low": float(low), "ci_high": float(high),
            "std_over_seeds": float(np.std(seed_means)) if len(seed_means) > 1 else 0.0,
            "per_seed": seed_means, "n": int(arrays[0].size), "groups": int(np.unique(g0).size),
        }


def per_user_arrays(rows: "RowTable") -> dict[str, np.ndarray]:
    """``"victim|attack|defense|metric"`` -> [seeds, units] for metrics with one value per user
    (or target) and equal units across seeds: what a paired test between rows needs. Metrics whose
    units are (target, user) pairs also get ``...|metric#groups`` and ``...|metric#clusters`` (the
    target and the user of each unit, the same every seed), so a test can resample users."""
    out = {}
    for row in rows:
        for metric, arrays in row.per_seed.items():
            if len({a.size for a in arrays}) == 1 and arrays[0].size > 1:
                key = "|".join((row.victim, row.attack, row.defense, metric))
                layouts = row.layout.get(metric)
                if layouts is not None:
                    g0, c0 = layouts[0]
                    same = all(np.array_equal(g, g0) and np.array_equal(c, c0) for g, c in layouts)
                    numeric = all(np.issubdtype(np.asarray(x).dtype, np.integer) for x in (g0, c0))
                    if same and numeric:  # else the units differ between seeds: no per-unit layout to offer
                        out[f"{key}#groups"] = np.asarray(g0, dtype=np.int64)
                        out[f"{key}#clusters"] = np.asarray(c0, dtype=np.int64)
                out[key] = np.stack(arrays).astype(np.float32)
    return out


def write_per_user(rows: "RowTable", path: Path) -> None:
    """An ``.npz`` of plain float arrays (read back with ``np.load(path, allow_pickle=False)``)."""
    np.savez_compressed(path, **per_user_arrays(rows))


class RowTable:
    """Rows by key, created on first use, kept in insertion order."""

    def __init__(self) -> None:
        self.rows: dict[RowKey, Row] = {}

    def row(self, dataset: str, victim: str, attack: str = "none", defense: str = "none") -> Row:
        key = (dataset, victim, attack, defense)
        if key not in self.rows:
            self.rows[key] = Row(dataset, victim, attack, defense)
        return self.rows[key]

    def __iter__(self):
        return iter(self.rows.values())


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays and paths (results, unit records)."""
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
