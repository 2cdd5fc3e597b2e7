"""The one trainer of the neural victims (and of surrogates).

Next-item prediction at every position of each training sequence, full-softmax cross-entropy
(or sampled softmax), AdamW, length-bucketed batches, early stopping on validation NDCG@10
with the best weights restored. Per-user loss weights and per-epoch hooks let defenses
reweight users between epochs (LoRec) or add loss terms (APR). The epoch loop itself (early
stopping, best weights, progress) is :func:`redteam.trainer_loop.run_epochs`, shared with the
surrogate distillation. Victims are typed by the small protocols below: this module imports no
victim code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from redteam.negatives import PopularityNegatives, UniformNegatives, negative_sampler
from redteam.seeding import derive_seed
from redteam.trainer_loop import adamw, gradient_step, run_epochs


@dataclass
class FitReport:
    """What a training run did: epochs, best validation score, time, per-epoch history."""

    epochs_run: int = 0
    best_epoch: int = 0
    best_valid_ndcg10: float = float("nan")
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    threads: int = 1
    loss: str = "ce"  # the loss trained with (``auto`` resolved)
    event_times: bool = False  # whether the model was trained with event times
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrainSettings(Protocol):
    """The training settings the trainer reads (``victims.params.TrainParams`` has them all)."""

    @property
    def epochs(self) -> int: ...
    @property
    def patience(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def lr(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def loss(self) -> str: ...
    @property
    def sampled_above(self) -> int | None: ...
    @property
    def negatives(self) -> int: ...
    @property
    def max_len(self) -> int: ...
    @property
    def eval_every(self) -> int: ...
    @property
    def negative_sampler(self) -> str: ...
    @property
    def sampler_power(self) -> float: ...
    @property
    def valid_users(self) -> int: ...


class TrainableModel(Protocol):
    """What the trainer calls on a next-item model (``victims.base.SequentialModel`` is one)."""

    n_items: int
    training: bool

    def training_pairs(self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...
    def output_table(self) -> torch.Tensor: ...
    def logits(self, hidden: torch.Tensor) -> torch.Tensor: ...
    def reset_padding_(self) -> None: ...
    def parameters(self) -> Iterator[torch.nn.Parameter]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: dict[str, Any]) -> Any: ...
    def train(self, mode: bool = True) -> Any: ...
    def eval(self) -> Any: ...


class TrainableVictim(Protocol):
    """What the trainer needs of a victim (``victims.base.NeuralVictim`` is one): its model,
    its training settings, and whole-catalog scores for validation."""

    model: Any  # a TrainableModel once built; None before

    @property
    def params(self) -> TrainSettings: ...
    def score(self, histories: Sequence[Sequence[int] | np.ndarray]) -> torch.Tensor: ...


@dataclass(frozen=True)
class EventTimes:
    """When each event happened, for models that read it (``reads_event_times``; HSTU's time bias).

    ``train[u]`` aligns with the training sequence ``u`` (None for a user without times, such as an
    injected profile); ``valid[i]`` with validation history ``i``. Seconds; NaN marks an unknown time.
    """

    train: Sequence[np.ndarray | None]
    valid: Sequence[np.ndarray] | None = None


@dataclass
class Batch:
    users: torch.Tensor  # [B] indices into the training list
    inputs: torch.Tensor  # [B, L] left-padded
    targets: torch.Tensor  # [B, L] next item per position, 0 = no loss
    times: torch.Tensor | None = None  # [B, L] float64 event times of ``inputs``, NaN where unknown or padding


@dataclass
class TrainState:
    """What hooks may read and change while training runs."""

    victim: TrainableVictim
    train: list[np.ndarray]
    user_weights: torch.Tensor  # [n_train_users], multiplies each user's loss
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    generator: torch.Generator = field(default_factory=torch.Generator)
    sampler: UniformNegatives | PopularityNegatives | None = None  # loss=sampled: the negatives' source
    loss: str = "ce"  # "ce" or "sampled": the settings' loss with ``auto`` resolved for this catalog


class TrainHooks(Protocol):
    """Per-epoch callbacks; every method is optional in practice (see :class:`NoHooks`)."""

    def on_epoch_start(self, state: TrainState) -> None: ...
    def extra_loss(self, state: TrainState, model: TrainableModel, batch: Batch, hidden: torch.Tensor) -> torch.Tensor | None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...


class NoHooks:
    def on_epoch_start(self, state: TrainState) -> None:
        return None

    def extra_loss(self, state: TrainState, model: TrainableModel, batch: Batch, hidden: torch.Tensor) -> torch.Tensor | None:
        return None

    def on_epoch_end(self, state: TrainState) -> None:
        return None


def make_batches(
    train: list[np.ndarray], *, batch_size: int, max_len: int, generator: torch.Generator,
    times: Sequence[np.ndarray | None] | None = None,
) -> list[Batch]:
    """Group users of similar length so short histories do not pay for long ones' padding.

    With ``times`` (aligned with ``train``; users past its end have none), each batch carries its
    inputs' event times."""
    lengths = np.array([min(len(s) - 1, max_len) for s in train])
    jitter = torch.rand(len(train), generator=generator).numpy()
    order = [u for u in np.lexsort((jitter, lengths)) if lengths[u] >= 1]
    batches = []
    for start in range(0, len(order), batch_size):
        users = order[start : start + batch_size]
        width = int(lengths[users].max())
        inputs = np.zeros((len(users), width), dtype=np.int64)
        targets = np.zeros((len(users), width), dtype=np.int64)
        stamps = np.full((len(users), width), np.nan) if times is not None else None
        for row, u in enumerate(users):
            seq = np.asarray(train[u], dtype=np.int64)
            n = int(lengths[u])
            inputs[row, width - n :] = seq[:-1][-n:]
            targets[row, width - n :] = seq[1:][-n:]
            if stamps is not None and u < len(times) and times[u] is not None:
                stamps[row, width - n :] = np.asarray(times[u], dtype=np.float64)[:-1][-n:]
        batches.append(Batch(torch.as_tensor(users), torch.from_numpy(inputs), torch.from_numpy(targets),
                             None if stamps is None else torch.from_numpy(stamps)))
    return batches


def next_item_loss(
    model: TrainableModel,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    *,
    loss: str,
    negatives: int,
    generator: torch.Generator,
    sampler: UniformNegatives | PopularityNegatives | None = None,
) -> torch.Tensor:
    """Weighted mean cross-entropy over positions with a target (weights: [B] per user).

    ``loss="sampled"``: each position's target against ``negatives`` items drawn once per batch
    by ``sampler`` (uniform when None), a drawn item equal to the target masked out, and the
    sampler's logQ correction applied to every logit when it has one (:mod:`redteam.negatives`).
    """
    active = targets != 0
    h = hidden[active]
    y = targets[active]
    w = weights.unsqueeze(1).expand_as(targets)[active]
    if loss == "ce":
        per_pos = F.cross_entropy(model.logits(h), y, reduction="none")
    else:
        draw = (sampler or UniformNegatives(model.n_items)).draw(negatives, generator)
        neg = draw.items
        table = model.output_table()
        pos_logit = (h * table[y]).sum(-1, keepdim=True)
        neg_logit = h @ table[neg].T
        if draw.log_expected is not None:
            pos_logit = pos_logit - draw.log_expected[y].unsqueeze(1)
            neg_logit = neg_logit - draw.log_expected[neg].unsqueeze(0)
        neg_logit = neg_logit.masked_fill(neg.unsqueeze(0) == y.unsqueeze(1), float("-inf"))
        per_pos = -F.log_softmax(torch.cat([pos_logit, neg_logit], 1), dim=1)[:, 0]
    return (per_pos * w).sum() / max(1, len(y))


def validation_ndcg10(victim: TrainableVictim, valid: tuple[list[np.ndarray], np.ndarray],
                      times: Sequence[np.ndarray] | None = None) -> float:
    from redteam.metrics import ndcg, target_ranks

    histories, targets = valid
    ranks = []
    for start in range(0, len(histories), 2048):
        when = {} if times is None else {"times": times[start : start + 2048]}
        scores = victim.score(histories[start : start + 2048], **when)
        ranks.append(target_ranks(scores, targets[start : start + 2048]))
    return float(ndcg(np.concatenate(ranks), 10).mean()) if ranks else float("nan")


def resolved_loss(params: TrainSettings, n_items: int) -> str:
    """``ce`` or ``sampled``: ``loss: auto`` picks sampled softmax for catalogs above ``sampled_above`` items."""
    if params.loss != "auto":
        return params.loss
    return "sampled" if params.sampled_above is not None and n_items > params.sampled_above else "ce"


def validation_sample(
    valid: tuple[list[np.ndarray], np.ndarray] | None, users: int, *, seed: int,
    times: Sequence[np.ndarray] | None = None,
) -> tuple[tuple[list[np.ndarray], np.ndarray] | None, Sequence[np.ndarray] | None]:
    """A fixed random sample of ``users`` validation users (all of them when 0 or more than there
    are), and the same users' event times when ``times`` is given."""
    if valid is None or users == 0 or users >= len(valid[0]):
        return valid, times
    chosen = np.sort(np.random.default_rng(derive_seed(seed, "trainer", "valid-sample")).choice(len(valid[0]), users, replace=False))
    sample = [valid[0][i] for i in chosen], np.asarray(valid[1])[chosen]
    return sample, None if times is None else [times[i] for i in chosen]


def train_model(
    victim: TrainableVictim,
    train: list[np.ndarray],
    valid: tuple[list[np.ndarray], np.ndarray] | None,
    *,
    seed: int,
    hooks: Sequence[TrainHooks] = (),
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    user_weights: torch.Tensor | None = None,
    times: EventTimes | None = None,
) -> FitReport:
    """Train ``victim.model`` in place; returns a :class:`FitReport`.

    ``times`` reaches a model only when it reads event times (``reads_event_times``).

    The epoch loop, early stopping and best-weight restore are :func:`redteam.trainer_loop.run_epochs`;
    this function supplies one epoch of next-item training, the validation NDCG@10, and the hooks.
    """
    model: TrainableModel = victim.model
    assert model is not None
    p = victim.params
    gen = torch.Generator().manual_seed(derive_seed(seed, "trainer", "batches"))
    state = TrainState(
        victim=victim,
        train=train,
        user_weights=user_weights if user_weights is not None else torch.ones(len(train)),
        generator=gen,
    )
    optimizer = adamw(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    state.loss = resolved_loss(p, model.n_items)
    report = FitReport(threads=torch.get_num_threads(), loss=state.loss, event_times=times is not None)
    if state.loss == "sampled":
        state.sampler = negative_sampler(p.negative_sampler, train, model.n_items, power=p.sampler_power)
    if not getattr(model, "reads_event_times", False):
        times = None
    valid, valid_times = validation_sample(valid, p.valid_users, seed=seed, times=times.valid if times else None)
    epoch_started = 0.0

    def start_epoch(epoch: int) -> None:
        nonlocal epoch_started
        state.epoch = epoch
        epoch_started = time.perf_counter()
        for hook in hooks:
            hook.on_epoch_start(state)

    def run_epoch(epoch: int) -> dict[str, float]:
        model.train()
        batches = make_batches(train, batch_size=p.batch_size, max_len=p.max_len, generator=gen,
                               times=times.train if times else None)
        total, count = 0.0, 0
        for i in torch.randperm(len(batches), generator=gen).tolist():
            batch = batches[i]
            when = {} if batch.times is None else {"times": batch.times}
            hidden, targets = model.training_pairs(batch.inputs, batch.targets, gen, **when)
            loss = next_item_loss(
                model, hidden, targets, state.user_weights[batch.users],
                loss=state.loss, negatives=p.negatives, generator=gen, sampler=state.sampler,
            )
            for hook in hooks:
                extra = hook.extra_loss(state, model, batch, hidden)
                if extra is not None:
                    loss = loss + extra
            total += gradient_step(model, optimizer, loss)
            count += 1
        return {"epoch": epoch, "loss": total / max(1, count), "seconds": time.perf_counter() - epoch_started}

    def end_epoch(epoch: int, metrics: dict[str, float]) -> None:
        metrics["epoch_seconds"] = time.perf_counter() - epoch_started  # training and validation
        state.metrics = metrics
        for hook in hooks:
            hook.on_epoch_end(state)

    result = run_epochs(
        model,
        epochs=p.epochs,
        patience=p.patience,
        dropout_seed=derive_seed(seed, "trainer", "dropout"),
        run_epoch=run_epoch,
        evaluate=(lambda: validation_ndcg10(victim, valid, valid_times)) if valid is not None else None,
        score_key="valid_ndcg@10",
        eval_every=p.eval_every,
        on_epoch_start=start_epoch,
        on_epoch_end=end_epoch,
        progress=progress,
    )
    report.history, report.epochs_run = result.history, result.epochs_run
    report.best_epoch = result.best_epoch or result.epochs_run  # no validation: the last epoch
    report.best_valid_ndcg10 = result.best_score
    report.seconds = result.seconds
    report.seconds_per_epoch = report.seconds / max(1, report.epochs_run)
    return report
