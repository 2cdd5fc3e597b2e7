"""The few-shot method's learned generator parts (Zhang & Liu, arXiv 2411.11677, reconstructed).

* Probabilistic interaction sampler: a small causal self-attention encoder over the history
  scores each candidate in the victim's returned list (item embedding . state, plus a learned
  bias per list rank); a softmax over the list is the sampling distribution. Trained on the
  few-shot data with cross-entropy on the real next item where it appears in the list.
* Synthesis determinant signal: a linear layer + sigmoid on the same state gives the probability
  that the next real interaction comes from the victim's list. Trained with BCE.

The paper also concatenates item side information; this reconstruction has no text input yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from attacks.extraction.distill import make_batches, windows
from attacks.extraction.transcript import Transcript
from victims.batching import left_pad
from victims.sasrec import SASRecModel, SASRecParams


class InteractionSampler(nn.Module):
    def __init__(self, n_items: int, list_len: int, *, hidden: int, max_len: int) -> None:
        super().__init__()
        self.encoder = SASRecModel(n_items, SASRecParams(hidden=hidden, layers=1, heads=1, dropout=0.1, max_len=max_len))
        self.rank_bias = nn.Parameter(torch.zeros(list_len))
        self.signal = nn.Linear(hidden, 1)
        self.max_len = max_len

    def candidate_logits(self, states: torch.Tensor, lists: torch.Tensor) -> torch.Tensor:
        """[P, k] score of each listed item as the next interaction."""
        emb = self.encoder.embed_items(lists)
        return (emb @ states.unsqueeze(-1)).squeeze(-1) + self.rank_bias[: lists.shape[1]]

    def signal_logit(self, states: torch.Tensor) -> torch.Tensor:
        return self.signal(states).squeeze(-1)


@dataclass(frozen=True)
class SamplerFit:
    epochs: int
    positions: int
    in_list_rate: float  # share of real next items that were in the victim's list
    final_loss: float


def fit_sampler(sampler: InteractionSampler, few_shot: Transcript, *, epochs: int, lr: float, seed: int) -> SamplerFit:
    """Train the sampler and the signal jointly on the labelled few-shot transcript."""
    rng = np.random.default_rng(seed)
    pieces = windows(few_shot, sampler.max_len)
    optimizer = torch.optim.AdamW(sampler.parameters(), lr=lr)
    loss_value, positions, hits = float("nan"), 0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(epochs):
            sampler.train()
            total, count = 0.0, 0
            for batch in make_batches(pieces, 512, rng):
                known = batch.next_real > 0
                if not bool(known.any()):
                    continue
                states = sampler.encoder.encode(batch.inputs)[known]
                lists, target = batch.lists[known], batch.next_real[known]
                match = lists == target.unsqueeze(1)
                in_list = match.any(1)
                loss = F.binary_cross_entropy_with_logits(sampler.signal_logit(states), in_list.float())
                if bool(in_list.any()):
                    loss = loss + F.cross_entropy(sampler.candidate_logits(states[in_list], lists[in_list]), match[in_list].float().argmax(1))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, count = total + float(loss.detach()), count + 1
            loss_value = total / max(1, count)
    for nxt, lists in zip(few_shot.next_real, few_shot.lists):
        known = nxt > 0
        positions += int(known.sum())
        hits += int((lists[known] == nxt[known, None]).any(1).sum())
    sampler.eval()
    return SamplerFit(epochs=epochs, positions=positions, in_list_rate=hits / max(1, positions), final_loss=loss_value)


class FewShotChooser:
    """Picks the next item of a synthetic sequence: from the list (sampler) with probability p_t
    (signal), else from the items real users moved to outside the victim's list."""

    def __init__(self, sampler: InteractionSampler, off_list: np.ndarray, *, use_sampler: bool, use_signal: bool) -> None:
        self.sampler = sampler
        self.off_list = off_list / off_list.sum()
        self.use_sampler = use_sampler
        self.use_signal = use_signal

    @torch.no_grad()
    def __call__(self, histories: list[np.ndarray], lists: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lists_t = torch.as_tensor(lists, dtype=torch.int64)
        n, k = lists.shape
        need_state = self.use_sampler or self.use_signal
        states = self.sampler.encoder.final_hidden(left_pad(histories, self.sampler.max_len)) if need_state else None
        if self.use_sampler:
            probs = torch.softmax(self.sampler.candidate_logits(states, lists_t), dim=1).numpy().astype(np.float64)
        else:
            probs = np.full((n, k), 1.0 / k)
        cumulative = probs.cumsum(1)
        cols = (cumulative < rng.random((n, 1)) * cumulative[:, -1:]).sum(1).clip(max=k - 1)
        chosen = lists[np.arange(n), cols].astype(np.int64)
        if self.use_signal:
            p_list = torch.sigmoid(self.sampler.signal_logit(states)).numpy()
            outside = rng.random(n) >= p_list
            if outside.any():
                chosen[outside] = rng.choice(len(self.off_list), size=int(outside.sum()), p=self.off_list)
        return chosen


def off_list_distribution(few_shot: Transcript, n_items: int, *, explore: float = 0.0) -> np.ndarray:
    """Where a synthetic sequence goes when it leaves the victim's list: the real next items that
    the victim did NOT list (fallback: few-shot popularity), mixed with a uniform share
    ``explore`` over the whole catalog. Returns probabilities over ids 0..N (0 = padding, never)."""
    counts = np.zeros(n_items + 1)
    for nxt, lists in zip(few_shot.next_real, few_shot.lists):
        known = nxt > 0
        missed = ~(lists[known] == nxt[known, None]).any(1)
        np.add.at(counts, nxt[known][missed], 1)
    if counts.sum() == 0:
        for seq in few_shot.sequences:
            np.add.at(counts, seq, 1)
    counts[0] = 0
    uniform = np.ones(n_items + 1)
    uniform[0] = 0
    return (1 - explore) * counts / counts.sum() + explore * uniform / n_items
