"""Random attack: fillers drawn uniformly over the non-target items (the classic baseline of
shilling attacks, Lam & Riedl 2004; the "random" row of LoRec, RecAD and ARLib).

Threat model: the attacker can create accounts and knows the size of the item id space; no
data, no model, no API queries. Each fake profile is the plan's template (targets at the
target slots) with distinct uniformly random non-target items in the filler slots.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from attacks.poisoning.base import FakePlan, PoisoningAttack, PoisoningParams, draw_distinct
from redteam.knowledge import Knowledge
from redteam.seeding import numpy_rng


class RandomProfiles(PoisoningAttack):
    """Random fillers around the targets (shilling baseline)."""

    alias: ClassVar[str] = "poisoning.random"
    Params: ClassVar[type[PoisoningParams]] = PoisoningParams

    def craft(self, knowledge: Knowledge, plan: FakePlan) -> list[np.ndarray]:
        rng = numpy_rng(knowledge.seed, "random-profiles")
        pool = self.filler_pool(knowledge, plan)
        self.diagnostics = {"knowledge": "catalog size only"}
        return self.fill(plan, [draw_distinct(rng, pool, len(plan.filler_slots(i))) for i in range(plan.n_fakes)])
