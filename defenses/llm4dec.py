"""LLM4Dec: a fraud classifier on language-model user embeddings, with hard 0/1 weights (the
LLM-based detection baseline of Zhang et al., SIGIR 2024, "LoRec", Section 5).

Threat model: as for LoRec (:mod:`defenses.lorec`): the defender knows fake users only through
profiles it simulates itself with a known attack, and holds item titles and a language model.

Method: every training user and every simulated fake is written as LoRec's prompt and embedded
by the language model (:mod:`defenses.lm_users`); an MLP is trained to separate the simulated
fakes (label 1) from the training users (label 0, some of them unknowingly fake); users whose
predicted probability exceeds ``threshold`` are removed from training (loss weight 0). Unlike
LoRec it uses no recommender signal and makes one hard decision before training.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from defenses.base import DefenseInputs, Detector
from defenses.simulation import SimulatedFraud, simulate_fakes
from redteam.lm import LMConfig
from redteam.params import Params
from redteam.seeding import derive_seed


class LLM4DecParams(Params):
    lm: LMConfig = Field(default_factory=LMConfig, description="language model for the user prompts")
    simulate: SimulatedFraud = Field(default_factory=SimulatedFraud, description="the defender's labelled fraudsters")
    hidden: int = Field(128, ge=4, description="MLP hidden width")
    epochs: int = Field(50, ge=1, description="MLP training epochs")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    batch: int = Field(512, ge=8, description="users per batch")
    threshold: float = Field(0.5, gt=0, lt=1, description="users above this probability are removed")


class LLM4Dec(Detector):
    """MLP fraud detector on language-model user embeddings, hard removal."""

    alias: ClassVar[str] = "llm4dec"
    Params: ClassVar[type[LLM4DecParams]] = LLM4DecParams

    def score_users(self, inputs: DefenseInputs) -> np.ndarray:
        """P(fake) of each training user from an MLP trained on the defender's simulated fakes."""
        from defenses.lm_users import user_embeddings

        p = self.params
        simulated = simulate_fakes(inputs, p.simulate)
        vectors, lm_info = user_embeddings(inputs, [*inputs.train, *simulated], p.lm, where=f"defenses.{self.alias}")
        n = len(inputs.train)
        labels = np.concatenate([np.zeros(n), np.ones(len(simulated))]).astype(np.float32)
        self.diagnostics = {"simulated_fakes": len(simulated), "simulated_with": p.simulate.attack, "language_model": lm_info}
        return train_and_score(vectors, labels, p, seed=inputs.seed)[:n]

    def flag_users(self, scores: np.ndarray) -> np.ndarray:
        return scores > self.params.threshold


def train_and_score(x: np.ndarray, y: np.ndarray, p: LLM4DecParams, *, seed: int) -> np.ndarray:
    """Train the MLP (positives up-weighted to balance the classes) and return P(fake) for every row."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "llm4dec", "batches"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "llm4dec", "init"))
        mlp = nn.Sequential(nn.Linear(x.shape[1], p.hidden), nn.ReLU(), nn.Linear(p.hidden, 1))
    xs, ys = torch.as_tensor(x), torch.as_tensor(y)
    pos_weight = torch.tensor(float((ys == 0).sum()) / max(1.0, float(ys.sum())))
    opt = torch.optim.Adam(mlp.parameters(), lr=p.lr)
    for _ in range(p.epochs):
        for idx in torch.randperm(len(xs), generator=gen).split(p.batch):
            loss = F.binary_cross_entropy_with_logits(mlp(xs[idx]).squeeze(-1), ys[idx], pos_weight=pos_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        return torch.sigmoid(mlp(xs).squeeze(-1)).numpy().astype(np.float64)
