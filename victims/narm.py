"""NARM: neural attentive session-based recommendation (Li et al., CIKM 2017).

A GRU encoder gives a global state (the last hidden state) and a local state (attention of
the last state over all earlier states); their concatenation, mapped by a bilinear layer, is
scored against the item embeddings. For training, the same computation runs at every
position with a causal attention mask.
"""

from __future__ import annotations

import torch
from torch import nn

from victims.base import NeuralVictim, SequentialModel
from victims.gru4rec import run_gru
from victims.params import NeuralParams


class NARMParams(NeuralParams):
    pass


class NARMModel(SequentialModel):
    def __init__(self, n_items: int, params: NARMParams) -> None:
        super().__init__(n_items, params)
        d = params.hidden
        self.emb_dropout = nn.Dropout(params.dropout / 2)
        self.gru = nn.GRU(d, d, batch_first=True)
        self.a_query = nn.Linear(d, d, bias=False)
        self.a_key = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, 1, bias=False)
        self.ct_dropout = nn.Dropout(params.dropout)
        self.bilinear = nn.Linear(2 * d, d, bias=False)

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        states = run_gru(self.gru, self.emb_dropout(self.item_emb(seqs)), seqs)  # [B, L, D]
        length = seqs.shape[1]
        # alpha[b, t, j] = v^T sigmoid(A1 h_t + A2 h_j), for real j <= t
        energy = torch.sigmoid(self.a_query(states).unsqueeze(2) + self.a_key(states).unsqueeze(1))
        alpha = self.v(energy).squeeze(-1)
        allowed = (seqs != 0).unsqueeze(1) & torch.ones(length, length, dtype=torch.bool).tril()
        alpha = alpha.masked_fill(~allowed, 0.0)
        local = alpha @ states
        return self.bilinear(self.ct_dropout(torch.cat([states, local], dim=-1)))


class NARM(NeuralVictim):
    """NARM victim (Li et al. 2017). Threat model: black-box target behind the API."""

    alias = "narm"
    Params = NARMParams
    batch_by_exact_length = True  # packed GRU: rows of other lengths change the per-step batch

    def build(self, n_items: int) -> SequentialModel:
        return NARMModel(n_items, self.params)
