"""Each defended row against its undefended twin, paired over the same users.

A defense's effect is the difference it makes to the same users under the same attack: row
``(victim, attack, defense)`` minus row ``(victim, attack, none)``, per user, then a paired
bootstrap of the mean difference (:func:`redteam.metrics.paired_bootstrap_diff`). The clean row
(``attack = none``) gives the defense's cost to real users; an attack row gives how much attack
success the defense takes away. Only metrics with one value per user, the same users in both
rows and the same number of seeds are paired; with several seeds each user's seed mean is paired.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from redteam.metrics import paired_bootstrap_diff
from redteam.results import Row, RowKey, RowTable

REFERENCE = "none"


def paired_against_reference(rows: RowTable, *, rng: np.random.Generator, n_resamples: int,
                             confidence: float) -> dict[RowKey, dict[str, Any]]:
    """``row key -> {"vs": "none", "metrics": {metric: {diff, ci_low, ci_high, p}}}`` for every
    defended row whose undefended twin exists."""
    by_key = {row.key: row for row in rows}
    out: dict[RowKey, dict[str, Any]] = {}
    for row in rows:
        twin = by_key.get((row.dataset, row.victim, row.attack, REFERENCE))
        if row.defense == REFERENCE or twin is None:
            continue
        metrics = {}
        for metric in row.per_seed:
            a, b = per_user_mean(row, metric), per_user_mean(twin, metric)
            if a is None or b is None or a.shape != b.shape:
                continue
            diff, low, high, p = paired_bootstrap_diff(a, b, rng=rng, n_resamples=n_resamples, confidence=confidence)
            metrics[metric] = {"diff": diff, "ci_low": low, "ci_high": high, "p": p}
        if metrics:
            out[row.key] = {"vs": REFERENCE, "metrics": metrics}
    return out


def per_user_mean(row: Row, metric: str) -> np.ndarray | None:
    """The metric's per-user values averaged over seeds, or None when it cannot be paired."""
    arrays = row.per_seed.get(metric)
    if not arrays or metric in row.layout or len({a.size for a in arrays}) != 1 or arrays[0].size < 2:
        return None
    return np.mean(np.stack(arrays), axis=0)
