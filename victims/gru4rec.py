"""GRU4Rec: session-based recommendation with recurrent networks (Hidasi et al., ICLR 2016).

A GRU over the item embeddings; the state after each item scores the next one against the
tied item embeddings. Trained with the shared trainer (cross-entropy as in Hidasi & Karatzoglou's
later CE variant; sampled softmax on catalogs above 5,000 items), not the paper's session-parallel
BPR/TOP1 mini-batches.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from victims.base import NeuralVictim, SequentialModel
from victims.batching import left_to_right, right_to_left
from victims.params import LargeCatalogParams


class GRU4RecParams(LargeCatalogParams):  # on Beauty: 0.32x the time, NDCG@10 inside the full recipe's interval
    layers: int = Field(1, ge=1, description="stacked GRU layers")
    # with SASRec's sampler (power 1) GRU4Rec lost 18% of NDCG@10 on Beauty
    sampler_power: float = Field(0.5, ge=0, le=1, description="popularity sampler: draw in proportion to (count + 1) ** power")


def run_gru(gru: nn.GRU, x: torch.Tensor, seqs: torch.Tensor) -> torch.Tensor:
    """Run a GRU over left-padded input so padding never enters the recurrent state."""
    lengths = (seqs != 0).sum(1).clamp(min=1)
    packed = pack_padded_sequence(left_to_right(x, lengths), lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = gru(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return right_to_left(out, lengths)


class GRU4RecModel(SequentialModel):
    def __init__(self, n_items: int, params: GRU4RecParams) -> None:
        super().__init__(n_items, params)
        self.dropout = nn.Dropout(params.dropout)
        self.gru = nn.GRU(params.hidden, params.hidden, num_layers=params.layers, batch_first=True)
        self.proj = nn.Linear(params.hidden, params.hidden)

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(run_gru(self.gru, self.dropout(self.item_emb(seqs)), seqs)))


class GRU4Rec(NeuralVictim):
    """GRU4Rec victim (Hidasi et al. 2016). Threat model: black-box target behind the API."""

    alias = "gru4rec"
    Params = GRU4RecParams
    batch_by_exact_length = True  # packed GRU: rows of other lengths change the per-step batch

    def build(self, n_items: int) -> SequentialModel:
        return GRU4RecModel(n_items, self.params)
