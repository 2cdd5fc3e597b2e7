"""HSTU: Hierarchical Sequential Transduction Units (Zhai et al., "Actions Speak Louder than Words:
Trillion-Parameter Sequential Transducers for Generative Recommendations", ICML 2024).

A dense, CPU-first version of the published layer (no jagged kernels). Each layer, pre-norm and
residual: one linear map through SiLU gives U, V, Q, K; pointwise aggregated attention
``A = SiLU(Q K^T + rab) / n`` under a causal mask, without softmax; output
``Linear(Dropout(U * LayerNorm(A V))) + x``. ``rab`` is a learned bias per relative position plus a
learned bias per bucket of the log time gap (``floor(log(max(1, |t_i - t_j|)) / 0.301)``); a pair
with an unknown time (no timestamps in the data set, an injected profile, an API query, which
carries item ids only) gets one more learned bias, the "unknown gap" bucket. Training hides a
user's times with probability ``time_dropout`` so that the unknown-gap path, the one the API
answers with, is trained too.

Where this differs from the reference code (declared, none of it asked by the paper): ``n`` is
the number of real positions each query attends to (the reference divides by the padded length,
which would make an answer depend on the other histories of its batch; the LayerNorm on ``A V``
removes the scale up to its epsilon anyway); the gap is between the two events' own times (the
reference measures it from the time of the action being predicted, which the API does not know);
without timestamps the position bias stays and every pair takes the unknown-gap bias (the
reference drops the relative bias altogether; one shared constant, so equivalent up to training);
position embeddings count back from the newest item; the attention biases start at zero; a final
LayerNorm follows the last layer; linear layers keep torch's default initialisation. Injected fake
profiles carry no times, so on a timestamped data set they always take the unknown-gap bias, as
API queries do. Training uses the project's trainer: full-softmax cross-entropy by default; the
reference configuration is ``loss: sampled, normalize: true, temperature: .05, negatives: 128,
negative_sampler: uniform`` (measured weaker on Beauty: docs/results/victims.md; with the
project's 2,048 popularity negatives and logQ correction instead, normalised training collapses).

Threat model: a black-box target behind the API, like every victim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from victims.base import NeuralVictim, SequentialModel
from victims.params import NeuralParams

LOG_BASE = 0.301  # the reference's bucket width on the natural-log scale


class HSTUParams(NeuralParams):
    layers: int = Field(2, ge=1, description="HSTU layers (the reference configuration: 2)")
    heads: int = Field(1, ge=1, description="attention heads (the reference configuration: 1)")
    time_buckets: int = Field(128, ge=1, description="buckets of the log time gap in the attention bias")
    time_dropout: float = Field(0.1, ge=0, le=1, description="share of training users whose event times are "
                                "hidden in each batch (trains the unknown-gap bias the API answers with)")
    normalize: bool = Field(False, description="L2-normalise hidden states and item vectors before scoring "
                            "(the reference recipe, with a temperature)")
    temperature: float = Field(0.05, gt=0, description="with normalize: logits = cosine / temperature")


def time_gap_buckets(times: torch.Tensor, buckets: int) -> torch.Tensor:
    """[B, L] event times (NaN = unknown) -> [B, L, L] bucket of the log absolute gap between each
    pair of events, 0..buckets-1; ``buckets`` (the unknown-gap bucket) where either time is unknown."""
    gaps = (times.unsqueeze(2) - times.unsqueeze(1)).to(torch.float64).abs()
    unknown = gaps.isnan()
    index = (gaps.nan_to_num(1.0).clamp(min=1).log() / LOG_BASE).floor().long().clamp(0, buckets - 1)
    return index.masked_fill(unknown, buckets)


class HSTULayer(nn.Module):
    def __init__(self, hidden: int, heads: int, max_len: int, time_buckets: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.heads, self.head_dim = heads, hidden // heads
        self.norm_in = nn.LayerNorm(hidden, eps=1e-6)
        self.uvqk = nn.Linear(hidden, 4 * hidden)
        self.position_bias = nn.Parameter(torch.zeros(2 * max_len - 1))
        self.time_bias = nn.Parameter(torch.zeros(time_buckets + 1))  # the last: unknown gap
        self.norm_attn = nn.LayerNorm(hidden, eps=1e-6)
        self.out = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.max_len = max_len

    def relative_bias(self, length: int, time_buckets: torch.Tensor | None) -> torch.Tensor:
        """[B or 1, L, L] rab: the bias of the offset i - j plus the time-gap bias (the unknown-gap
        bias everywhere when ``time_buckets`` is None)."""
        offsets = torch.arange(length).unsqueeze(1) - torch.arange(length).unsqueeze(0)
        bias = self.position_bias[offsets + self.max_len - 1].unsqueeze(0)
        return bias + (self.time_bias[-1] if time_buckets is None else self.time_bias[time_buckets])

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, time_buckets: torch.Tensor | None) -> torch.Tensor:
        b, length, width = x.shape
        u, v, q, k = F.silu(self.uvqk(self.norm_in(x))).split(width, dim=-1)
        q, k, v = (t.view(b, length, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) + self.relative_bias(length, time_buckets).unsqueeze(1)
        weights = F.silu(scores) * allowed.unsqueeze(1)
        attended = allowed.sum(-1, keepdim=True).clamp(min=1).unsqueeze(1)
        a = ((weights / attended) @ v).transpose(1, 2).reshape(b, length, width)
        return x + self.out(self.dropout(u * self.norm_attn(a)))


class HSTUModel(SequentialModel):
    reads_event_times = True

    def __init__(self, n_items: int, params: HSTUParams) -> None:
        super().__init__(n_items, params)
        self.params = params
        self.pos_emb = nn.Embedding(params.max_len, params.hidden)
        self.emb_dropout = nn.Dropout(params.dropout)
        self.layers = nn.ModuleList(HSTULayer(params.hidden, params.heads, params.max_len, params.time_buckets,
                                              params.dropout) for _ in range(params.layers))
        self.final_norm = nn.LayerNorm(params.hidden, eps=1e-6)

    def encode(self, seqs: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L] left-padded ids (and optional [B, L] event times, same padding, NaN = unknown) -> [B, L, D]."""
        length = seqs.shape[1]
        positions = torch.arange(self.max_len - length, self.max_len)
        real = seqs != 0
        x = self.item_emb(seqs) * math.sqrt(self.item_emb.embedding_dim) + self.pos_emb(positions)
        x = self.emb_dropout(x) * real.unsqueeze(-1)
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        allowed = (real.unsqueeze(1) & causal).to(x.dtype)
        buckets = None if times is None else time_gap_buckets(times, self.params.time_buckets)
        for layer in self.layers:
            x = layer(x, allowed, buckets) * real.unsqueeze(-1)
        x = self.final_norm(x)
        return F.normalize(x, dim=-1) / self.params.temperature if self.params.normalize else x

    def training_pairs(self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator,
                       times: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if times is not None and self.training and self.params.time_dropout > 0:
            hidden = torch.rand(times.shape[0], generator=generator) < self.params.time_dropout
            times = times.masked_fill(hidden.unsqueeze(1), float("nan"))
        return self.encode(inputs, times), targets

    def final_hidden(self, seqs: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(seqs, times)[:, -1]

    def output_table(self) -> torch.Tensor:
        table = super().output_table()
        return F.normalize(table, dim=-1) if self.params.normalize else table


class HSTU(NeuralVictim):
    """HSTU victim (Zhai et al., ICML 2024). Trained with the data set's event times where it has
    them (the trainer's ``times``), and scored with them in the testbed's own clean evaluation; the
    black-box API carries item ids only, so its answers use the unknown-gap bias."""

    alias = "hstu"
    Params = HSTUParams
    reads_event_times = True

    def build(self, n_items: int) -> SequentialModel:
        return HSTUModel(n_items, self.params)
