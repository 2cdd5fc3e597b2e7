"""Data-free autoregressive extraction (Yue et al., "Black-Box Attacks on Sequential
Recommenders via Data-Free Model Extraction", RecSys 2021).

Threat model: black-box top-k API only (no scores, no real user data); the attacker knows the
size of the item id space. Each synthetic history starts from one uniformly random item; after
each query an item drawn uniformly from the returned list is appended, up to ``length`` items.
Every prefix with its returned list is a training pair for the surrogate.

Unlike the reference code, the surrogate's initial weights come from the attacker's own seed
(never the victim's), negatives are drawn strictly outside the returned list, and model
selection uses held-out generated sequences only.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from attacks.extraction.base import ExtractionAttack, ExtractionParams, ProgressFn
from attacks.extraction.generation import generate, spare_starts, uniform_from_list
from attacks.extraction.transcript import Transcript
from redteam.knowledge import Knowledge
from redteam.seeding import numpy_rng


class AutoregressiveParams(ExtractionParams):
    length: int = Field(50, ge=1, description="items per generated history (queries per sequence)")


class Autoregressive(ExtractionAttack):
    """Data-free autoregressive extraction (Yue et al. 2021)."""

    alias: ClassVar[str] = "extraction.autoregressive"
    Params: ClassVar[type[AutoregressiveParams]] = AutoregressiveParams

    def collect(self, knowledge: Knowledge, *, max_queries: int, progress: ProgressFn | None = None) -> Transcript:
        rng = numpy_rng(knowledge.seed, "autoregressive")
        length = self.params.length
        count = spare_starts(max_queries, length)
        starts = list(rng.integers(1, knowledge.n_items + 1, size=(count, 1)))
        return generate(
            knowledge.api, starts=starts, lengths=np.full(count, length), choose=uniform_from_list, rng=rng,
            max_queries=max_queries, progress=(lambda used: progress("queries", used, max_queries)) if progress else None,
        )
