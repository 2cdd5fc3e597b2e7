"""Data-free baseline: random histories (Yue et al., RecSys 2021, their "random" row).

Threat model: black-box top-k API only (no scores, no data); the attacker knows the size of
the item id space. Histories of i.i.d. uniform items; every prefix is queried.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from attacks.extraction.base import ExtractionAttack, ExtractionParams, ProgressFn
from attacks.extraction.generation import generate, spare_starts, uniform_from_catalog
from attacks.extraction.transcript import Transcript
from redteam.knowledge import Knowledge
from redteam.seeding import numpy_rng


class RandomParams(ExtractionParams):
    length: int = Field(50, ge=1, description="items per generated history (queries per sequence)")


class RandomSequences(ExtractionAttack):
    """Data-free extraction from uniformly random histories (Yue et al. 2021 baseline)."""

    alias: ClassVar[str] = "extraction.random"
    Params: ClassVar[type[RandomParams]] = RandomParams

    def collect(self, knowledge: Knowledge, *, max_queries: int, progress: ProgressFn | None = None) -> Transcript:
        rng = numpy_rng(knowledge.seed, "random-sequences")
        length = self.params.length
        count = spare_starts(max_queries, length)
        return generate(
            knowledge.api, starts=list(rng.integers(1, knowledge.n_items + 1, size=(count, 1))), lengths=np.full(count, length),
            choose=uniform_from_catalog(knowledge.n_items), rng=rng, max_queries=max_queries,
            progress=(lambda used: progress("queries", used, max_queries)) if progress else None,
        )
