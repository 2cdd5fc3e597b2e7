"""Rows against the row they are paired with, over the same users and the same randomness.

A defense's effect is the difference it makes to the same users under the same attack: row
``(victim, attack, defense)`` minus row ``(victim, attack, none)``, per user. The clean row
(``attack = none``) gives the defense's cost to real users; an attack row gives how much attack
success the defense takes away. An attack with ``vs: <label>`` in the scenario (an ablation) is
paired the same way with that attack's row under the same defense.

The rows of one victim share their randomness (common random numbers: attacker draws depend on
the run and attacker seeds only, :meth:`redteam.stages.context.RunContext.knowledge`), so the
per-user difference is the switch's effect plus the users' noise. With one seed the interval is a
paired bootstrap over users (:func:`redteam.metrics.paired_bootstrap_diff`); with several, the
per-user differences of each seed go through the two-level bootstrap (seeds, then users with one
draw shared by every seed, :func:`redteam.metrics_seeds.bootstrap_ci_two_level`), and ``p`` is the
paired bootstrap's over each user's seed-mean difference; each seed's own change (``seed_diffs``)
and the t-interval over them (``seed_t_ci``) come beside it. Only metrics with one value per user
and the same users in both rows are paired, over the repetitions (run seed, attacker seed) both
rows ran: a defense limited to some attacker seeds pairs with those seeds of the undefended row.
Every (row, metric) has its own generator, so adding a row leaves the others' intervals as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from redteam.metrics import paired_bootstrap_diff
from redteam.metrics_bootstrap import difference_summary
from redteam.metrics_seeds import seed_macro_means, t_interval_over_seeds, two_level_resamples
from redteam.results import Row, RowKey, RowTable
from redteam.seeding import numpy_rng

REFERENCE = "none"


def paired_rows(rows: RowTable, *, attack_refs: dict[str, str] | None = None, seed: int, n_resamples: int,
                confidence: float) -> dict[RowKey, dict[str, dict[str, Any]]]:
    """``row key -> {"paired": {...}, "paired_attack": {...}}`` (either may be absent), each
    ``{"vs": label, "metrics": {metric: {diff, ci_low, ci_high, p}}}``: a defended row against its
    undefended twin, and an attack row against the attack its ``vs`` names (``attack_refs``)."""
    by_key = {row.key: row for row in rows}
    out: dict[RowKey, dict[str, dict[str, Any]]] = {}
    for row in rows:
        twins = {}
        if row.defense != REFERENCE:
            twins["paired"] = (REFERENCE, by_key.get((row.dataset, row.victim, row.attack, REFERENCE)))
        reference_attack = (attack_refs or {}).get(row.attack)
        if reference_attack is not None:
            twins["paired_attack"] = (reference_attack, by_key.get((row.dataset, row.victim, reference_attack, row.defense)))
        for field, (vs, twin) in twins.items():
            metrics = {} if twin is None else paired_metrics(row, twin, seed=seed, n_resamples=n_resamples,
                                                             confidence=confidence, kind=field)
            if metrics:
                out.setdefault(row.key, {})[field] = {"vs": vs, "metrics": metrics}
    return out


def paired_metrics(row: Row, twin: Row, *, seed: int, n_resamples: int, confidence: float,
                   kind: str) -> dict[str, dict[str, float]]:
    out = {}
    for metric in row.per_seed:
        picked = matching_repetitions(row, twin, metric)
        a, b = per_user_values(row, metric), per_user_values(twin, metric)
        if a is None or b is None or picked is None:
            continue
        b = b[picked]
        layouts, twin_layouts = row.layout.get(metric), twin.layout.get(metric)
        if twin_layouts is not None:
            twin_layouts = [twin_layouts[i] for i in picked]
        if a.shape != b.shape or not same_layout(layouts, twin_layouts):
            continue
        rng = numpy_rng(seed, "bootstrap", kind, *row.key, metric)
        if layouts is None and a.shape[0] == 1:
            diff, low, high, p = paired_bootstrap_diff(a[0], b[0], rng=rng, n_resamples=n_resamples,
                                                       confidence=confidence)
        else:  # several seeds, or (target, user) units: seeds, then users (clusters) resampled
            diff, resampled = two_level_resamples(list(a - b), layouts, rng=rng, n_resamples=n_resamples)
            if resampled is None or resampled.size == 0:
                low = high = diff if resampled is None else float("nan")
                p = float("nan")
            else:
                diff, low, high, p = difference_summary(diff, resampled, confidence)
        out[metric] = {"diff": diff, "ci_low": low, "ci_high": high, "p": p, "repetitions": int(a.shape[0])}
        if a.shape[0] > 1:
            out[metric].update(seed_level(list(a - b), layouts, confidence))
    return out


def seed_level(differences: list[np.ndarray], layouts: list | None, confidence: float) -> dict[str, Any]:
    """Each repetition's own paired change and the t-interval over them (``seed_t_ci``): with few
    seeds the two-level bootstrap draws from few seed combinations and is narrow (three seeds give
    ten), so the t-interval is the conservative bound beside it."""
    changes = seed_macro_means(differences, layouts)
    _, low, high = t_interval_over_seeds(changes, confidence)
    return {"seed_diffs": [float(c) for c in changes], "seed_t_ci": [low, high]}


def matching_repetitions(row: Row, twin: Row, metric: str) -> list[int] | None:
    """Which of the twin's arrays pair with the row's, in the row's order: all of them when both
    rows ran the same repetitions; the matching ones when the row ran a tagged subset of the twin's
    (a defense limited by ``attacker_seeds`` against the undefended row); None otherwise."""
    n_mine, n_theirs = len(row.per_seed.get(metric, [])), len(twin.per_seed.get(metric, []))
    mine, theirs = row.repetitions.get(metric, []), twin.repetitions.get(metric, [])
    tagged = len(mine) == n_mine and len(theirs) == n_theirs and None not in mine and None not in theirs
    if not tagged:  # by position, as long as both rows ran as many repetitions
        return list(range(n_theirs)) if n_mine == n_theirs else None
    if len(set(theirs)) != len(theirs) or not set(mine) <= set(theirs):
        return None
    return [theirs.index(tag) for tag in mine]


def same_layout(mine: list | None, theirs: list | None) -> bool:
    """Both rows lay the metric's values out on the same (group, cluster) units, or neither does."""
    if mine is None or theirs is None:
        return mine is None and theirs is None
    return len(mine) == len(theirs) and all(
        np.array_equal(g1, g2) and np.array_equal(c1, c2) for (g1, c1), (g2, c2) in zip(mine, theirs))


def per_user_values(row: Row, metric: str) -> np.ndarray | None:
    """The metric's [seeds, values] array, or None when it cannot be paired."""
    arrays = row.per_seed.get(metric)
    if not arrays or len({a.size for a in arrays}) != 1 or arrays[0].size < 2:
        return None
    return np.stack([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])
