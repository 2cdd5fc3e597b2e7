"""The poisoning family: ``craft(knowledge, plan) -> fake profiles`` (item-id arrays).

The runner (``redteam.stages.poisoning``) decides what every recipe of a scenario shares, so
that their rows are comparable: the target items, how many fake users there are, how long each
profile is and where its target sits. That is a :class:`FakePlan`: one template per fake user
with the target at its target slots and 0 at its filler slots. A recipe only chooses the fillers
(its threat model decides from what) and returns the completed profiles; the runner checks them,
retrains the victim on real + fake profiles and scores target exposure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from attacks.base import Attack
from redteam.knowledge import Knowledge
from redteam.params import Params

Placement = Literal["random", "alternate", "end"]


class PoisoningParams(Params):
    """Overrides of the scenario's ``poisoning:`` section for one attack (None = the scenario's)."""

    fake_share: float | None = Field(None, gt=0, le=1, description="fake users as a share of the real users")
    profile_length: Literal["real"] | int | None = Field(None, description="items per fake profile: 'real' or a number >= 2")
    placement: Placement | None = Field(None, description="target slots: random, alternate or end")
    target_share: float | None = Field(None, gt=0, le=0.5, description="share of each profile's items that are its target")
    retrain: Literal["scratch", "finetune"] | None = Field(None, description="retrain from scratch or fine-tune the clean victim")


@dataclass(frozen=True)
class FakePlan:
    """The shape every recipe fills: ``templates[i]`` is fake user ``i``'s profile with its target
    ``target_of[i]`` at the target slots and 0 at the filler slots."""

    targets: tuple[int, ...]
    target_of: np.ndarray  # [n_fakes] item id each fake promotes
    templates: tuple[np.ndarray, ...]

    @property
    def n_fakes(self) -> int:
        return len(self.templates)

    def filler_slots(self, i: int) -> np.ndarray:
        return np.flatnonzero(self.templates[i] == 0)

    def lengths(self) -> np.ndarray:
        return np.array([len(t) for t in self.templates], dtype=np.int64)


def target_slots(length: int, count: int, placement: Placement, rng: np.random.Generator) -> np.ndarray:
    """Positions of ``count`` target copies in a profile of ``length`` items, never two adjacent.

    ``random``: uniformly random non-adjacent positions; ``alternate``: every ``length // count``-th
    position counted back from the last one (share 1/2 gives filler, target, filler, target, ...);
    ``end``: the last position, then every second one before it.
    """
    count = max(1, min(count, (length + 1) // 2))
    if placement == "random":
        # Stars and bars: choose `count` of `length - count + 1` gaps, then spread them by one.
        chosen = np.sort(rng.choice(length - count + 1, size=count, replace=False))
        return chosen + np.arange(count)
    step = 2 if placement == "end" else max(2, length // count)
    return np.sort(length - 1 - step * np.arange(count))


def make_plan(targets: list[int], *, n_fakes: int, lengths: np.ndarray, placement: Placement,
              target_share: float, rng: np.random.Generator) -> FakePlan:
    """Fakes split evenly across the targets (in turn), each with its target slots placed."""
    target_of = np.array([targets[i % len(targets)] for i in range(n_fakes)], dtype=np.int64)
    templates = []
    for i in range(n_fakes):
        length = int(lengths[i])
        profile = np.zeros(length, dtype=np.int64)
        profile[target_slots(length, int(round(target_share * length)), placement, rng)] = target_of[i]
        templates.append(profile)
    return FakePlan(tuple(int(t) for t in targets), target_of, tuple(templates))


class PoisoningAttack(Attack):
    """One verb: ``craft(knowledge, plan)`` returns one item-id array per template, same lengths,
    targets kept, ids in 1..N. ``diagnostics`` holds what the recipe reports about its last run,
    ``knowledge`` first (what it used)."""

    family: ClassVar[str] = "poisoning"
    Params: ClassVar[type[PoisoningParams]] = PoisoningParams

    def craft(self, knowledge: Knowledge, plan: FakePlan) -> list[np.ndarray]:
        raise NotImplementedError

    @staticmethod
    def filler_pool(knowledge: Knowledge, plan: FakePlan) -> np.ndarray:
        """Every real item id except the targets (fillers never promote another target)."""
        pool = np.arange(1, knowledge.n_items + 1)
        return pool[~np.isin(pool, plan.targets)]

    @staticmethod
    def fill(plan: FakePlan, fillers: list[np.ndarray]) -> list[np.ndarray]:
        """The templates with ``fillers[i]`` written into fake ``i``'s filler slots, in order."""
        out = []
        for i, template in enumerate(plan.templates):
            profile = template.copy()
            slots = np.flatnonzero(profile == 0)
            profile[slots] = np.asarray(fillers[i], dtype=np.int64)[: len(slots)]
            out.append(profile)
        return out


def draw_distinct(rng: np.random.Generator, pool: np.ndarray, size: int, *, avoid: np.ndarray | None = None,
                  p: np.ndarray | None = None) -> np.ndarray:
    """``size`` items from ``pool`` (weights ``p``), distinct when the pool is large enough and
    not in ``avoid`` when possible."""
    if avoid is not None and len(avoid):
        keep = ~np.isin(pool, avoid)
        if keep.sum() >= size:
            pool = pool[keep]
            p = None if p is None else p[keep] / p[keep].sum()
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    return rng.choice(pool, size=size, replace=size > len(pool) if p is None else size > np.count_nonzero(p), p=p)
