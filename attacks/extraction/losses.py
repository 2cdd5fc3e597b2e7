"""Distillation losses.

Each loss has two entry points: one on full-catalog scores ``logits [P, N + 1]`` (column 0 =
-inf), simple to read and test, and one on the few scores it needs, which
:mod:`attacks.extraction.distill` computes from embeddings without scoring the whole catalog.
``lists [P, k]`` are the victim's answers for the same P prefixes, best first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEGATIVE_REDRAWS = 3
NEGATIVE_POOL = 1024


def draw_negatives(lists: torch.Tensor, n_items: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One negative per listed item, uniform over 1..N and outside the row's list.

    A batch shares a pool of ``NEGATIVE_POOL`` uniform draws (so a whole batch is scored against
    the pool with one matrix product); each pair picks a pool column, redrawn when its item is
    in the row's list. Returns (pool [M], columns [P, k], outside [P, k]); ``outside`` is False
    where every redraw still hit the list, and such pairs must be ignored. The padding id is
    never drawn.
    """
    pool = torch.randint(1, n_items + 1, (NEGATIVE_POOL,), generator=generator)
    columns = torch.randint(0, NEGATIVE_POOL, lists.shape, generator=generator)
    ordered = lists.sort(dim=1).values

    def in_list(cols: torch.Tensor) -> torch.Tensor:
        items = pool[cols]
        at = torch.searchsorted(ordered, items).clamp(max=lists.shape[1] - 1)
        return ordered.gather(1, at) == items

    hit = in_list(columns)
    for _ in range(NEGATIVE_REDRAWS):
        if not bool(hit.any()):
            break
        columns = torch.where(hit, torch.randint(0, NEGATIVE_POOL, lists.shape, generator=generator), columns)
        hit = in_list(columns)
    return pool, columns, ~hit


def ranking_from_scores(listed: torch.Tensor, negative: torch.Tensor, outside: torch.Tensor, *, margin: float) -> torch.Tensor:
    """Margin hinge along consecutive list ranks + listed item over its sampled outside item."""
    # No consecutive pairs when the API returns one id (the mean of nothing would be NaN).
    order = F.relu(margin - (listed[:, :-1] - listed[:, 1:])).mean() if listed.shape[1] > 1 else listed.new_zeros(())
    gaps = F.relu(margin - (listed - negative)) * outside
    return order + gaps.sum() / outside.sum().clamp(min=1)


def ranking_loss(logits: torch.Tensor, lists: torch.Tensor, *, margin: float, generator: torch.Generator) -> torch.Tensor:
    """Yue et al.'s margin ranking loss: keep the victim's order along the list and put every
    listed item above an item sampled uniformly from OUTSIDE the list (the reference code let
    listed items and the padding id through as negatives)."""
    pool, columns, outside = draw_negatives(lists, logits.shape[1] - 1, generator)
    return ranking_from_scores(logits.gather(1, lists), logits.gather(1, pool[columns]), outside, margin=margin)


def repair_from_scores(
    victim_top: torch.Tensor, victim_scores: torch.Tensor, surrogate_top: torch.Tensor, surrogate_scores: torch.Tensor, *, margin: float
) -> torch.Tensor:
    """The repair hinges given both top-k id lists and the surrogate's scores of each."""
    missed = ~(victim_top.unsqueeze(2) == surrogate_top.unsqueeze(1)).any(2)
    extra = ~(surrogate_top.unsqueeze(2) == victim_top.unsqueeze(1)).any(2)
    kth = surrogate_scores[:, -1:].detach()
    floor = victim_scores[:, -1:].detach()
    up = F.relu(margin + kth - victim_scores) * missed
    down = F.relu(margin + surrogate_scores - floor) * extra
    return (up.sum() + down.sum()) / victim_top.numel()


def repair_loss(logits: torch.Tensor, lists: torch.Tensor, *, k: int, margin: float) -> torch.Tensor:
    """Bidirectional repair (Zhang & Liu 2024, as reconstructed in specs/extraction.md).

    V = the victim's top-k, S = the surrogate's top-k. Items of V that S misses are pushed above
    the surrogate's k-th score; items of S that V lacks are pushed below the surrogate's score
    of V's last (k-th) item. Hinges with ``margin``; the two thresholds are held fixed.
    """
    victim_top = lists[:, :k]
    top_scores, surrogate_top = logits.topk(k, dim=1)
    return repair_from_scores(victim_top, logits.gather(1, victim_top), surrogate_top, top_scores, margin=margin)


def next_item_ce(logits: torch.Tensor, next_real: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the real next items (rows with ``next_real == 0`` are ignored)."""
    known = next_real > 0
    if not bool(known.any()):
        return logits.new_zeros(())
    return F.cross_entropy(logits[known], next_real[known])
