"""Per-key query quota: rate limiting as a budget policy, with its cost declared up front.

The plainest API-level defense against model extraction (specs/extraction_defenses.md): each API
key may ask ``quota`` queries per period (a day, say); past it the key is refused until the next
period (HTTP 429). Extraction needs volume (Yue et al., RecSys 2021, distil from tens of thousands
of answered histories), so the quota caps what one key can buy. An attacker reads the quota in
the API's terms and plans within it: its usable budget is ``quota * attacker_keys * periods``
(never more than the scenario's ``api.budget``). ``attacker_keys`` > 1 is the adaptive attacker
registering sybil accounts; ``periods`` > 1 a patient one. Neither costs it anything here beyond
the keys and the wait, which the row records (``attacker_keys``, ``periods``); what a key costs to
obtain is outside the model.

Declared cost: benign keys hit the same quota. Real users are replayed as sessions
(:mod:`defenses.benign_traffic`: app keys serving many users, user keys serving one) over one
period; the share of those keys that reach the quota and the share of their queries refused are
the defense's clean cost (``benign_app_keys_limited``, ``benign_user_keys_limited``,
``benign_queries_refused``). Queries that are answered are answered unchanged.

Threat model: the defender meters every key and knows nothing of which keys one person holds.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from defenses.base import ServingDefense
from defenses.benign_traffic import BenignTrafficParams, benign_keys
from redteam.errors import BudgetExceeded
from redteam.serving.middleware import Middleware
from redteam.serving.port import Histories, TopK


class KeyQuotaParams(BenignTrafficParams):
    quota: int = Field(10_000, ge=1, description="queries (histories) one key may ask per period")
    attacker_keys: int = Field(1, ge=1, description="keys the attacker spreads its queries over (sybil accounts)")
    periods: int = Field(1, ge=1, description="periods the attacker waits for its quota to renew")


class KeyQuota(ServingDefense):
    """Refuse a key's queries past ``quota`` per period."""

    alias: ClassVar[str] = "key_quota"
    family: ClassVar[str] = "rate-limit"
    Params = KeyQuotaParams

    def attacker_allowance(self, budget: int | None) -> int:
        """The queries the attacker can buy: its keys' quotas over its periods, within ``budget``."""
        p = self.params
        usable = p.quota * p.attacker_keys * p.periods
        return usable if budget is None else min(budget, usable)

    def wrap(self, inner: Any, rng: np.random.Generator) -> "QuotaGate":
        return QuotaGate(inner, self.attacker_allowance(None))

    def calibrate(self, recommender: Any, histories: list[np.ndarray], item_popularity: np.ndarray, *, k: int,
                  rng: np.random.Generator) -> dict[str, Any]:
        """The benign traffic one period of this quota refuses (the recommender is not queried:
        refusal depends on stream lengths alone)."""
        p = self.params
        lengths = np.asarray([len(stream) for stream in benign_keys(histories, p, rng)], dtype=np.int64)
        return {**quota_cost(lengths[: p.app_keys], p.quota, "app"), **quota_cost(lengths[p.app_keys:], p.quota, "user"),
                "benign_queries_refused": refused_share(lengths, p.quota)}

    def row_metrics(self, summary: dict[str, Any]) -> dict[str, float]:
        """What the clean row records of :meth:`calibrate`'s summary."""
        return {name: summary[name] for name in ("benign_app_keys_limited", "benign_user_keys_limited",
                                                 "benign_queries_refused")}


def quota_cost(lengths: np.ndarray, quota: int, kind: str) -> dict[str, float]:
    """Share of ``kind`` keys whose stream reaches past the quota, and the longest stream."""
    if not len(lengths):
        return {f"benign_{kind}_keys_limited": float("nan"), f"benign_{kind}_key_longest": 0}
    return {f"benign_{kind}_keys_limited": float(np.mean(lengths > quota)), f"benign_{kind}_key_longest": int(lengths.max())}


def refused_share(lengths: np.ndarray, quota: int) -> float:
    """Share of all benign queries that come after their key's quota ran out."""
    total = int(lengths.sum())
    return float(np.maximum(lengths - quota, 0).sum() / total) if total else 0.0


class QuotaGate(Middleware):
    """Answers unchanged until ``allowance`` queries have passed, then refuses every batch."""

    passes_scores = True

    def __init__(self, inner: Any, allowance: int) -> None:
        super().__init__(inner)
        self.allowance, self.answered = allowance, 0

    def recommend(self, histories: Histories, k: int) -> TopK:
        if self.answered + len(histories) > self.allowance:
            raise BudgetExceeded(f"key_quota: {self.answered} answered + {len(histories)} asked > quota {self.allowance}")
        top = self.inner.recommend(histories, k)
        self.answered += len(histories)
        return top
