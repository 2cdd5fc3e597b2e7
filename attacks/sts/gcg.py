"""STS by greedy coordinate gradient (Kumar & Lakkaraju, 2024, "Manipulating Large Language Models
to Increase Product Visibility").

Threat model: a vendor that controls only its own product's text appends ``n_tokens`` tokens to
its last field. White-box: the attacker holds the weights of the ranker it optimises against
(``optimise_on`` names it; evaluating the STS on a different ranker measures transfer). It knows
its competitors' texts and guesses shopper requests (the optimisation requests); evaluation uses
held-out requests and, for LLM rankers, fresh random catalog orders.

The loss is the ranker type's (:data:`attacks.sts.base.OBJECTIVES`): likelihood of "1. <name>"
after the prompt for a causal LM, a listwise softmax over similarities for a bi-encoder. The
catalog order is shuffled at every step (the paper's robust variant).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from attacks.sts.base import STSKnowledge, TextAttack, objective_class
from attacks.sts.search import GCGParams, GCGResult, gcg


class GCGAttackParams(GCGParams):
    optimise_on: str | None = Field(None, description="label of the ranker whose weights the attacker holds (None: the first ranker)")
    requests_per_step: int | None = Field(None, ge=1, description="optimisation requests in each step's loss (None: embedding all, causal LM 1)")
    temperature: float = Field(0.05, gt=0, description="softmax temperature of the bi-encoder loss")
    shuffle_order: bool = Field(True, description="causal LM: a new random catalog order every step")
    batch_size: int = Field(32, ge=1, description="candidates per forward pass")


class GCGAttack(TextAttack):
    """Strategic text sequence found by GCG against a white-box ranker."""

    alias = "sts.gcg"
    Params = GCGAttackParams
    needs_ranker = True

    def craft(self, knowledge: STSKnowledge) -> str:
        if knowledge.ranker is None:
            raise ValueError("sts.gcg needs a white-box ranker in its knowledge")
        p = self.params
        objective = self.objective(knowledge)
        generator = torch.Generator().manual_seed(knowledge.seed)
        result: GCGResult = gcg(objective, p, generator=generator, progress=self._progress)
        self.diagnostics = {**result.summary(), "losses": result.losses, "optimised_on": knowledge.ranker_label}
        return result.text

    def objective(self, knowledge: STSKnowledge) -> Any:
        p = self.params
        cls = objective_class(knowledge.ranker)
        options: dict[str, Any] = {"requests_per_step": p.requests_per_step, "batch_size": p.batch_size}
        if knowledge.ranker.alias == "ranker.embedding":
            options["temperature"] = p.temperature
        else:
            options["shuffle"] = p.shuffle_order
            if p.requests_per_step is None:
                options["requests_per_step"] = 1
        return cls(knowledge.ranker, knowledge.products, knowledge.target, knowledge.requests, **options)

    progress_callback: Any = None

    def _progress(self, step: int, loss: float) -> None:
        if self.progress_callback is not None:
            self.progress_callback(step, loss)
