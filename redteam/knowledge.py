"""What an attack is granted: the black-box API handle and only what its threat model allows.

An attack never receives the victim object, the full training data or the evaluation users.
The stages build one :class:`Knowledge` per (victim, attack, seed) with
:meth:`redteam.stages.context.RunContext.knowledge`; the attack's own randomness comes from
:attr:`Knowledge.seed`, derived independently of the victim's seed. Arrays are read-only copies:
an attack that writes into them gets a ValueError, never a changed dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redteam.serving.metered import MeteredEndpoint


@dataclass(frozen=True)
class Knowledge:
    """The attacker's view of one target.

    ``few_shot``: the training part of the attacker's real users' sequences (empty when the
    threat model grants none). ``victim_architecture``: the victim's alias when the scenario
    says the attacker knows it (a same-architecture surrogate), else None. ``item_text`` is
    indexed by item id (0 = padding) and given only when the scenario grants public item text.
    ``item_popularity`` (interaction counts of the training data, indexed by item id) is given
    only when the scenario grants it (``attacker.item_popularity``). ``surrogate`` is a model the
    attacker holds (scored like a victim: ``surrogate.score(histories)``): one it stole earlier in
    the run through the API, or, for an upper bound, a white-box copy of the victim;
    ``surrogate_source`` says which.
    """

    api: MeteredEndpoint
    n_items: int
    seed: int
    few_shot: tuple[np.ndarray, ...] = ()
    victim_architecture: str | None = None
    item_text: tuple[str, ...] | None = None
    item_popularity: np.ndarray | None = None
    surrogate: Any | None = None
    surrogate_source: str | None = None
    notes: dict[str, object] = field(default_factory=dict)
    cache_dir: Path | None = None  # where the attacker keeps what it computes (text embeddings); None: no disk cache

    def __post_init__(self) -> None:
        if self.n_items < 1:
            raise ValueError("n_items must be >= 1")
