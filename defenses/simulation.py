"""Fraudsters the defender simulates itself: the labelled positives of LoRec and LLM4Dec.

LoRec (Zhang et al., SIGIR 2024) and LLM4Dec learn what a fake user looks like from fake profiles
the defender crafts with a known, simple attack. The defender does not know the real attacker's
targets, budget or recipe: it draws its own targets (uniformly among its items below the median
popularity, from its own seed), gives the fakes the real users' length distribution, and fills
them with one of the project's poisoning recipes that needs no API (random or bandwagon).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from redteam.params import Params
from redteam.seeding import numpy_rng

if TYPE_CHECKING:
    from defenses.base import DefenseInputs


class SimulatedFraud(Params):
    """How the defender simulates its labelled fraudsters."""

    attack: Literal["poisoning.random", "poisoning.bandwagon"] = Field(
        "poisoning.random", description="the known attack the defender simulates")
    share: float = Field(0.01, gt=0, le=0.5, description="simulated fakes as a share of the training users")
    targets: int = Field(100, ge=1, description="distinct targets of the simulated fakes (capped by the fake count and the unpopular items): many, so a calibrator cannot key on a few items")
    target_share: float = Field(0.2, gt=0, le=0.5, description="share of each simulated profile that is its target")


def simulate_fakes(inputs: "DefenseInputs", config: SimulatedFraud) -> list[np.ndarray]:
    """``round(share * training users)`` fake profiles (at least one per target) crafted by ``config.attack``."""
    from attacks.poisoning.base import make_plan
    from redteam.knowledge import Knowledge
    from redteam.registry import resolve

    train, n_items, popularity = inputs.train, inputs.n_items, inputs.item_popularity
    rng = numpy_rng(inputs.seed, "defender-simulation", config.attack)
    seen = np.flatnonzero(popularity[1:] >= 1) + 1
    if len(seen) == 0:
        raise ValueError("simulate_fakes: no item occurs in the training data")
    median = float(np.median(popularity[seen]))
    pool = seen[popularity[seen] <= median]
    targets = sorted(rng.choice(pool, size=min(config.targets, len(pool)), replace=False).tolist())
    n_fakes = max(len(targets), int(round(config.share * len(train))))
    real_lengths = np.array([len(s) for s in train], dtype=np.int64)
    lengths = np.maximum(2, real_lengths[rng.integers(0, len(train), size=n_fakes)])
    plan = make_plan(targets, n_fakes=n_fakes, lengths=lengths, placement="random",
                     target_share=config.target_share, rng=rng)
    recipe = resolve("attacks", config.attack)()
    knowledge = Knowledge(api=None, n_items=n_items, seed=int(rng.integers(2**31)),  # type: ignore[arg-type]
                          item_popularity=popularity)
    return recipe.craft(knowledge, plan)
