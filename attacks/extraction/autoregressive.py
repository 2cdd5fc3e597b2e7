"""Data-free autoregressive extraction (Yue et al., "Black-Box Attacks on Sequential
Recommenders via Data-Free Model Extraction", RecSys 2021).

Threat model: black-box top-k API only (no scores, no real user data); the attacker knows the
size of the item id space. Each synthetic history starts from one uniformly random item; after
each query an item drawn uniformly from the returned list is appended, up to ``length`` items.
Every prefix with its returned list is a training pair for the surrogate.

Adaptive option (``off_answer``, ours): a detector that watches API keys can tell this attack by
its queries extending earlier queries with items from their own answers
(:mod:`defenses.stream_features`); with ``off_answer = s`` a share ``s`` of the next items comes
from the items returned so far, weighted by how often, as a real session's next item is often a
popular item not in the last list. Shorter ``length`` mimics real session lengths. The rows of
``scenarios/extraction_adaptive.yaml`` measure what that costs in agreement and buys in evasion.

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
    off_answer: float = Field(0.0, ge=0, le=1, description="adaptive option against query-stream detectors: share "
                              "of next items drawn from the items seen in earlier answers, weighted by how often they "
                              "were returned (a popularity estimate), instead of from the current answer")


class Autoregressive(ExtractionAttack):
    """Data-free autoregressive extraction (Yue et al. 2021)."""

    alias: ClassVar[str] = "extraction.autoregressive"
    Params: ClassVar[type[AutoregressiveParams]] = AutoregressiveParams

    def collect(self, knowledge: Knowledge, *, max_queries: int, progress: ProgressFn | None = None) -> Transcript:
        rng = numpy_rng(knowledge.seed, "autoregressive")
        length = self.params.length
        count = spare_starts(max_queries, length)
        starts = list(rng.integers(1, knowledge.n_items + 1, size=(count, 1)))
        choose = uniform_from_list if self.params.off_answer == 0 else \
            MixedChooser(self.params.off_answer, knowledge.n_items)
        return generate(
            knowledge.api, starts=starts, lengths=np.full(count, length), choose=choose, rng=rng,
            max_queries=max_queries, progress=(lambda used: progress("queries", used, max_queries)) if progress else None,
        )


class MixedChooser:
    """Next item from the current answer, or with probability ``off_answer`` from every item
    returned so far, weighted by how often it was returned."""

    def __init__(self, off_answer: float, n_items: int) -> None:
        self.off_answer = off_answer
        self.returned = np.zeros(n_items + 1, dtype=np.float64)

    def __call__(self, histories: list[np.ndarray], lists: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        np.add.at(self.returned, lists.reshape(-1), 1.0)
        chosen = uniform_from_list(histories, lists, rng)
        off = rng.random(len(lists)) < self.off_answer
        if off.any():
            weights = self.returned[1:] / self.returned[1:].sum()
            chosen[off] = rng.choice(len(weights), size=int(off.sum()), p=weights) + 1
        return chosen
