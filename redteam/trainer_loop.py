"""The epoch loop every trainer shares: epochs, evaluation, early stopping, best weights.

Both the victims' trainer (:mod:`redteam.training`) and the surrogate distillation
(:mod:`attacks.extraction.distill`) hand their own per-epoch work to :func:`run_epochs`, which
owns the rest: a forked torch random scope seeded for the whole run (dropout draws), the
optional evaluation every N epochs, the history, the progress callback, early stopping with
patience on a selection score, and restoring the best weights at the end.

The loop itself draws no random numbers; the callables it is given run in exactly the order
documented on :func:`run_epochs`, so a trainer moved onto it consumes its random streams as
it did before.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

Metrics = dict[str, float]
Progress = Callable[[int, int, Metrics], None]


class LoopModel(Protocol):
    """What the loop needs of a model: its weights (to keep and restore the best) and eval mode."""

    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: dict[str, Any]) -> Any: ...
    def eval(self) -> Any: ...


class PaddedModel(Protocol):
    """A model whose padding row must be zeroed again after each optimiser step."""

    def reset_padding_(self) -> None: ...


@dataclass
class LoopResult:
    """What :func:`run_epochs` did. ``best_score`` is the selection score of ``best_epoch``,
    whose metrics are ``best_metrics``; when no epoch was ever ranked (no evaluation ran) they
    are 0, NaN and None, and the weights are those of the last epoch."""

    epochs_run: int = 0
    best_epoch: int = 0
    best_score: float = float("nan")
    best_metrics: Metrics | None = None
    seconds: float = 0.0
    history: list[Metrics] = field(default_factory=list)


def adamw(parameters: Any, *, lr: float, weight_decay: float = 0.0, fused: bool = True) -> torch.optim.AdamW:
    """The optimiser of every trainer: AdamW, by default with torch's fused kernel (CPU since torch
    2.4), one pass over each parameter instead of a dozen elementwise operations; the step over the
    item table is the part of an epoch it shortens (``bench/profile_epoch.py --unfused``).
    Elementwise, so the result does not depend on the thread count; it differs from the unfused
    path in the last bits."""
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=fused)


def gradient_step(model: PaddedModel, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One optimiser step on ``loss``, then the padding row back to zero; returns the loss value."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    model.reset_padding_()
    return float(loss.detach())


def run_epochs(
    model: LoopModel,
    *,
    epochs: int,
    patience: int,
    dropout_seed: int,
    run_epoch: Callable[[int], Metrics],
    evaluate: Callable[[], float] | None = None,
    score_key: str = "score",
    eval_every: int = 1,
    select: Callable[[Metrics], float | None] | None = None,
    min_epochs: int = 0,
    smoothing: float = 0.0,
    on_epoch_start: Callable[[int], None] | None = None,
    on_epoch_end: Callable[[int, Metrics], None] | None = None,
    progress: Progress | None = None,
) -> LoopResult:
    """Train for at most ``epochs`` epochs; returns a :class:`LoopResult`.

    Each epoch, in this order: ``on_epoch_start(epoch)``; ``metrics = run_epoch(epoch)`` (the
    epoch's training, which sets the model's train/eval mode itself); when ``evaluate`` is given
    and ``epoch % eval_every == 0``, ``metrics[score_key] = evaluate()``; ``on_epoch_end(epoch,
    metrics)`` (may add to ``metrics``); the metrics join the history; ``progress(epoch, epochs,
    metrics)``. Then ``select(metrics)`` (default: ``metrics.get(score_key)``) ranks the epoch:
    None or NaN leaves it unranked and the patience count untouched; a new best keeps a deep copy of
    the weights; otherwise ``patience`` epochs in a row without a better score stop training.
    The best weights, if any, are restored and the model is left in eval mode.

    Against a flat or noisy start: training never stops before ``min_epochs``, and with
    ``smoothing`` in (0, 1) the patience count follows an exponential moving average of the
    ranked scores (``s = smoothing * s + (1 - smoothing) * score``) rather than the raw score, so
    one lucky early epoch does not end training; the weights kept are still the best raw epoch's.

    All of it runs inside ``torch.random.fork_rng`` with the default generator seeded by
    ``dropout_seed``: the caller's global random state is untouched.
    """
    ranks = select if select is not None else (lambda metrics: metrics.get(score_key))
    result = LoopResult()
    best_score, best_state, stale = float("-inf"), None, 0
    smoothed, best_smoothed = None, float("-inf")
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(dropout_seed)
        for epoch in range(1, epochs + 1):
            if on_epoch_start is not None:
                on_epoch_start(epoch)
            metrics = run_epoch(epoch)
            if evaluate is not None and epoch % eval_every == 0:
                metrics[score_key] = evaluate()
            if on_epoch_end is not None:
                on_epoch_end(epoch, metrics)
            result.history.append(metrics)
            result.epochs_run = epoch
            if progress is not None:
                progress(epoch, epochs, metrics)
            score = ranks(metrics)
            if score is None or score != score:  # unranked, or NaN
                continue
            if score > best_score:
                best_score = score
                best_state = copy.deepcopy(model.state_dict())
                result.best_epoch, result.best_score, result.best_metrics = epoch, score, metrics
            smoothed = score if smoothed is None else smoothing * smoothed + (1 - smoothing) * score
            trend = smoothed if smoothing > 0 else score
            if trend > best_smoothed:
                best_smoothed, stale = trend, 0
            else:
                stale += 1
                if stale >= patience and epoch >= min_epochs:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    return result
