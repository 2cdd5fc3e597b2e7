"""Target exposure: per-(target, user) HR/NDCG of the poisoning targets, and paired changes.

``target_hr@K`` / ``target_ndcg@K`` per target over the evaluation users whose test history lacks
the target, macro-averaged over targets, with a bootstrap over users (each resample draws users
and recomputes every target's mean); paired differences against a reference victim use the same
users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from redteam.metrics import bootstrap_ci_grouped, paired_bootstrap_diff, target_exposure


@dataclass
class Exposure:
    """Per-(target, user) values of each target metric, in target order, with their layout."""

    values: dict[str, np.ndarray]
    groups: np.ndarray  # target id of each unit
    clusters: np.ndarray  # user index of each unit
    eligible: dict[int, int]  # target -> users whose history lacks it

    def per_target(self, metric: str) -> dict[int, float]:
        v = self.values[metric]
        return {t: float(v[self.groups == t].mean()) if n else float("nan") for t, n in self.eligible.items()}

    def add_to(self, row: Any, *, repetition: Any = None) -> None:
        for metric, values in self.values.items():
            row.add(metric, values, groups=self.groups, clusters=self.clusters, repetition=repetition)


def target_exposure_values(score_fn: Any, histories: list[np.ndarray], users: np.ndarray, targets: tuple[int, ...],
                           ks: list[int], *, exclude_history: bool, batch: int = 1024) -> Exposure:
    """:func:`redteam.metrics.target_exposure` over users in chunks (one score chunk alive at a time)."""
    import torch

    parts: dict[str, dict[int, list[np.ndarray]]] = {f"{m}@{k}": {t: [] for t in targets}
                                                      for k in ks for m in ("target_hr", "target_ndcg")}
    with torch.no_grad():
        for start in range(0, len(histories), batch):
            chunk = histories[start : start + batch]
            scores = score_fn(chunk)
            for k in ks:
                for t, (hr, nd) in target_exposure(scores, chunk, list(targets), k=k, exclude_history=exclude_history).items():
                    parts[f"target_hr@{k}"][t].append(hr)
                    parts[f"target_ndcg@{k}"][t].append(nd)
    keep = {t: np.array([not np.any(np.asarray(h) == t) for h in histories], dtype=bool) for t in targets}
    groups = np.concatenate([np.full(int(keep[t].sum()), t, dtype=np.int64) for t in targets])
    clusters = np.concatenate([np.asarray(users)[keep[t]] for t in targets])
    values = {m: np.concatenate([np.concatenate(per[t]) if per[t] else np.zeros(0) for t in targets]) for m, per in parts.items()}
    return Exposure(values, groups, clusters, {t: int(keep[t].sum()) for t in targets})


def paired_changes(exposure: Exposure, accuracy: dict[str, np.ndarray], ref_exposure: Exposure,
                   ref_accuracy: dict[str, np.ndarray], *, rng: np.random.Generator,
                   n_boot: int, conf: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Paired differences (same users) against a reference victim: each target metric (bootstrap
    over users, targets fixed) and each clean-accuracy metric (with a p-value)."""
    target = {}
    for metric in exposure.values:
        diff = exposure.values[metric] - ref_exposure.values[metric]
        mean, low, high = bootstrap_ci_grouped(diff, exposure.groups, exposure.clusters, rng=rng, n_resamples=n_boot, confidence=conf)
        target[metric] = {"value": mean, "ci_low": low, "ci_high": high}
    clean = {}
    for metric in (m for m in accuracy if m in ref_accuracy):
        d, low, high, p = paired_bootstrap_diff(accuracy[metric], ref_accuracy[metric], rng=rng, n_resamples=n_boot, confidence=conf)
        clean[metric] = {"value": d, "ci_low": low, "ci_high": high, "p_value": p}
    return target, clean
