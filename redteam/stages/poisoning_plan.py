"""The fake-user plan every poisoning recipe fills, and the checks on what a recipe returns.

One plan per attack seed: ``round(fake_share * real users)`` fake users (at least one per target),
split evenly across the targets, profile lengths drawn from the real users' lengths (or fixed),
target slots placed the same way for every recipe with the same settings. A recipe only fills the
filler slots; a profile that breaks the plan is the recipe's bug (exit 3, naming the attack).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from redteam.errors import ComponentError
from redteam.scenario import PoisoningConfig
from redteam.seeding import numpy_rng
from redteam.stages.poisoning_targets import Targets

if TYPE_CHECKING:
    from attacks.poisoning.base import FakePlan
    from redteam.data.dataset import SequenceDataset

SETTINGS = ("fake_share", "profile_length", "placement", "target_share", "retrain")


def resolved_settings(cfg: PoisoningConfig, params: Any) -> dict[str, Any]:
    return {name: getattr(params, name) if getattr(params, name, None) is not None else getattr(cfg, name) for name in SETTINGS}


def build_plan(dataset: "SequenceDataset", targets: Targets, settings: dict[str, Any], attack_seed: int) -> "FakePlan":
    """The same plan for every recipe with the same settings and attacker seed."""
    from attacks.poisoning.base import make_plan

    n_real = dataset.n_users
    n_fakes = max(len(targets.items), int(round(settings["fake_share"] * n_real)))
    if settings["profile_length"] == "real":
        real = np.array([len(s) for s in dataset.sequences], dtype=np.int64)
        lengths = np.maximum(2, real[numpy_rng(attack_seed, "poisoning-plan", "lengths", n_fakes).integers(0, len(real), size=n_fakes)])
    else:
        lengths = np.full(n_fakes, int(settings["profile_length"]), dtype=np.int64)
    # Lengths depend on the budget only; slots on the placement too: a placement ablation keeps the lengths.
    slots = numpy_rng(attack_seed, "poisoning-plan", "slots", n_fakes, settings["profile_length"], settings["placement"], settings["target_share"])
    return make_plan(list(targets.items), n_fakes=n_fakes, lengths=lengths, placement=settings["placement"],
                     target_share=settings["target_share"], rng=slots)


def check_profiles(profiles: list[np.ndarray], plan: "FakePlan", n_items: int, where: str) -> list[np.ndarray]:
    """One profile per template, same length, holding its target, ids in 1..N."""
    if len(profiles) != plan.n_fakes:
        raise ComponentError(f"{where}: crafted {len(profiles)} profiles, the plan has {plan.n_fakes}")
    out = []
    for i, (profile, template) in enumerate(zip(profiles, plan.templates)):
        try:
            arr = np.asarray(profile, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            raise ComponentError(f"{where}: fake profile {i} is not a sequence of integer item ids") from None
        if len(arr) != len(template) or not len(arr) or arr.min() < 1 or arr.max() > n_items or not np.any(arr == plan.target_of[i]):
            raise ComponentError(f"{where}: fake profile {i} breaks the plan (length {len(arr)} vs {len(template)}, "
                               f"ids in 1..{n_items}, must hold target {plan.target_of[i]})")
        out.append(arr)
    return out


def write_fakes(path: Path, fakes: list[np.ndarray], plan: "FakePlan", item_ids: list[str] | None) -> None:
    """One fake profile per line: index, target, item ids (1..N), the dataset's raw ids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# fake\ttarget\titems (ids 1..N, chronological)\traw item ids"]
    for i, profile in enumerate(fakes):
        raw = " ".join(str(item_ids[j]) for j in profile) if item_ids else ""
        lines.append(f"{i}\t{int(plan.target_of[i])}\t{' '.join(map(str, profile.tolist()))}\t{raw}")
    path.write_text("\n".join(lines) + "\n")
