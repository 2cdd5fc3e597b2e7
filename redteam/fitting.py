"""Train a victim (or load it from the cache) for a given training set and seed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from redteam.cache import ModelCache, cache_key, sequences_checksum, texts_checksum, times_checksum
from redteam.errors import ConfigError
from redteam.registry import resolve
from redteam.scenario import ComponentSpec, component_params
from redteam.seeding import derive_seed

ProgressFn = Callable[[int, int, dict[str, float]], None]


@dataclass
class TrainingSetup:
    """What a training-time defense adds to one fit: trainer hooks, sequences appended to the
    training set, and a callback that completes the fit's (cached) info after training."""

    hooks: Sequence[Any] = ()
    extra_train: list[np.ndarray] = field(default_factory=list)
    finish: Callable[[dict[str, Any]], None] | None = None


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
    cache_label: str | None = None,
    setup: Callable[[], TrainingSetup] | None = None,
    item_text: Sequence[str] | None = None,
    event_times: Any = None,
) -> tuple[Any, dict[str, Any], bool]:
    """(victim, fit info, loaded_from_cache). The victim's seed is derived from ``seed`` and its label.

    ``setup`` (called only when the victim is not cached) lets a defense hook into training;
    ``extra_key`` must then name what it changes, so its victims get their own cache entries.
    ``item_text`` (index 0 padding): the data set's texts, read by victims that represent items by
    their text (``reads_item_text``); their hash joins the cache key. ``event_times``
    (:class:`redteam.training.EventTimes`, its ``train`` aligned with the start of ``train``): the
    events' times, read by victims with ``reads_event_times`` (HSTU); their hash joins the key too.
    """
    cls = resolve("victims", spec.name)
    victim_seed = derive_seed(seed, "victim", spec.label())
    params = component_params("victims", spec, where="victims")
    reads_text = getattr(cls, "reads_item_text", False)
    times = event_times if getattr(cls, "reads_event_times", False) else None
    if reads_text and not item_text:
        raise ConfigError(f"victims.{spec.label()}: '{spec.name}' represents items by their text, and this data set has none")
    key = cache_key(
        source=cls.__module__,
        victim=spec.name,
        params=params.model_dump(mode="json"),
        seed=victim_seed,
        train=sequences_checksum(train),
        valid=sequences_checksum([*valid[0], valid[1]]) if valid is not None else None,
        n_items=n_items,
        **({"item_text": texts_checksum(item_text)} if reads_text else {}),
        **({"event_times": times_checksum(times)} if times is not None else {}),
        **(extra_key or {}),
    )

    def create() -> tuple[Any, dict[str, Any]]:
        extra = setup() if setup is not None else TrainingSetup()
        victim = cls(params)
        if reads_text:
            victim.use_item_text(item_text, cache_dir=cache.base if cache.enabled else None)
        report = victim.fit([*train, *extra.extra_train], valid, n_items=n_items, seed=victim_seed, hooks=extra.hooks,
                            progress=progress, **({"times": times} if times is not None else {}))
        info = report.to_dict()
        if extra.finish is not None:
            extra.finish(info)
        return victim, info

    return cache.get_or_create(cache_label or spec.name, key, create=create, save=lambda v, p: v.save(p), load=cls.load)
