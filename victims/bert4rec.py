"""BERT4Rec: bidirectional transformer trained with the cloze task (Sun et al., CIKM 2019).

Random items of each training sequence are replaced by a [MASK] token and predicted from both
sides. To recommend, a [MASK] is appended after the history and its prediction is scored.
"""

from __future__ import annotations

import torch
from pydantic import Field

from victims.base import NeuralVictim, SequentialModel
from victims.sasrec import SASRecModel, SASRecParams


class BERT4RecParams(SASRecParams):
    mask_prob: float = Field(0.2, gt=0, lt=1, description="share of items masked per sequence")
    heads: int = Field(2, ge=1, description="attention heads")
    sampled_above: int | None = Field(None, ge=0, description="loss=auto: catalogs larger than this train with "
                                      "sampled softmax; None: never (not measured for BERT4Rec)")
    valid_users: int = Field(0, ge=0, description="validate on a fixed random sample of this many users (0: all)")


class BERT4RecModel(SASRecModel):
    def __init__(self, n_items: int, params: BERT4RecParams) -> None:
        super().__init__(n_items, params, extra_tokens=1, causal=False)
        self.mask_id = n_items + 1
        self.mask_prob = params.mask_prob

    def training_pairs(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        full = torch.cat([inputs, targets[:, -1:]], dim=1)[:, -self.max_len :]
        real = full != 0
        masked = (torch.rand(full.shape, generator=generator) < self.mask_prob) & real
        none = ~masked.any(1)
        masked[none, -1] = True  # every row predicts at least one item
        cloze = full.masked_fill(masked, self.mask_id)
        return self.encode(cloze), full.masked_fill(~masked, 0)

    def final_hidden(self, seqs: torch.Tensor) -> torch.Tensor:
        mask = torch.full((seqs.shape[0], 1), self.mask_id, dtype=seqs.dtype)
        return self.encode(torch.cat([seqs, mask], dim=1)[:, -self.max_len :])[:, -1]


class BERT4Rec(NeuralVictim):
    """BERT4Rec victim (Sun et al. 2019). Threat model: black-box target behind the API."""

    alias = "bert4rec"
    Params = BERT4RecParams

    def build(self, n_items: int) -> SequentialModel:
        return BERT4RecModel(n_items, self.params)
