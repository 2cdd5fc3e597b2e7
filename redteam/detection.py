"""Scoring a defense as a detector of the injected users (the testbed knows which are fake).

Conventions
-----------
* ``scores``: suspicion per training user, higher = more likely fake. ``flagged``: the users the
  defense acted on. ``is_fake``: the testbed's ground truth (never shown to the defense).
* ``detector_auc`` is the ROC-AUC of ``scores`` for ``is_fake``: the probability that a random fake
  scores above a random real user, ties counted one half (Mann-Whitney U from average ranks). NaN
  when only one class is present.
* ``precision`` = fakes among the flagged (NaN when nothing is flagged); ``recall`` = flagged among
  the fakes (NaN when there is no fake); ``fpr`` = flagged among the real users (NaN when there is no
  real user): real users dropped, i.e. clean data lost.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["detector_metrics", "roc_points"]


def _inputs(scores: np.ndarray, is_fake: np.ndarray, flagged: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores must be a 1-D array, got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    masks = [_boolean(is_fake, "is_fake", s.shape)]
    if flagged is not None:
        masks.append(_boolean(flagged, "flagged", s.shape))
    return (s, *masks)


def _boolean(values: np.ndarray, name: str, shape: tuple[int, ...]) -> np.ndarray:
    v = np.asarray(values)
    if v.shape != shape:
        raise ValueError(f"{name} must have the shape of scores {shape}, got {v.shape}")
    if v.dtype != bool:
        if v.size and not np.isin(v, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1)")
        v = v.astype(bool)
    return v


def _ratio(num: int, den: int) -> float:
    return float(num) / den if den else float("nan")


def detector_metrics(scores: np.ndarray, flagged: np.ndarray, is_fake: np.ndarray) -> dict[str, float]:
    """``detector_auc``, ``precision``, ``recall``, ``fpr`` and ``flagged`` (count) of one detection."""
    s, y, f = _inputs(scores, is_fake, flagged)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos and n_neg:
        ranks = rankdata(s)  # average ranks: a tie between a fake and a real user counts 1/2
        auc = (ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    else:
        auc = float("nan")
    return {
        "detector_auc": float(auc),
        "precision": _ratio(int((f & y).sum()), int(f.sum())),
        "recall": _ratio(int((f & y).sum()), n_pos),
        "fpr": _ratio(int((f & ~y).sum()), n_neg),
        "flagged": float(f.sum()),
    }


def roc_points(scores: np.ndarray, is_fake: np.ndarray, max_points: int = 200) -> list[tuple[float, float]]:
    """The ROC curve as ``(fpr, tpr)`` pairs from ``(0, 0)`` to ``(1, 1)``, one point per distinct
    score threshold (tied users enter together), evenly thinned to at most ``max_points`` (the end
    points always kept). Empty when only one class is present (no curve)."""
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    s, y = _inputs(scores, is_fake)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not (n_pos and n_neg):
        return []
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp, fp = np.cumsum(y_sorted), np.cumsum(~y_sorted)
    last_of_group = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), len(s_sorted) - 1]
    fpr = np.r_[0.0, fp[last_of_group] / n_neg]
    tpr = np.r_[0.0, tp[last_of_group] / n_pos]
    if len(fpr) > max_points:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, max_points)).astype(np.int64))
        fpr, tpr = fpr[keep], tpr[keep]
    return [(float(a), float(b)) for a, b in zip(fpr, tpr)]
