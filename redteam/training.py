"""The one trainer of the neural victims (and of surrogates).

Next-item prediction at every position of each training sequence, full-softmax cross-entropy
(or sampled softmax), AdamW, length-bucketed batches, early stopping on validation NDCG@10
with the best weights restored. Per-user loss weights and per-epoch hooks let defenses
reweight users between epochs (LoRec) or add loss terms (APR).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from redteam.seeding import derive_seed

if TYPE_CHECKING:
    from victims.base import FitReport, NeuralVictim, SequentialModel


@dataclass
class Batch:
    users: torch.Tensor  # [B] indices into the training list
    inputs: torch.Tensor  # [B, L] left-padded
    targets: torch.Tensor  # [B, L] next item per position, 0 = no loss


@dataclass
class TrainState:
    """What hooks may read and change while training runs."""

    victim: "NeuralVictim"
    train: list[np.ndarray]
    user_weights: torch.Tensor  # [n_train_users], multiplies each user's loss
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    generator: torch.Generator = field(default_factory=torch.Generator)


class TrainHooks(Protocol):
    """Per-epoch callbacks; every method is optional in practice (see :class:`NoHooks`)."""

    def on_epoch_start(self, state: TrainState) -> None: ...
    def extra_loss(self, state: TrainState, model: "SequentialModel", batch: Batch, hidden: torch.Tensor) -> torch.Tensor | None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...


class NoHooks:
    def on_epoch_start(self, state: TrainState) -> None:
        return None

    def extra_loss(self, state: TrainState, model: "SequentialModel", batch: Batch, hidden: torch.Tensor) -> torch.Tensor | None:
        return None

    def on_epoch_end(self, state: TrainState) -> None:
        return None


def make_batches(
    train: list[np.ndarray], *, batch_size: int, max_len: int, generator: torch.Generator
) -> list[Batch]:
    """Group users of similar length so short histories do not pay for long ones' padding."""
    lengths = np.array([min(len(s) - 1, max_len) for s in train])
    jitter = torch.rand(len(train), generator=generator).numpy()
    order = [u for u in np.lexsort((jitter, lengths)) if lengths[u] >= 1]
    batches = []
    for start in range(0, len(order), batch_size):
        users = order[start : start + batch_size]
        width = int(lengths[users].max())
        inputs = np.zeros((len(users), width), dtype=np.int64)
        targets = np.zeros((len(users), width), dtype=np.int64)
        for row, u in enumerate(users):
            seq = np.asarray(train[u], dtype=np.int64)
            n = int(lengths[u])
            inputs[row, width - n :] = seq[:-1][-n:]
            targets[row, width - n :] = seq[1:][-n:]
        batches.append(Batch(torch.as_tensor(users), torch.from_numpy(inputs), torch.from_numpy(targets)))
    return batches


def next_item_loss(
    model: "SequentialModel",
    hidden: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    *,
    loss: str,
    negatives: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Weighted mean cross-entropy over positions with a target (weights: [B] per user)."""
    active = targets != 0
    h = hidden[active]
    y = targets[active]
    w = weights.unsqueeze(1).expand_as(targets)[active]
    if loss == "ce":
        per_pos = F.cross_entropy(model.logits(h), y, reduction="none")
    else:
        neg = torch.randint(1, model.n_items + 1, (negatives,), generator=generator)
        table = model.output_table()
        pos_logit = (h * table[y]).sum(-1, keepdim=True)
        neg_logit = h @ table[neg].T
        neg_logit = neg_logit.masked_fill(neg.unsqueeze(0) == y.unsqueeze(1), float("-inf"))
        per_pos = -F.log_softmax(torch.cat([pos_logit, neg_logit], 1), dim=1)[:, 0]
    return (per_pos * w).sum() / max(1, len(y))


def validation_ndcg10(victim: "NeuralVictim", valid: tuple[list[np.ndarray], np.ndarray]) -> float:
    from redteam.metrics import ndcg, target_ranks

    histories, targets = valid
    ranks = []
    for start in range(0, len(histories), 2048):
        scores = victim.score(histories[start : start + 2048])
        ranks.append(target_ranks(scores, targets[start : start + 2048]))
    return float(ndcg(np.concatenate(ranks), 10).mean()) if ranks else float("nan")


def train_model(
    victim: "NeuralVictim",
    train: list[np.ndarray],
    valid: tuple[list[np.ndarray], np.ndarray] | None,
    *,
    seed: int,
    hooks: Sequence[TrainHooks] = (),
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    user_weights: torch.Tensor | None = None,
) -> "FitReport":
    """Train ``victim.model`` in place; returns a :class:`FitReport`."""
    from victims.base import FitReport

    model = victim.model
    assert model is not None
    p = victim.params
    gen = torch.Generator().manual_seed(derive_seed(seed, "trainer", "batches"))
    state = TrainState(
        victim=victim,
        train=train,
        user_weights=user_weights if user_weights is not None else torch.ones(len(train)),
        generator=gen,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    report = FitReport(threads=torch.get_num_threads())
    best_score, best_state, stale = float("-inf"), None, 0
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "trainer", "dropout"))
        for epoch in range(1, p.epochs + 1):
            state.epoch = epoch
            epoch_start = time.perf_counter()
            for hook in hooks:
                hook.on_epoch_start(state)
            model.train()
            batches = make_batches(train, batch_size=p.batch_size, max_len=p.max_len, generator=gen)
            total, count = 0.0, 0
            for i in torch.randperm(len(batches), generator=gen).tolist():
                batch = batches[i]
                hidden, targets = model.training_pairs(batch.inputs, batch.targets, gen)
                loss = next_item_loss(
                    model, hidden, targets, state.user_weights[batch.users],
                    loss=p.loss, negatives=p.negatives, generator=gen,
                )
                for hook in hooks:
                    extra = hook.extra_loss(state, model, batch, hidden)
                    if extra is not None:
                        loss = loss + extra
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    model.item_emb.weight[0].zero_()
                total += float(loss.detach())
                count += 1
            metrics = {"epoch": epoch, "loss": total / max(1, count), "seconds": time.perf_counter() - epoch_start}
            if valid is not None and epoch % p.eval_every == 0:
                metrics["valid_ndcg@10"] = validation_ndcg10(victim, valid)
            state.metrics = metrics
            for hook in hooks:
                hook.on_epoch_end(state)
            report.history.append(metrics)
            report.epochs_run = epoch
            if progress is not None:
                progress(epoch, p.epochs, metrics)
            score = metrics.get("valid_ndcg@10")
            if score is None:
                continue
            if score > best_score:
                best_score, stale = score, 0
                best_state = copy.deepcopy(model.state_dict())
                report.best_epoch, report.best_valid_ndcg10 = epoch, score
            else:
                stale += 1
                if stale >= p.patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    elif report.epochs_run:
        report.best_epoch = report.epochs_run
    model.eval()
    report.seconds = time.perf_counter() - started
    report.seconds_per_epoch = report.seconds / max(1, report.epochs_run)
    return report
