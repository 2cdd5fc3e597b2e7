"""Score rounding or hiding: the ranking is served as is, its scores coarsened or withheld.

Output perturbation for APIs that expose scores (specs/extraction_defenses.md): score-aware
distillation (a margin or listwise loss on the victim's scores) learns less from scores rounded to
``decimals`` places, and nothing from hidden ones. The order, and so every ranking metric of real
users, is unchanged; the cost falls only on consumers that use the scores.

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


class ScoreRoundingParams(Params):
    decimals: int = Field(1, ge=0, le=6, description="decimal places kept")
    hide: bool = Field(False, description="withhold the scores altogether")


class ScoreRounding(ServingDefense):
    """Round the returned scores to ``decimals`` places, or hide them."""

    alias: ClassVar[str] = "score_rounding"
    family: ClassVar[str] = "output-perturbation"
    Params = ScoreRoundingParams

    def wrap(self, inner: Any, rng: np.random.Generator) -> "Rounded":
        return Rounded(inner, None if self.params.hide else self.params.decimals)


class Rounded(Middleware):
    passes_scores = True  # the ranking is the victim's: full-catalog metrics stay valid

    def __init__(self, inner: Any, decimals: int | None) -> None:
        super().__init__(inner)
        self.decimals = decimals

    def recommend(self, histories: Histories, k: int) -> TopK:
        top = self.inner.recommend(histories, k)
        if top.scores is None or self.decimals is None:
            return TopK(top.items, None)
        return TopK(top.items, np.round(top.scores, self.decimals))
