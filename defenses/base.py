"""Defense kinds: one base, a declared ``kind`` deciding where a defense acts, one verb per kind.

* ``training`` (:class:`TrainingDefense`, verb :meth:`~TrainingDefense.prepare`): changes how the
  recommender is trained (LoRec's reweighting, APR's adversarial training).
* ``detector`` (:class:`Detector`, verb :meth:`~Detector.score_users`): scores every training user;
  the most suspicious are removed before training (LLM4Dec, PCA-VarSelect, IsolationForest).
* ``serving`` (:class:`ServingDefense`, verb :meth:`~ServingDefense.wrap`): middleware on the
  query path between the victim and its callers (output perturbation, query monitoring; for
  LLM rankers, order averaging).
* ``text`` (:class:`TextDefense`, verb :meth:`~TextDefense.flag`): filters item texts before they
  reach a ranker (perplexity, non-word share).
* ``watermark`` (:class:`Watermark`, verbs :meth:`~Watermark.prepare` and
  :meth:`~Watermark.verify`): trains a secret into the owner's model, then tests a suspect model
  (a stolen surrogate, or an innocent one) for it through the suspect's scores alone (AOW).

The engine picks a defense's verb by its type; a stage declares the kinds it applies, and a
scenario that pairs a defense with no stage able to apply it is rejected at validation. Every
defense has an :meth:`~Defense.identifier` recording its configuration (cached victims are keyed
by it, results carry it).

Threat model of a training-time defender (training and detector kinds): it trains the
recommender on every training sequence it received (real users and, unknown to it, injected
fakes). It may read public item text, the interaction counts of its own data, and fake profiles
it simulates itself with a known attack (labelled positives, :mod:`defenses.simulation`); it
never learns which training users are the injected ones. Those labels are used only afterwards,
to score the defense as a detector.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from redteam.params import Params

if TYPE_CHECKING:
    from redteam.training import TrainState

DefenseKind = Literal["none", "training", "detector", "serving", "text", "watermark"]
KINDS: tuple[str, ...] = ("none", "training", "detector", "serving", "text", "watermark")


class Defense(ABC):
    """``alias``, ``kind`` (where it acts), ``family`` (a finer label: reweighting, robust-training,
    detector, ...), ``victim_family`` (``recommender`` or ``ranker``) and declared ``Params``."""

    alias: ClassVar[str]
    kind: ClassVar[DefenseKind]
    family: ClassVar[str]
    victim_family: ClassVar[str] = "recommender"
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | None = None, **overrides: Any) -> None:
        self.params = self.Params.merged(params, overrides)

    def identifier(self) -> dict[str, Any]:
        """What produced a result: the alias, the family and every parameter value."""
        return {"defense": self.alias, "family": self.family, **self.params.model_dump(mode="json")}


@dataclass(frozen=True)
class DefenseInputs:
    """What a training-time defender holds.

    ``train``: every training sequence, real and injected alike (the runner appends the injected
    ones after the real users; a defense must not use a user's position: the tests check that
    detector scores and features follow the users when the order is shuffled). ``item_text``:
    indexed by item id, 0 = padding (None when the dataset has no text). ``item_popularity``: interaction counts over ``train``. ``domain``: what the
    items are, for language-model prompts. ``epochs``: the recommender's epoch cap (schedules scale with it). ``cache_dir``: where
    language-model embeddings may be cached (None: no disk cache). ``oracle``: the recommender the
    defender already trained on the clean data (watermarks generate their sequences with it).
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
    oracle: Any = None  # the defender's own clean model (``score(histories)``), for defenses that query it


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


class TrainingDefense(Defense):
    """Kind ``training``: everything the defense does before the recommender's training starts
    becomes a :class:`DefensePlan` (trainer hooks, defender-added sequences, a detection)."""

    kind: ClassVar[DefenseKind] = "training"

    @abstractmethod
    def prepare(self, inputs: DefenseInputs) -> DefensePlan:
        """Everything the defense does before the recommender's training starts."""


class DetectorParams(Params):
    flag_share: float = Field(0.02, gt=0, lt=1, description="share of training users removed: the most suspicious ones "
                              "(the defender's assumed attack size)")


class Detector(TrainingDefense):
    """Kind ``detector``: scores every training user once (:meth:`score_users`); the users
    :meth:`flag_users` picks (by default the ``flag_share`` most suspicious) are removed from
    training (loss weight 0). ``diagnostics`` (set by :meth:`score_users`) joins the fit's info."""

    kind: ClassVar[DefenseKind] = "detector"
    family: ClassVar[str] = "detector"
    Params: ClassVar[type[Params]] = DetectorParams

    def __init__(self, params: Params | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.diagnostics: dict[str, Any] = {}

    @abstractmethod
    def score_users(self, inputs: DefenseInputs) -> np.ndarray:
        """Suspicion per training user (higher = more likely fake), shape [len(inputs.train)]."""

    def flag_users(self, scores: np.ndarray) -> np.ndarray:
        """The users acted on: the ``flag_share`` highest scores."""
        return flag_top(scores, self.params.flag_share)

    def prepare(self, inputs: DefenseInputs) -> DefensePlan:
        scores = np.asarray(self.score_users(inputs), dtype=np.float64)
        if scores.shape != (len(inputs.train),):
            raise RuntimeError(f"defenses.{self.alias}: {scores.shape} scores for {len(inputs.train)} training users")
        flagged = self.flag_users(scores)
        return DefensePlan(hooks=[StaticWeights((~flagged).astype(np.float32))], detection=Detection(scores, flagged),
                           info={**self.diagnostics, "removed_users": int(flagged.sum())})


UserDetector = Detector  # the name plugins written before the defense kinds use


class ServingDefense(Defense):
    """Kind ``serving``: middleware between the victim and everyone it serves. :meth:`wrap`
    returns what callers reach instead: for a recommender, a
    :class:`~redteam.serving.port.Recommender` (subclass :class:`redteam.serving.middleware.Middleware`);
    for an LLM ranker (``victim_family = "ranker"``), an object with the ranker's ``rank``.
    ``rng`` is the defense's own generator for one served session (randomised defenses draw from it)."""

    kind: ClassVar[DefenseKind] = "serving"
    family: ClassVar[str] = "serving"

    @abstractmethod
    def wrap(self, inner: Any, rng: np.random.Generator) -> Any:
        """The defended service in front of ``inner``."""

    def row_metrics(self, summary: dict[str, Any]) -> dict[str, float]:
        """Metrics the clean row records of a calibration summary (none unless a defense declares a cost)."""
        return {}


class TextDefenseParams(Params):
    quantile: float = Field(0.99, gt=0, le=1, description="threshold = margin * this quantile of the clean "
                            "reference texts' scores (about 1 - quantile of clean texts get flagged)")
    margin: float = Field(1.0, gt=0, description="multiplier of the reference quantile (> 1: fewer false positives)")


class TextDefense(Defense):
    """Kind ``text``: flags suspicious item texts before they reach a ranker's prompt. Verb:
    :meth:`flag` (after :meth:`calibrate` on clean texts; subclasses implement :meth:`score`).
    ``threshold`` is None until :meth:`calibrate` ran. Rule: see :mod:`defenses.text_filters`."""

    kind: ClassVar[DefenseKind] = "text"
    family: ClassVar[str] = "text"
    victim_family: ClassVar[str] = "ranker"
    Params: ClassVar[type[Params]] = TextDefenseParams

    def __init__(self, params: Params | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.threshold: float | None = None
        self.reference_scores: np.ndarray | None = None
        self._reference_texts: frozenset[str] = frozenset()

    @abstractmethod
    def score(self, texts: Sequence[str]) -> np.ndarray:
        """float64 suspicion per text, shape ``[len(texts)]``: higher = more suspicious."""

    def calibrate(self, reference_texts: Sequence[str]) -> "TextDefense":
        """Set ``threshold = margin * quantile(scores of reference_texts)``; returns self.

        ``reference_texts``: texts trusted to be clean, disjoint from those later used to measure
        the false-positive rate.
        """
        texts = [str(t) for t in reference_texts]
        if not texts:
            raise ValueError(f"defenses.{self.alias}: calibrate needs at least one reference text")
        scores = self._checked_scores(texts)
        self.reference_scores = scores
        self.threshold = float(self.params.margin * np.quantile(scores, self.params.quantile))
        self._reference_texts = frozenset(texts)
        return self

    @property
    def calibrated(self) -> bool:
        return self.threshold is not None

    def flag_scores(self, scores: np.ndarray) -> np.ndarray:
        """Boolean array: ``scores > threshold`` (RuntimeError before :meth:`calibrate`)."""
        if self.threshold is None:
            raise RuntimeError(f"defenses.{self.alias}: not calibrated; call calibrate(reference_texts) with clean "
                               "texts before flag()")
        return np.asarray(scores, dtype=np.float64) > self.threshold

    def flag(self, texts: Sequence[str]) -> list[bool]:
        """One bool per text: its score is above the calibrated threshold."""
        if self.threshold is None:  # fail before spending time on scoring
            self.flag_scores(np.zeros(0))
        return [bool(f) for f in self.flag_scores(self._checked_scores(texts))]

    def _checked_scores(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        scores = np.asarray(self.score(texts), dtype=np.float64)
        if scores.shape != (len(texts),):
            raise RuntimeError(f"defenses.{self.alias}: {scores.shape} scores for {len(texts)} texts")
        if np.isnan(scores).any():
            raise RuntimeError(f"defenses.{self.alias}: NaN scores")
        return scores


def flag_top(scores: np.ndarray, share: float) -> np.ndarray:
    """The ``ceil(share * n)`` highest scores (ties broken by index, deterministic)."""
    n = len(scores)
    count = min(n, int(np.ceil(share * n)))
    flagged = np.zeros(n, dtype=bool)
    if count:
        flagged[np.argsort(-scores, kind="stable")[:count]] = True
    return flagged


@dataclass(frozen=True)
class WatermarkEvidence:
    """What verifying one suspect model found: ``hits`` of ``queries`` verification queries had the
    watermark's next item in the suspect's top ``k``; ``chance`` is the hit probability of a model
    with no knowledge of the watermark; ``p_value`` the one-sided binomial tail; ``detected``
    whether it is below the declared significance level."""

    hits: int
    queries: int
    k: int
    chance: float
    p_value: float
    detected: bool

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else float("nan")


class Watermark(TrainingDefense):
    """Kind ``watermark``: :meth:`prepare` adds the owner's secret sequences to the training set
    (the model that is then deployed carries them, and ``info["watermark"]`` records them);
    :meth:`verify` queries any suspect scorer with the secret prefixes and decides whether it learned the continuation. Threat model: the owner
    can query a suspect's top lists (or scores) but not inspect its weights or training data."""

    kind: ClassVar[DefenseKind] = "watermark"
    family: ClassVar[str] = "watermark"

    @abstractmethod
    def verify(self, score_fn: Any, sequences: list[list[int]]) -> WatermarkEvidence:
        """Test a suspect, ``score_fn(histories) -> [B, n_items + 1]`` scores, for the secret
        ``sequences`` that :meth:`prepare` drew (its plan's ``info["watermark"]``)."""
