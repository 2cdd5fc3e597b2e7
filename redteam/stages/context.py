"""What every stage of a recommender run can see: the data, the split, the evaluation users,
the cache, the event log, the progress reporter, the result rows and the exchange.

Stages keep their own state (targets, clean exposure, the victim's top lists); products that
cross stages go through :class:`~redteam.stages.exchange.Exchange`. Attacks see far less: a
:class:`~redteam.knowledge.Knowledge` built by :meth:`RunContext.knowledge`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redteam.cache import ModelCache
from redteam.data.dataset import LeaveOneOutSplit, SequenceDataset
from redteam.events import EventLog
from redteam.knowledge import Knowledge
from redteam.progress import Reporter
from redteam.results import RowTable
from redteam.scenario import ComponentSpec, Scenario
from redteam.seeding import derive_seed
from redteam.stages.exchange import Exchange

ProgressFn = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class Target:
    """One victim under attack: its scenario entry, run seed, the model (for retraining and
    white-box upper bounds only; None for a remote victim), the recommender its users are served
    by, and for a victim reached over HTTP (``victims: [{name: http}]``) the remote victim itself.
    ``variant``: empty for the victim as trained; a defense label for a retrained copy of it (a
    watermarked victim), so that per-victim memos keep the two apart."""

    spec: ComponentSpec
    seed: int
    model: Any
    recommender: Any
    remote: Any = None
    variant: str = ""

    @property
    def label(self) -> str:
        return self.spec.label()


@dataclass
class RunContext:
    scenario: Scenario
    dataset: SequenceDataset
    split: LeaveOneOutSplit
    test_users: np.ndarray
    cache: ModelCache
    events: EventLog
    reporter: Reporter
    few_shot_users: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rows: RowTable = field(default_factory=RowTable)
    timings: dict[str, float] = field(default_factory=dict)
    curves: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, Callable[[Path], None]] = field(default_factory=dict)  # run-dir path -> writer
    exchange: Exchange = field(default_factory=Exchange)
    services: ExitStack = field(default_factory=ExitStack)  # child servers, temp folders: closed when the run ends
    scratch: dict[tuple, Any] = field(default_factory=dict)  # per-run memo of the hosting layer

    def test_histories(self) -> list[np.ndarray]:
        return self.split.test_histories(self.test_users)

    def test_targets(self) -> np.ndarray:
        return self.split.test_targets(self.test_users)

    def valid(self) -> tuple[list[np.ndarray], np.ndarray]:
        return self.split.valid_histories(), self.split.valid_targets()

    def event_times(self) -> Any:
        """The training and validation users' event times (:class:`redteam.training.EventTimes`),
        for victims that read them; None when the data set has no timestamps."""
        from redteam.training import EventTimes

        train = self.split.train_times
        return None if train is None else EventTimes(train=train, valid=self.split.valid_times())

    def knowledge(self, target: Target, attack_label: str, attack_seed: int, api: Any, *, popularity: bool = False,
                  **extra: Any) -> Knowledge:
        """What the scenario's threat model grants one attack: the API handle, read-only copies of
        the few-shot users' training sequences, item text and (for a stage that offers it,
        ``popularity=True``) item popularity when the scenario grants them, and ``extra``.

        The attacker's seed comes from the run seed and the attacker seed only, never from the
        attack's name or label (common random numbers): two rows that differ in one switch draw
        the same randomness, so their difference is the switch's."""
        sc, dataset = self.scenario, self.dataset
        few_shot = tuple(_read_only(self.split.train[u]) for u in self.few_shot_users)
        if popularity and sc.attacker.item_popularity:
            extra["item_popularity"] = _read_only(dataset.item_popularity(self.split.train))
        return Knowledge(
            api=api, n_items=dataset.n_items, seed=derive_seed(target.seed, "attack", attack_seed), few_shot=few_shot,
            victim_architecture=getattr(target.model, "alias", None) if sc.attacker.knows_architecture else None,
            item_text=tuple(dataset.item_text) if sc.attacker.item_text and dataset.item_text else None,
            cache_dir=self.cache.base if self.cache.enabled else None, **extra,
        )

    @contextmanager
    def training_progress(self, title: str, total: int | None, **where: Any) -> Iterator[tuple[Any, ProgressFn]]:
        """A progress stage for one training run and the per-epoch callback that feeds it (and the
        event log): ``with ctx.training_progress("train sasrec", 30, victim=...) as (stage, progress)``."""
        with self.reporter.stage(title, total=total) as stage:
            def progress(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
                stage.update(completed=epoch, total=epochs,
                             status=f"valid NDCG@10 {metrics.get('valid_ndcg@10', float('nan')):.4f}")
                self.events.emit("epoch", **where, **metrics)

            yield stage, progress


def _read_only(array: np.ndarray) -> np.ndarray:
    copy = np.array(array, copy=True)
    copy.flags.writeable = False
    return copy
