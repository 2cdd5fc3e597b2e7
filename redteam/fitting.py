"""Train a victim (or load it from the cache) for a given training set and seed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from redteam.cache import ModelCache, cache_key, sequences_checksum
from redteam.registry import resolve
from redteam.scenario import ComponentSpec, component_params
from redteam.seeding import derive_seed

ProgressFn = Callable[[int, int, dict[str, float]], None]


def build_victim(spec: ComponentSpec, *, where: str = "victims") -> Any:
    cls = resolve("victims", spec.name, where=where)
    return cls(component_params("victims", spec, where=where))


def fit_victim(
    spec: ComponentSpec,
    *,
    train: list[np.ndarray],
    valid: tuple[list[np.ndarray], np.ndarray] | None,
    n_items: int,
    seed: int,
    cache: ModelCache,
    progress: ProgressFn | None = None,
    extra_key: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any], bool]:
    """(victim, fit info, loaded_from_cache). The victim's seed is derived from ``seed`` and its label."""
    cls = resolve("victims", spec.name)
    victim_seed = derive_seed(seed, "victim", spec.label())
    params = component_params("victims", spec, where="victims")
    key = cache_key(
        victim=spec.name,
        params=params.model_dump(mode="json"),
        seed=victim_seed,
        train=sequences_checksum(train),
        valid=sequences_checksum([*valid[0], valid[1]]) if valid is not None else None,
        n_items=n_items,
        **(extra_key or {}),
    )

    def create() -> tuple[Any, dict[str, Any]]:
        victim = cls(params)
        report = victim.fit(train, valid, n_items=n_items, seed=victim_seed, progress=progress)
        return victim, report.to_dict()

    return cache.get_or_create(spec.name, key, create=create, save=lambda v, p: v.save(p), load=cls.load)
