"""Train a surrogate on a transcript: the victim's lists become ranking targets.

Model selection uses only the attacker's data: a held-out slice of the transcript's own
sequences, scored by agreement@10 with the victim's recorded lists. The real validation and
test users are never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from attacks.extraction.losses import draw_negatives, next_item_ce, ranking_from_scores, repair_from_scores
from attacks.extraction.transcript import Transcript
from redteam.seeding import derive_seed
from redteam.trainer_loop import adamw, gradient_step, run_epochs
from victims.base import NeuralVictim, SequentialModel

HOLDOUT_POSITIONS = 4000
FULL_SCORING_RATIO = 16  # score the whole catalog when it is at most this many times a list


@dataclass(frozen=True)
class DistillSettings:
    epochs: int = 30
    patience: int = 5
    batch_positions: int = 800
    lr: float = 5e-3
    margin: float = 0.5
    repair: bool = False
    repair_k: int = 10
    repair_weight: float = 1.0
    ce_weight: float = 0.0
    holdout: float = 0.1
    min_epochs: int = 0
    smoothing: float = 0.0


@dataclass
class DistillReport:
    epochs_run: int = 0
    best_epoch: int = 0
    best_holdout_agreement10: float = float("nan")
    seconds: float = 0.0
    positions: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class _Batch:
    inputs: torch.Tensor  # [B, W] left-padded
    lists: torch.Tensor  # [B, W, k]
    next_real: torch.Tensor  # [B, W]


def windows(transcript: Transcript, max_len: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cut sequences longer than the surrogate's window into consecutive windows."""
    out = []
    for seq, lists, nxt in zip(transcript.sequences, transcript.lists, transcript.next_real):
        for start in range(0, len(seq), max_len):
            out.append((seq[start : start + max_len], lists[start : start + max_len], nxt[start : start + max_len]))
    return out


def make_batches(pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]], max_positions: int, rng: np.random.Generator) -> list[_Batch]:
    """Length-bucketed batches of about ``max_positions`` prefixes each (similar lengths together,
    left-padded like the victims' input). Sizing by prefixes, not sequences, keeps the number of
    optimiser steps per epoch the same for 50-item synthetic walks and 7-item real histories."""
    lengths = np.array([len(p[0]) for p in pieces])
    order = np.lexsort((rng.random(len(pieces)), lengths))
    groups, current, total = [], [], 0
    for i in order:
        if current and total + lengths[i] > max_positions:
            groups.append(current)
            current, total = [], 0
        current.append(i)
        total += int(lengths[i])
    if current:
        groups.append(current)
    batches = []
    for group in groups:
        chosen = [pieces[i] for i in group]
        width = max(len(c[0]) for c in chosen)
        k = chosen[0][1].shape[1]
        inputs = np.zeros((len(chosen), width), dtype=np.int64)
        lists = np.zeros((len(chosen), width, k), dtype=np.int64)
        nxt = np.zeros((len(chosen), width), dtype=np.int64)
        for row, (seq, lst, after) in enumerate(chosen):
            inputs[row, width - len(seq) :] = seq
            lists[row, width - len(seq) :] = lst
            nxt[row, width - len(seq) :] = after
        batches.append(_Batch(torch.from_numpy(inputs), torch.from_numpy(lists), torch.from_numpy(nxt)))
    return batches


def position_states(model: SequentialModel, inputs: torch.Tensor) -> torch.Tensor:
    """[B, W, D]: the state that scores the next item after each prefix of each row.

    Causal models give every prefix's state in one pass; a bidirectional model (BERT4Rec)
    must see each prefix on its own, with its trailing mask token.
    """
    if getattr(model, "causal", True):
        return model.encode(inputs)
    b, width = inputs.shape
    prefixes = inputs.unsqueeze(1).expand(b, width, width).clone()
    future = torch.ones(width, width, dtype=torch.bool).triu(1)
    prefixes[:, future] = 0
    # Re-align each prefix to the right edge, as left padding expects.
    shift = (width - 1 - torch.arange(width)).view(1, width, 1)
    idx = (torch.arange(width).view(1, 1, width) - shift) % width
    aligned = prefixes.gather(2, idx.expand(b, width, width))
    return model.final_hidden(aligned.reshape(b * width, width)).view(b, width, -1)


def holdout_agreement(surrogate: NeuralVictim, transcript: Transcript, rng: np.random.Generator, k: int = 10) -> float:
    """Mean overlap of the surrogate's top-k with the victim's recorded top-k on held-out prefixes
    (k is capped at the API's list length: with fewer than k ids per answer it is agreement@len)."""
    from redteam.metrics import agreement_at_k, topk_items

    if len(transcript):
        k = min(k, transcript.lists[0].shape[1])
    prefixes, lists = [], []
    for seq, lst in zip(transcript.sequences, transcript.lists):
        for t in range(len(seq)):
            prefixes.append(seq[: t + 1])
            lists.append(lst[t, :k])
    if not prefixes:
        return float("nan")
    if len(prefixes) > HOLDOUT_POSITIONS:
        pick = np.sort(rng.choice(len(prefixes), HOLDOUT_POSITIONS, replace=False))
        prefixes, lists = [prefixes[i] for i in pick], [lists[i] for i in pick]
    values = []
    for start in range(0, len(prefixes), 1024):
        top = topk_items(surrogate.score(prefixes[start : start + 1024]), k)
        values.append(agreement_at_k(top, np.stack(lists[start : start + 1024]), k))
    return float(np.concatenate(values).mean())


def distill(
    surrogate: NeuralVictim,
    transcript: Transcript,
    *,
    settings: DistillSettings,
    seed: int,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> DistillReport:
    """Train ``surrogate.model`` (already initialised) in place on ``transcript``.

    The epoch loop (early stopping on held-out agreement, else on the training loss, and the
    best-weight restore) is :func:`redteam.trainer_loop.run_epochs`.
    """
    model = surrogate.model
    assert model is not None
    rng = np.random.default_rng(derive_seed(seed, "distill", "split"))
    train, held = transcript.split(settings.holdout, rng) if settings.holdout > 0 else (transcript, Transcript())
    pieces = windows(train, surrogate.params.max_len)
    gen = torch.Generator().manual_seed(derive_seed(seed, "distill", "negatives"))
    optimizer = adamw(model.parameters(), lr=settings.lr, weight_decay=0.01)  # torch's AdamW default, as before

    def run_epoch(epoch: int) -> dict[str, float]:
        model.train()
        total, count = 0.0, 0
        for batch in make_batches(pieces, settings.batch_positions, rng):
            total += gradient_step(model, optimizer, batch_loss(model, batch, settings, gen))
            count += 1
        model.eval()
        return {"epoch": epoch, "loss": total / max(1, count)}

    key = "holdout_agreement@10"
    result = run_epochs(
        model,
        epochs=settings.epochs,
        patience=settings.patience,
        min_epochs=settings.min_epochs,
        smoothing=settings.smoothing,
        dropout_seed=derive_seed(seed, "distill", "dropout"),
        run_epoch=run_epoch,
        evaluate=(lambda: holdout_agreement(surrogate, held, np.random.default_rng(0))) if len(held) else None,
        score_key=key,
        select=lambda metrics: metrics.get(key, -metrics["loss"]),
        progress=progress,
    )
    best = result.best_metrics
    return DistillReport(
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        best_holdout_agreement10=best.get(key, float("nan")) if best is not None else float("nan"),
        seconds=result.seconds,
        positions=train.queries,
        history=result.history,
    )


class _Scores:
    """The surrogate's scores of chosen items for P prefixes.

    A small catalog is scored in full once (one matrix product); a large one item by item
    (gathered embeddings), with the full catalog scored only without gradient where a loss
    needs the surrogate's own top-k. Both give the same numbers.
    """

    def __init__(self, model: SequentialModel, hidden: torch.Tensor, list_len: int) -> None:
        self.model, self.hidden = model, hidden
        self.table = model.output_table()
        self.logits = model.logits(hidden) if model.n_items <= FULL_SCORING_RATIO * list_len else None

    def of(self, ids: torch.Tensor) -> torch.Tensor:
        if self.logits is not None:
            return self.logits.gather(1, ids)
        return torch.bmm(F.embedding(ids, self.table), self.hidden.unsqueeze(2)).squeeze(2)

    def of_pool(self, pool: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        if self.logits is not None:
            return self.logits.gather(1, pool[columns])
        return (self.hidden @ self.table[pool].T).gather(1, columns)

    def top(self, k: int) -> torch.Tensor:
        with torch.no_grad():
            full = self.logits.detach() if self.logits is not None else self.model.logits(self.hidden)
            return full.topk(k, dim=1).indices

    def rows(self, keep: torch.Tensor) -> torch.Tensor:
        """Full-catalog logits (with gradient) of the rows in ``keep``."""
        return self.logits[keep] if self.logits is not None else self.model.logits(self.hidden[keep])


def batch_loss(model: SequentialModel, batch: _Batch, settings: DistillSettings, gen: torch.Generator) -> torch.Tensor:
    """The distillation loss of one batch (equal to the losses on full-catalog logits; see tests)."""
    active = batch.inputs != 0
    lists = batch.lists[active]
    scores = _Scores(model, position_states(model, batch.inputs)[active], lists.shape[1])
    listed = scores.of(lists)
    pool, columns, outside = draw_negatives(lists, model.n_items, gen)
    loss = ranking_from_scores(listed, scores.of_pool(pool, columns), outside, margin=settings.margin)
    if settings.repair:
        k = min(settings.repair_k, lists.shape[1])
        surrogate_top = scores.top(k)
        loss = loss + settings.repair_weight * repair_from_scores(
            lists[:, :k], listed[:, :k], surrogate_top, scores.of(surrogate_top), margin=settings.margin)
    if settings.ce_weight > 0:
        nxt = batch.next_real[active]
        known = nxt > 0
        if bool(known.any()):
            loss = loss + settings.ce_weight * next_item_ce(scores.rows(known), nxt[known])
    return loss
