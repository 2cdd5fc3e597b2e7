"""Training-time defenses against profile poisoning: the contract the runner drives.

Threat model of the defender: it trains the recommender on every training sequence it received
(real users and, unknown to it, injected fakes). It may read public item text, the interaction
counts of its own data, and fake profiles it simulates itself with a known attack (labelled
positives, :mod:`defenses.simulation`); it never learns which training users are the
injected ones. Those labels are used only afterwards, to score the defense as a detector.

A defense turns its inputs into a :class:`DefensePlan`: trainer hooks (per-user loss weights
that may change between epochs, extra loss terms) and, for defenses that single users out, a
:class:`Detection` (a suspicion score per training user and the users it acted on), read after
training.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from redteam.params import Params

if TYPE_CHECKING:
    from redteam.training import TrainState


@dataclass(frozen=True)
class DefenseInputs:
    """What a training-time defender holds.

    ``train``: every training sequence, real and injected alike (the runner appends the injected
    ones after the real users; a defense must not use a user's position: the tests check that
    detector scores and features follow the users when the order is shuffled). ``item_text``:
    indexed by item id, 0 = padding (None when the dataset has no text). ``item_popularity``: interaction counts over ``train``. ``domain``: what the
    items are, for language-model prompts. ``epochs``: the recommender's epoch cap (schedules scale with it). ``cache_dir``: where
    language-model embeddings may be cached (None: no disk cache).
    """

    train: list[np.ndarray]
    n_items: int
    seed: int
    item_popularity: np.ndarray
    item_text: tuple[str, ...] | None = None
    domain: str = "item"
    epochs: int = 30
    max_len: int = 50
    cache_dir: Path | None = None


@dataclass
class Detection:
    """Per training user: ``scores`` (higher = more suspicious) and ``flagged`` (acted upon)."""

    scores: np.ndarray
    flagged: np.ndarray

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        self.flagged = np.asarray(self.flagged, dtype=bool)
        if self.scores.shape != self.flagged.shape or self.scores.ndim != 1:
            raise ValueError("Detection: scores and flagged must be 1-d arrays of the same length")


@dataclass
class DefensePlan:
    """Hooks for the trainer, sequences the defender adds to the training set (its own labelled
    simulated fakes, appended after the given users: hooks see weights for all of them), and (filled
    in during or before training) what the defense detected among the given users."""

    hooks: list[Any] = field(default_factory=list)
    extra_train: list[np.ndarray] = field(default_factory=list)
    detection: Detection | None = None
    info: dict[str, Any] = field(default_factory=dict)


class StaticWeights:
    """Trainer hook: fixed per-user loss multipliers for every epoch (0 removes a user)."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = torch.as_tensor(np.asarray(weights, dtype=np.float32))

    def on_epoch_start(self, state: "TrainState") -> None:
        if len(self.weights) != len(state.user_weights):
            raise RuntimeError(f"StaticWeights: {len(self.weights)} weights for {len(state.user_weights)} training users")
        state.user_weights = self.weights.clone()

    def extra_loss(self, state: "TrainState", model: Any, batch: Any, hidden: torch.Tensor) -> None:
        return None

    def on_epoch_end(self, state: "TrainState") -> None:
        return None


class TrainingDefense(ABC):
    """Common shape: ``alias``, ``family``, declared ``Params``, one verb: :meth:`prepare`."""

    alias: ClassVar[str]
    family: ClassVar[str]  # "reweighting", "detector" or "robust-training"
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | None = None, **overrides: Any) -> None:
        given = params.model_dump() if params is not None else {}
        self.params = self.Params(**{**given, **overrides})

    def identifier(self) -> dict[str, Any]:
        """What produced a result: the alias and every parameter value."""
        return {"defense": self.alias, "family": self.family, **self.params.model_dump(mode="json")}

    @abstractmethod
    def prepare(self, inputs: DefenseInputs) -> DefensePlan:
        """Everything the defense does before the recommender's training starts."""


class DetectorParams(Params):
    flag_share: float = Field(0.02, gt=0, lt=1, description="share of training users removed: the most suspicious ones "
                              "(the defender's assumed attack size)")


class UserDetector(TrainingDefense):
    """A detector scores every training user once; the ``flag_share`` most suspicious users are
    removed from training (loss weight 0). Subclasses implement :meth:`score_users`."""

    family: ClassVar[str] = "detector"
    Params: ClassVar[type[Params]] = DetectorParams

    @abstractmethod
    def score_users(self, inputs: DefenseInputs) -> np.ndarray:
        """Suspicion per training user (higher = more likely fake), shape [len(inputs.train)]."""

    def prepare(self, inputs: DefenseInputs) -> DefensePlan:
        scores = np.asarray(self.score_users(inputs), dtype=np.float64)
        if scores.shape != (len(inputs.train),):
            raise RuntimeError(f"defenses.{self.alias}: {scores.shape} scores for {len(inputs.train)} training users")
        flagged = flag_top(scores, self.params.flag_share)
        return DefensePlan(hooks=[StaticWeights((~flagged).astype(np.float32))], detection=Detection(scores, flagged),
                           info={"removed_users": int(flagged.sum())})


def flag_top(scores: np.ndarray, share: float) -> np.ndarray:
    """The ``ceil(share * n)`` highest scores (ties broken by index, deterministic)."""
    n = len(scores)
    count = min(n, int(np.ceil(share * n)))
    flagged = np.zeros(n, dtype=bool)
    if count:
        flagged[np.argsort(-scores, kind="stable")[:count]] = True
    return flagged
