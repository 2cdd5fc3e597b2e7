"""Collecting metric values into rows and aggregating them over seeds with bootstrap CIs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redteam.metrics import bootstrap_ci

RowKey = tuple[str, str, str, str]  # dataset, victim, attack, defense


@dataclass
class Row:
    dataset: str
    victim: str
    attack: str = "none"
    defense: str = "none"
    per_seed: dict[str, list[np.ndarray]] = field(default_factory=dict)  # metric -> one array per seed
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> RowKey:
        return (self.dataset, self.victim, self.attack, self.defense)

    def add(self, metric: str, values: np.ndarray | float) -> None:
        """One seed's per-user (or per-target) values of a metric; a scalar is one value."""
        self.per_seed.setdefault(metric, []).append(np.atleast_1d(np.asarray(values, dtype=np.float64)))

    def aggregate(self, *, rng: np.random.Generator, n_resamples: int, confidence: float) -> dict[str, dict[str, Any]]:
        out = {}
        for metric, arrays in self.per_seed.items():
            seed_means = [float(a.mean()) if a.size else float("nan") for a in arrays]
            same_units = len({a.size for a in arrays}) == 1
            # Paired over users when every seed scored the same users: CI of the per-user seed mean.
            pooled = np.mean(np.stack(arrays), axis=0) if same_units else np.concatenate(arrays)
            _, low, high = bootstrap_ci(pooled, rng=rng, n_resamples=n_resamples, confidence=confidence) if pooled.size > 1 else (0, np.nan, np.nan)
            value = float(np.mean(seed_means))
            out[metric] = {
                "value": value,
                "ci_low": float(low) if pooled.size > 1 else value,
                "ci_high": float(high) if pooled.size > 1 else value,
                "std_over_seeds": float(np.std(seed_means)) if len(seed_means) > 1 else 0.0,
                "per_seed": seed_means,
                "n": int(arrays[0].size),
            }
        return out


def per_user_arrays(rows: "RowTable") -> dict[str, np.ndarray]:
    """``"victim|attack|defense|metric"`` -> [seeds, units] for metrics with one value per user
    (or target) and equal units across seeds: what a paired test between rows needs."""
    out = {}
    for row in rows:
        for metric, arrays in row.per_seed.items():
            if len({a.size for a in arrays}) == 1 and arrays[0].size > 1:
                out["|".join((row.victim, row.attack, row.defense, metric))] = np.stack(arrays).astype(np.float32)
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
