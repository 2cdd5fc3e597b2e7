"""Distillation losses on the surrogate's full-catalog scores ``logits [P, N + 1]`` (column 0 = -inf).

``lists [P, k]`` are the victim's answers for the same P prefixes, best first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEGATIVE_REDRAWS = 3


def ranking_loss(logits: torch.Tensor, lists: torch.Tensor, *, margin: float, generator: torch.Generator) -> torch.Tensor:
    """Yue et al.'s margin ranking loss: keep the victim's order along the list (consecutive
    ranks) and put every listed item above an item sampled uniformly from OUTSIDE the list.

    Negatives are drawn from 1..N and redrawn when they hit the list; the padding id is never
    drawn (the reference code let both happen).
    """
    scored = logits.gather(1, lists)
    order = F.relu(margin - (scored[:, :-1] - scored[:, 1:])).mean()
    listed = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, lists, True)
    n_items = logits.shape[1] - 1
    negatives = torch.randint(1, n_items + 1, lists.shape, generator=generator)
    for _ in range(NEGATIVE_REDRAWS):
        hit = listed.gather(1, negatives)
        if not bool(hit.any()):
            break
        negatives = torch.where(hit, torch.randint(1, n_items + 1, lists.shape, generator=generator), negatives)
    outside = ~listed.gather(1, negatives)
    gaps = F.relu(margin - (scored - logits.gather(1, negatives)))
    return order + (gaps * outside).sum() / outside.sum().clamp(min=1)


def repair_loss(logits: torch.Tensor, lists: torch.Tensor, *, k: int, margin: float) -> torch.Tensor:
    """Bidirectional repair (Zhang & Liu 2024, as reconstructed in specs/extraction.md).

    V = the victim's top-k, S = the surrogate's top-k. Items of V that S misses are pushed above
    the surrogate's k-th score; items of S that V lacks are pushed below the surrogate's score
    of V's last (k-th) item. Hinges with ``margin``; the two thresholds are held fixed.
    """
    victim_top = lists[:, :k]
    top_scores, surrogate_top = logits.topk(k, dim=1)
    victim_scores = logits.gather(1, victim_top)
    missed = ~(victim_top.unsqueeze(2) == surrogate_top.unsqueeze(1)).any(2)
    extra = ~(surrogate_top.unsqueeze(2) == victim_top.unsqueeze(1)).any(2)
    kth = top_scores[:, -1:].detach()
    floor = victim_scores[:, -1:].detach()
    up = F.relu(margin + kth - victim_scores) * missed
    down = F.relu(margin + top_scores - floor) * extra
    return (up.sum() + down.sum()) / victim_top.numel()


def next_item_ce(logits: torch.Tensor, next_real: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the real next items (rows with ``next_real == 0`` are ignored)."""
    known = next_real > 0
    if not bool(known.any()):
        return logits.new_zeros(())
    return F.cross_entropy(logits[known], next_real[known])
