"""Greedy coordinate gradient (GCG) search over an STS's tokens (Zou et al., 2023), as used by
Kumar & Lakkaraju (2024) to raise a product's rank.

Each step: the gradient of the objective's loss with respect to the one-hot STS tokens; per
position the ``topk`` allowed tokens with the most negative gradient; ``candidates`` copies of the
STS each with one random position swapped for one of that position's top-k tokens; candidates that
do not re-tokenise to their own ids are dropped; the exact loss of the rest (under the same step
context: catalog order, requests) picks the next STS (even when it is worse than the current one,
as in GCG). What is returned: the last STS, unless the objective's steps all share one context
(``objective.fixed_context``: a bi-encoder scored on every optimisation request), where losses of
different steps are comparable and the lowest-loss STS is returned.

Randomness comes only from the ``torch.Generator`` the caller passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from pydantic import Field

from attacks.sts.objective import STSObjective
from redteam.limits import Steps
from redteam.params import Params


class GCGParams(Params):
    n_tokens: int = Field(30, ge=1, description="STS length in tokens (the paper: 30)")
    init: str = Field("*", description="text repeated to fill the initial STS (the paper: '*')")
    steps: Steps = Field(40, ge=1, description="GCG iterations")
    topk: int = Field(256, ge=1, description="tokens kept per position from the gradient")
    candidates: int = Field(128, ge=1, description="single-token swaps scored exactly per step (the paper: 512)")
    patience: int | None = Field(None, ge=1, description="stop after this many steps without a new best loss")


@dataclass
class GCGResult:
    sts: torch.Tensor
    text: str
    final_loss: float
    losses: list[float] = field(default_factory=list)  # loss at the initial STS, then of the STS chosen at each step
    steps_run: int = 0
    gradient_seconds: float = 0.0
    scoring_seconds: float = 0.0
    filter_seconds: float = 0.0
    rejected: int = 0  # candidates dropped by the re-tokenisation filter

    def summary(self) -> dict[str, float | int | str]:
        steps = max(self.steps_run, 1)
        return {
            "text": self.text, "final_loss": self.final_loss, "initial_loss": self.losses[0] if self.losses else float("nan"),
            "steps_run": self.steps_run, "rejected_candidates": self.rejected,
            "gradient_seconds_per_step": self.gradient_seconds / steps,
            "scoring_seconds_per_step": self.scoring_seconds / steps,
            "filter_seconds_per_step": self.filter_seconds / steps,
        }


def sample_swaps(sts: torch.Tensor, top: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` copies of ``sts`` [n], each with one uniformly drawn position set to one of its ``top`` [n, k] tokens."""
    n, k = top.shape
    positions = torch.randint(n, (count,), generator=generator)
    choices = torch.randint(k, (count,), generator=generator)
    out = sts.unsqueeze(0).repeat(count, 1)
    out[torch.arange(count), positions] = top[positions, choices]
    return out


def gcg(objective: STSObjective, params: GCGParams, *, generator: torch.Generator,
        progress: Callable[[int, float], None] | None = None) -> GCGResult:
    """Run GCG; ``progress(step, loss)`` after every step."""
    allowed = objective.allowed_tokens()
    if int(allowed.sum()) == 0:
        raise ValueError("no token is allowed in the STS")
    sts = objective.initial(params.n_tokens, params.init)
    keep_best = bool(getattr(objective, "fixed_context", False))
    best, best_loss = sts.clone(), float("inf")
    result = GCGResult(sts=sts, text="", final_loss=best_loss)
    stale = 0
    for step_no in range(params.steps):
        step = objective.step(generator)
        t0 = time.perf_counter()
        loss_here, grad = step.gradient(sts)
        if step_no == 0:
            result.losses.append(loss_here)
            best_loss = loss_here
        grad = grad.masked_fill(~allowed.unsqueeze(0), float("inf"))
        top = (-grad).topk(min(params.topk, int(allowed.sum())), dim=1).indices
        t1 = time.perf_counter()
        pool = torch.unique(sample_swaps(sts, top, params.candidates, generator), dim=0)
        keep = objective.retokenizes(pool)
        result.rejected += int((~keep).sum())
        pool = pool[keep]
        t2 = time.perf_counter()
        result.gradient_seconds += t1 - t0
        result.filter_seconds += t2 - t1
        result.steps_run += 1
        improved = False
        if len(pool):
            losses = step.losses(pool)
            result.scoring_seconds += time.perf_counter() - t2
            pick = int(torch.argmin(losses))
            sts, loss = pool[pick].clone(), float(losses[pick])
            result.losses.append(loss)
            if loss < best_loss:
                best, best_loss, improved = sts.clone(), loss, True
            if progress is not None:
                progress(step_no + 1, loss)
        stale = 0 if improved else stale + 1
        if params.patience is not None and stale >= params.patience:
            break
    final = best if keep_best else sts
    result.sts, result.text = final, objective.decode(final)
    result.final_loss = best_loss if keep_best else (result.losses[-1] if result.losses else float("nan"))
    return result
