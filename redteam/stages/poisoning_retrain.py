"""Retraining the victim on real + fake training sequences: from scratch (the default, cached by
the poisoned data's checksum like any victim) or fine-tuned from the clean weights (Yue et al.'s
weaker setting, ``retrain: finetune``)."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import numpy as np

from redteam.errors import ConfigError
from redteam.scenario import component_params
from redteam.seeding import derive_seed
from redteam.stages.context import ProgressFn, RunContext, Target


def retrain(ctx: RunContext, target: Target, fakes: list[np.ndarray], settings: dict[str, Any],
            label: str) -> tuple[Any, dict[str, Any], bool]:
    """The victim retrained on real + fake training sequences: (model, fit info, from cache)."""
    from redteam.fitting import fit_victim

    spec, seed = target.spec, target.seed
    train = [*ctx.split.train, *fakes]
    mode = settings["retrain"]
    epochs = ctx.scenario.poisoning.finetune_epochs if mode == "finetune" else int(spec.options.get("epochs", 0)) or None
    title = f"{label}: retrain {spec.label()} ({mode}) on {len(ctx.split.train)} real + {len(fakes)} fake users"
    with ctx.training_progress(title, epochs, victim=spec.label(), attack=label, seed=seed) as (stage, progress):
        if mode == "scratch":
            poisoned, info, cached = fit_victim(spec, train=train, valid=ctx.valid(), n_items=ctx.dataset.n_items,
                                                seed=seed, cache=ctx.cache, progress=progress,
                                                item_text=ctx.dataset.item_text, event_times=ctx.event_times())
        else:
            poisoned, info, cached = finetune(ctx, target, train, progress)
        stage.update(status="loaded from cache" if cached else f"{info.get('epochs_run', 0)} epochs, {info.get('seconds', 0):.0f} s")
    ctx.events.emit("poisoned_victim_ready", victim=spec.label(), attack=label, seed=seed, mode=mode, cached=cached,
                    seconds=info.get("seconds"))
    return poisoned, info, cached


def finetune(ctx: RunContext, target: Target, train: list[np.ndarray], progress: ProgressFn) -> tuple[Any, dict[str, Any], bool]:
    """A copy of the clean victim trained further on the poisoned data (``finetune_epochs`` at most,
    same early stopping, a fresh optimizer): Yue et al.'s setting, weaker than retraining."""
    from redteam.cache import cache_key, sequences_checksum
    from redteam.registry import resolve
    from redteam.training import train_model

    victim, spec, seed = target.model, target.spec, target.seed
    valid = ctx.valid()
    if getattr(victim, "model", None) is None:
        raise ConfigError(f"poisoning.retrain: 'finetune' needs a neural victim; {spec.label()} has no weights to continue from")
    cls = resolve("victims", spec.name)
    params = component_params("victims", spec, where="victims").model_copy(update={"epochs": ctx.scenario.poisoning.finetune_epochs})
    victim_seed = derive_seed(seed, "victim", spec.label())
    weights = hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes() for v in victim.model.state_dict().values())).hexdigest()[:16]
    key = cache_key(source=cls.__module__, victim=spec.name, params=params.model_dump(mode="json"), seed=victim_seed, mode="finetune",
                    clean_weights=weights, train=sequences_checksum(train),
                    valid=sequences_checksum([*valid[0], valid[1]]), n_items=ctx.dataset.n_items)

    def create() -> tuple[Any, dict[str, Any]]:
        tuned = cls(params)
        tuned.n_items = victim.n_items
        tuned.model = copy.deepcopy(victim.model)
        report = train_model(tuned, train, valid, seed=derive_seed(victim_seed, "finetune"), progress=progress)
        return tuned, report.to_dict()

    return ctx.cache.get_or_create(f"{spec.name}-finetune", key, create=create, save=lambda v, p: v.save(p), load=cls.load)
