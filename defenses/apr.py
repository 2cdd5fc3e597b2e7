"""APR: adversarial personalized ranking, i.e. adversarial training on the item embeddings
(He et al., SIGIR 2018, "Adversarial Personalized Ranking for Recommendation"), applied to the
sequential victims' next-item loss as a robustness baseline against poisoning (as in LoRec's
comparison, Zhang et al. 2024).

Threat model: the defender does not try to find fake users; it makes the model's loss flat
around its embeddings, so that small shifts (such as those a few fake profiles cause) move
rankings less. Uses no text, no language model and no simulated fakes.

Method: after ``start_share`` of the epoch cap (APR starts from a pre-trained model), every batch
adds ``reg`` * L(Theta + Delta_adv), where Delta_adv = ``eps`` * g / ||g|| is the worst-case
perturbation of the item embedding table under the fast-gradient approximation (g = dL/dDelta at
Delta = 0, each item's row normalised on its own) and L is the trainer's own weighted next-item
loss. The model is evaluated with the perturbation swapped in via ``torch.func.functional_call``,
so the perturbed loss's gradient reaches the real weights. Costs about two extra forward passes
and one extra backward pass per batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from defenses.base import DefenseInputs, DefensePlan, TrainingDefense
from redteam.params import Params

if TYPE_CHECKING:
    from redteam.training import Batch, TrainState


class APRParams(Params):
    eps: float = Field(0.5, gt=0, description="size of the adversarial perturbation of each item embedding")
    reg: float = Field(1.0, gt=0, description="weight of the adversarial loss")
    start_share: float = Field(0.2, ge=0, lt=1, description="share of the epoch cap trained without the adversarial term")


class _Loss(nn.Module):
    """The trainer's next-item loss as a module, so functional_call can swap the embedding table."""

    def __init__(self, model: nn.Module, state: "TrainState") -> None:
        super().__init__()
        self.model, self.state = model, state

    def forward(self, batch: "Batch") -> torch.Tensor:
        from redteam.training import next_item_loss

        p = self.state.victim.params
        hidden, targets = self.model.training_pairs(batch.inputs, batch.targets, self.state.generator)
        return next_item_loss(self.model, hidden, targets, self.state.user_weights[batch.users],
                              loss=self.state.loss, negatives=p.negatives, generator=self.state.generator,
                              sampler=self.state.sampler)


class APRHook:
    def __init__(self, params: APRParams, epochs: int) -> None:
        self.p = params
        self.start = round(params.start_share * epochs)

    def on_epoch_start(self, state: "TrainState") -> None:
        return None

    def on_epoch_end(self, state: "TrainState") -> None:
        return None

    def extra_loss(self, state: "TrainState", model: Any, batch: "Batch", hidden: torch.Tensor) -> torch.Tensor | None:
        if state.epoch <= self.start:
            return None
        loss_fn = _Loss(model, state)
        name = "model." + model.item_table_name  # as _Loss holds it
        table = model.item_table
        delta = torch.zeros_like(table, requires_grad=True)
        probe = torch.func.functional_call(loss_fn, {name: table.detach() + delta}, (batch,))
        (grad,) = torch.autograd.grad(probe, delta)
        adv = self.p.eps * grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
        adv[0] = 0.0
        return self.p.reg * torch.func.functional_call(loss_fn, {name: table + adv}, (batch,))


class APR(TrainingDefense):
    """Adversarial training on item embeddings (APR)."""

    alias: ClassVar[str] = "apr"
    family: ClassVar[str] = "robust-training"
    Params: ClassVar[type[APRParams]] = APRParams

    def prepare(self, inputs: DefenseInputs) -> DefensePlan:
        hook = APRHook(self.params, inputs.epochs)
        return DefensePlan(hooks=[hook], info={"adversarial_from_epoch": hook.start + 1, "eps": self.params.eps,
                                               "reg": self.params.reg})
