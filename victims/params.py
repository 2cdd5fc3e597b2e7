"""Declared, validated parameters shared by the neural victims (model width and training)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from redteam.limits import Epochs, Hidden, SeqLen
from redteam.params import Params


class TrainParams(Params):
    """Training settings of the one trainer (redteam.training)."""

    epochs: Epochs = Field(200, ge=0, description="maximum epochs (early stopping usually ends sooner)")
    patience: int = Field(5, ge=1, description="epochs without validation NDCG@10 gain before stopping")
    batch_size: int = Field(128, ge=1, description="users per batch (length-bucketed)")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    loss: Literal["auto", "ce", "sampled"] = Field(
        "auto", description="full-softmax cross-entropy, sampled softmax, or auto: cross-entropy for catalogs of "
        "up to sampled_above items, sampled softmax above (measured in docs/results/performance.md)")
    sampled_above: int | None = Field(None, ge=0, description="loss=auto: catalogs larger than this train with "
                                      "sampled softmax; None: never (each victim sets it where it was measured to hold)")
    negatives: int = Field(2048, ge=1, description="negatives shared by a batch for sampled softmax")
    negative_sampler: Literal["uniform", "popularity"] = Field(
        "popularity", description="sampled softmax: draw negatives uniformly, or by training popularity with the logQ correction")
    sampler_power: float = Field(1.0, ge=0, le=1, description="popularity sampler: draw in proportion to (count + 1) ** power")
    max_len: SeqLen = Field(50, ge=2, description="most recent items kept from a history")
    eval_every: int = Field(1, ge=1, description="validate every N epochs")
    valid_users: int = Field(0, ge=0, description="validate on a fixed random sample of this many users (0: all)")


class NeuralParams(TrainParams):
    """Model width shared by every neural victim."""

    hidden: Hidden = Field(64, ge=4, description="embedding and hidden width")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout rate")


class LargeCatalogParams(NeuralParams):
    """NeuralParams for a victim whose faster recipe was measured to hold on large catalogs
    (docs/results/performance.md, "Time to quality"): sampled softmax above 5,000 items and
    validation on a fixed sample of 4,096 users."""

    sampled_above: int | None = Field(5000, ge=0, description="loss=auto: catalogs larger than this train with sampled softmax")
    valid_users: int = Field(4096, ge=0, description="validate on a fixed random sample of this many users (0: all)")
