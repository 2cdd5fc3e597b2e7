"""The extraction family: ``extract(knowledge) -> ExtractionResult`` (a surrogate victim).

An extraction attack is two steps, so that a budget curve can reuse one query stream:
``collect`` spends queries and returns the transcript; ``distill`` trains a fresh surrogate on
any prefix of it. The surrogate is an ordinary victim (any registered architecture), saved as
safetensors + JSON, so a later attack (poisoning) can use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from attacks.base import Attack
from attacks.extraction.distill import DistillReport, DistillSettings, distill
from attacks.extraction.transcript import Transcript
from redteam.errors import ConfigError
from redteam.knowledge import Knowledge
from redteam.limits import Epochs
from redteam.params import Params
from redteam.seeding import derive_seed

ProgressFn = Callable[[str, float, float], None]  # (phase, done, total)


class ExtractionParams(Params):
    """Surrogate and distillation settings shared by every extraction recipe."""

    surrogate: str | None = Field(None, description="surrogate architecture (default: the victim's, if known, else sasrec)")
    surrogate_params: dict[str, Any] = Field(default_factory=dict, description="surrogate hyper-parameters (victim Params keys)")
    distill_epochs: Epochs = Field(30, ge=1, description="maximum distillation epochs")
    distill_patience: int = Field(5, ge=1, description="epochs without held-out agreement gain before stopping")
    distill_min_epochs: int = Field(10, ge=0, description="distillation never stops before this epoch (a flat start is not convergence)")
    distill_smoothing: float = Field(0.5, ge=0, lt=1, description="patience follows a moving average of the held-out agreement "
                                     "with this weight on the past (0: the raw score)")
    distill_batch: int = Field(800, ge=1, description="prefixes (queries) per distillation batch")
    lr: float = Field(5e-3, gt=0, description="surrogate AdamW learning rate")
    margin: float = Field(0.5, gt=0, description="hinge margin of the ranking losses")
    holdout: float = Field(0.1, ge=0, lt=1, description="share of the attacker's own sequences kept for model selection")
    budget_share: float = Field(1.0, gt=0, le=1, description="share of the API budget this attack may spend")
    curve: list[float] = Field(default_factory=lambda: [0.1, 0.25, 0.5], description="budget-curve points as shares of the queries used")


@dataclass
class ExtractionResult:
    surrogate: Any
    transcript: Transcript
    distill: DistillReport
    seconds_collect: float
    seconds_distill: float
    info: dict[str, Any] = field(default_factory=dict)


class ExtractionAttack(Attack):
    family: ClassVar[str] = "extraction"
    Params: ClassVar[type[ExtractionParams]] = ExtractionParams

    def collect(self, knowledge: Knowledge, *, max_queries: int, progress: ProgressFn | None = None) -> Transcript:
        """Spend at most ``max_queries`` API queries; return what was asked and answered."""
        raise NotImplementedError

    def distill_settings(self) -> DistillSettings:
        p = self.params
        return DistillSettings(epochs=p.distill_epochs, patience=p.distill_patience, batch_positions=p.distill_batch,
                               lr=p.lr, margin=p.margin, holdout=p.holdout, min_epochs=p.distill_min_epochs,
                               smoothing=p.distill_smoothing)

    def query_allowance(self, knowledge: Knowledge) -> int:
        remaining = knowledge.api.remaining
        if remaining is None:
            raise ConfigError(f"attacks.{self.alias}: extraction needs a finite api.budget (the attacker's query allowance)")
        return int(remaining * self.params.budget_share)

    def build_surrogate(self, knowledge: Knowledge, *, seed: int) -> Any:
        """A fresh surrogate whose initial weights come from the attacker's seed alone."""
        from redteam.registry import resolve
        from redteam.scenario import ComponentSpec, component_params

        arch = self.params.surrogate or knowledge.victim_architecture or "sasrec"
        spec = ComponentSpec(name=arch, **self.params.surrogate_params)
        where = f"attacks.{self.alias}.surrogate"
        cls = resolve("victims", arch, where=where)
        surrogate = cls(component_params("victims", spec, where=where))
        if not hasattr(surrogate, "init_model"):
            raise ConfigError(f"{where}: '{arch}' is not a neural model and cannot be distilled")
        if getattr(cls, "reads_item_text", False):
            if knowledge.item_text is None:
                raise ConfigError(f"{where}: '{arch}' reads item texts; the threat model must grant them (attacker.item_text: true)")
            surrogate.use_item_text(knowledge.item_text, cache_dir=knowledge.cache_dir)
        surrogate.init_model(knowledge.n_items, derive_seed(seed, "surrogate-init"))
        return surrogate

    def train_surrogate(self, knowledge: Knowledge, transcript: Transcript, *, progress: ProgressFn | None = None) -> tuple[Any, DistillReport]:
        surrogate = self.build_surrogate(knowledge, seed=knowledge.seed)
        report = distill(
            surrogate, transcript, settings=self.distill_settings(), seed=derive_seed(knowledge.seed, "distill"),
            progress=(lambda e, total, m: progress("distill", e, total)) if progress else None,
        )
        return surrogate, report

    def extract(self, knowledge: Knowledge, *, progress: ProgressFn | None = None) -> ExtractionResult:
        """Collect a transcript within the budget, then distil a surrogate from all of it."""
        t0 = time.perf_counter()
        transcript = self.collect(knowledge, max_queries=self.query_allowance(knowledge), progress=progress)
        t1 = time.perf_counter()
        surrogate, report = self.train_surrogate(knowledge, transcript, progress=progress)
        return ExtractionResult(surrogate, transcript, report, seconds_collect=t1 - t0,
                                seconds_distill=time.perf_counter() - t1)
