"""The first step of every recommender run: train (or load) a victim, put it behind the serving
port, and score its clean accuracy on the evaluation users."""

from __future__ import annotations

import time

from redteam.evaluation import recommender_ranking_values
from redteam.scenario import ComponentSpec
from redteam.serving.local import LocalRecommender
from redteam.stages.context import RunContext, Target

FIT_INFO = ("epochs_run", "best_epoch", "seconds", "seconds_per_epoch", "best_valid_ndcg10")


def serve_local(ctx: RunContext, model: object) -> LocalRecommender:
    """A trained model behind the port, answering as the scenario's API is configured."""
    api = ctx.scenario.api
    return LocalRecommender(model.score, n_items=ctx.dataset.n_items, exclude_history=api.exclude_history,
                            batch_size=api.batch_size)


def train_victim(ctx: RunContext, spec: ComponentSpec, seed: int) -> Target:
    """Train (or load) one victim for one run seed and add its clean-accuracy row."""
    from redteam.fitting import fit_victim

    label = spec.label()
    epochs = int(spec.options.get("epochs", 0)) or None
    with ctx.training_progress(f"train {label} (seed {seed})", epochs, victim=label, seed=seed) as (stage, progress):
        t0 = time.perf_counter()
        model, info, cached = fit_victim(spec, train=ctx.split.train, valid=ctx.valid(), n_items=ctx.dataset.n_items,
                                         seed=seed, cache=ctx.cache, progress=progress)
        stage.update(status="loaded from cache" if cached else f"{info.get('epochs_run', 0)} epochs")
    ctx.events.emit("victim_ready", victim=label, seed=seed, cached=cached, seconds=time.perf_counter() - t0)
    target = Target(spec=spec, seed=seed, model=model, recommender=serve_local(ctx, model))
    with ctx.reporter.stage(f"evaluate {label}"):
        values = recommender_ranking_values(target.recommender, ctx.test_histories(), ctx.test_targets(),
                                            ks=ctx.scenario.eval.k, exclude_history=ctx.scenario.eval.exclude_history)
    row = ctx.rows.row(ctx.dataset.name, label)
    for metric, per_user in values.items():
        row.add(metric, per_user)
    row.info.setdefault("fit", []).append({"seed": seed, "cached": cached, **{k: info.get(k) for k in FIT_INFO}})
    return target
