"""Negative samplers for sampled-softmax training of next-item models.

Full-softmax cross-entropy scores every training position against the whole catalog, which on
Amazon Beauty (131k positions x 12,101 items per epoch) is most of an epoch's work. Sampled
softmax scores each position against its target and one shared set of drawn items instead
(Jean et al., "On Using Very Large Target Vocabulary for Neural Machine Translation", ACL 2015).
Drawn from a non-uniform proposal Q, the logits are corrected by subtracting log(n * Q(item))
(the "logQ correction"; Bengio & Senecal 2008, Yi et al., RecSys 2019), which makes the sampled
loss an estimate of the full one; drawing popular items more often makes the negatives harder.

``uniform`` keeps the trainer's original draw (``torch.randint``), so a run configured before this
module existed consumes the same random numbers and trains the same model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class NegativeDraw:
    items: torch.Tensor  # [n] item ids (1..n_items), with replacement
    log_expected: torch.Tensor | None  # [n_items + 1] log(n * Q(item)); None: no correction


class UniformNegatives:
    """Items drawn uniformly from 1..n_items; the correction would be one constant, so none."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items

    def draw(self, n: int, generator: torch.Generator) -> NegativeDraw:
        return NegativeDraw(torch.randint(1, self.n_items + 1, (n,), generator=generator), None)


class PopularityNegatives:
    """Items drawn in proportion to (training count + 1) ** power, with the logQ correction.

    ``power`` 1 is the unigram distribution, 0 the uniform one; word2vec's 0.75 sits between.
    """

    def __init__(self, train: Sequence[np.ndarray], n_items: int, *, power: float, correct: bool = True) -> None:
        # the trainer holds sequences, not the dataset: the same count as SequenceDataset.item_popularity
        flat = np.concatenate(train).astype(np.int64) if len(train) else np.zeros(0, dtype=np.int64)
        counts = np.bincount(flat, minlength=n_items + 1)[: n_items + 1].astype(np.float64)
        weights = (counts + 1.0) ** power
        weights[0] = 0.0
        self.n_items = n_items
        self.correct = correct
        self.probs = torch.as_tensor(weights / weights.sum(), dtype=torch.float32)
        self.log_probs = torch.log(self.probs.clamp_min(1e-30))

    def draw(self, n: int, generator: torch.Generator) -> NegativeDraw:
        items = torch.multinomial(self.probs, n, replacement=True, generator=generator)
        return NegativeDraw(items, self.log_probs + math.log(n) if self.correct else None)


def negative_sampler(kind: str, train: Sequence[np.ndarray], n_items: int, *, power: float = 1.0, correct: bool = True):
    """The sampler a training run's ``negative_sampler`` setting names."""
    if kind == "uniform":
        return UniformNegatives(n_items)
    if kind == "popularity":
        return PopularityNegatives(train, n_items, power=power, correct=correct)
    raise ValueError(f"negative_sampler: unknown kind {kind!r} (uniform or popularity)")
