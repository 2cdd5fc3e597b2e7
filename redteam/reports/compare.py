"""Compare two runs: per-row metric deltas with bootstrap confidence intervals.

For every (victim, attack, defense) row present in both runs and every metric both rows have,
``delta = B - A`` (the values of ``results.json``). Its interval comes from the runs' per-user
values (``per_user.npz``, averaged over seeds per user):

* paired bootstrap of the per-user differences when both runs scored the same users (same data
  checksum, same number of test users and attacker users, and the same root seed whenever that
  seed chose which users are evaluated);
* otherwise an unpaired bootstrap (each run's users resampled on their own).

A change is significant when its interval excludes 0. Whether it is a regression depends on the
metric (one table, :mod:`redteam.reports.roles`): attack success going up, clean accuracy going
down. Metrics without per-user values (``queries``, ``seconds``) get a delta and no test.
Macro-averaged metrics (``target_hr@K``: each target's mean, then their mean) are tested on their
per-unit values (one per target and user), which weighs targets by their number of users; the
delta shown is always the difference of the two rows' values.
Each interval holds at its own confidence level: with many rows and metrics, expect about
``1 - confidence`` of the unchanged ones to be flagged by chance when the runs differ in seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redteam.reports.roles import attack_families, metric_role, row_family
from redteam.reports.run_dir import load_per_user, load_results

KEYS = ("victim", "attack", "defense")


@dataclass
class Run:
    path: Path
    results: dict[str, Any]
    per_user: dict[str, np.ndarray]

    @classmethod
    def load(cls, path: Path) -> "Run":
        return cls(path=path, results=load_results(path), per_user=load_per_user(path))

    @property
    def label(self) -> str:
        sc = self.results.get("scenario", {})
        return f"{sc.get('name', '?')}-{self.results.get('fingerprint', '?')} ({self.path})"

    def rows(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        return {tuple(str(r[k]) for k in KEYS): r for r in self.results["rows"]}


@dataclass
class Delta:
    victim: str
    attack: str
    defense: str
    metric: str
    a: float
    b: float
    delta: float
    low: float | None
    high: float | None
    p_value: float | None
    test: str  # paired, unpaired or none
    role: str
    worse_when: str | None  # higher / lower / None

    @property
    def significant(self) -> bool:
        return (self.low is not None and self.high is not None and math.isfinite(self.low) and math.isfinite(self.high)
                and (self.low > 0 or self.high < 0))

    @property
    def change(self) -> str:
        """``worse``/``better`` (significant, for the defender), ``changed`` (significant, no
        direction), or ``""``."""
        if not self.significant:
            return ""
        if self.worse_when is None:
            return "changed"
        up = self.delta > 0
        return "worse" if up == (self.worse_when == "higher") else "better"

    @property
    def relative(self) -> float | None:
        return self.delta / abs(self.a) if self.a else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant, "change": self.change, "relative": self.relative}


@dataclass
class Comparison:
    a: Run
    b: Run
    paired: bool
    pairing: str
    confidence: float
    resamples: int
    deltas: list[Delta] = field(default_factory=list)
    only_a: list[tuple[str, str, str]] = field(default_factory=list)
    only_b: list[tuple[str, str, str]] = field(default_factory=list)

    def regressions(self, metrics: list[str] | None = None) -> list[Delta]:
        return [d for d in self.deltas if d.change == "worse" and (metrics is None or d.metric in metrics)]

    def to_json(self, fail_on: list[str] | None = None) -> dict[str, Any]:
        regressions = self.regressions(fail_on) if fail_on else []
        return {
            "a": str(self.a.path), "b": str(self.b.path), "paired": self.paired, "pairing": self.pairing,
            "confidence": self.confidence, "resamples": self.resamples,
            "deltas": [d.to_dict() for d in self.deltas],
            "only_in_a": ["/".join(k) for k in self.only_a], "only_in_b": ["/".join(k) for k in self.only_b],
            "fail_on_regression": fail_on or [], "regressions": [d.to_dict() for d in regressions],
            "failed": bool(regressions),
        }


def same_users(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, str]:
    """Whether two runs scored the same users in the same order, and why (not)."""
    da, db = a.get("dataset", {}), b.get("dataset", {})
    pa, pb = a.get("protocol", {}), b.get("protocol", {})
    if "sts" in (pa.get("family"), pb.get("family")):
        if pa.get("trial_plan") is None or pa.get("trial_plan") != pb.get("trial_plan"):
            return False, f"different text-ranking trials (plan {pa.get('trial_plan')} vs {pb.get('trial_plan')})"
        return True, f"the same text-ranking trials (plan {pa.get('trial_plan')}: catalog, targets, requests, orders)"
    if da.get("checksum") != db.get("checksum"):
        return False, f"different data (checksum {da.get('checksum')} vs {db.get('checksum')})"
    if pa.get("test_users") != pb.get("test_users"):
        return False, f"different numbers of test users ({pa.get('test_users')} vs {pb.get('test_users')})"
    if pa.get("attacker_users") != pb.get("attacker_users"):
        return False, f"different attacker users ({pa.get('attacker_users')} vs {pb.get('attacker_users')})"
    sa, sb = a.get("scenario", {}), b.get("scenario", {})
    sampled = bool(pa.get("attacker_users")) or any((s.get("eval") or {}).get("max_users") for s in (sa, sb))
    if sampled and sa.get("seed") != sb.get("seed"):
        return False, f"the evaluated users were drawn from different root seeds ({sa.get('seed')} vs {sb.get('seed')})"
    return True, f"same data (checksum {da.get('checksum')}) and the same {pa.get('test_users')} test users"


def compare_runs(
    a: Run,
    b: Run,
    *,
    metrics: list[str] | None = None,
    n_resamples: int = 1000,
    confidence: float | None = None,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
) -> Comparison:
    from redteam.metrics import paired_bootstrap_diff, unpaired_bootstrap_diff
    from redteam.seeding import numpy_rng

    conf = confidence or float(b.results.get("scenario", {}).get("eval", {}).get("confidence", 0.95))
    paired, why = same_users(a.results, b.results)
    rows_a, rows_b = a.rows(), b.rows()
    common = [k for k in rows_a if k in rows_b]
    families = {**attack_families(a.results), **attack_families(b.results)}
    work = []
    for key in common:
        ra, rb = rows_a[key], rows_b[key]
        for metric in ra["metrics"]:
            if metric in rb["metrics"] and (metrics is None or metric in metrics):
                work.append((key, metric))
    out = Comparison(a=a, b=b, paired=paired, pairing=why, confidence=conf, resamples=n_resamples,
                     only_a=[k for k in rows_a if k not in rows_b], only_b=[k for k in rows_b if k not in rows_a])
    for done, (key, metric) in enumerate(work):
        if progress:
            progress(done, len(work), f"{'/'.join(key)} {metric}")
        ra, rb = rows_a[key], rows_b[key]
        va, vb = float(ra["metrics"][metric]["value"]), float(rb["metrics"][metric]["value"])
        role, worse = metric_role(metric, row_family(ra, families))
        name = "|".join((*key, metric))
        ua, ub = a.per_user.get(name), b.per_user.get(name)
        low = high = p = None
        test = "none"
        xa = ua.reshape(ua.shape[0], -1).mean(axis=0) if ua is not None and ua.ndim >= 1 and ua.size > 1 else None
        xb = ub.reshape(ub.shape[0], -1).mean(axis=0) if ub is not None and ub.ndim >= 1 and ub.size > 1 else None
        if xa is not None and xb is not None and np.isfinite(xa).all() and np.isfinite(xb).all():
            rng = numpy_rng(seed, "compare", name)
            if paired and xa.shape == xb.shape:
                _, low, high, p = paired_bootstrap_diff(xb, xa, rng=rng, n_resamples=n_resamples, confidence=conf)
                test = "paired"
            else:
                _, low, high, p = unpaired_bootstrap_diff(xb, xa, rng=rng, n_resamples=n_resamples, confidence=conf)
                test = "unpaired"
        out.deltas.append(Delta(victim=key[0], attack=key[1], defense=key[2], metric=metric, a=va, b=vb, delta=vb - va,
                                low=low, high=high, p_value=p, test=test, role=role, worse_when=worse))
    if progress:
        progress(len(work), len(work), "done")
    return out
