"""Top-k truncation: the endpoint returns at most ``keep`` items, however many the caller asks for.

Output perturbation in its plainest form (specs/extraction_defenses.md): a model-extraction
attacker distils from the lists it is shown (Yue et al., RecSys 2021; LLM4MEA, arXiv 2507.16969),
so a shorter list carries fewer ranking constraints per query it pays for. Real users are served
the same short list, so the cost falls on consumers of deep lists (HR/NDCG@K for K > keep cannot
be served at all).

Threat model: the defender controls what the serving API returns, not the attacker's queries.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from defenses.base import ServingDefense
from redteam.params import Params
from redteam.serving.middleware import Middleware
from redteam.serving.port import Histories, TopK


class TopKTruncationParams(Params):
    keep: int = Field(10, ge=1, description="most items returned per history")


class TopKTruncation(ServingDefense):
    """Answer with the first ``keep`` items only."""

    alias: ClassVar[str] = "topk_truncation"
    family: ClassVar[str] = "output-perturbation"
    Params = TopKTruncationParams

    def wrap(self, inner: Any, rng: np.random.Generator) -> "Truncated":
        return Truncated(inner, self.params.keep)


class Truncated(Middleware):
    def __init__(self, inner: Any, keep: int) -> None:
        super().__init__(inner)
        self.max_k = min(inner.max_k, keep)

    def recommend(self, histories: Histories, k: int) -> TopK:
        return self.inner.recommend(histories, min(k, self.max_k))
