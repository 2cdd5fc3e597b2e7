"""The first step of every recommender run: train (or load) a victim, put it behind the serving
port, and score its clean accuracy on the evaluation users."""

from __future__ import annotations

import time
from typing import Any

from redteam.evaluation import recommender_ranking_values
from redteam.registry import resolve
from redteam.scenario import ComponentSpec
from redteam.serving.local import LocalRecommender
from redteam.serving.memo import MemoizedRecommender
from redteam.stages.context import RunContext, Target
from redteam.stages.hosting import transcript_folder

FIT_INFO = ("epochs_run", "best_epoch", "seconds", "seconds_per_epoch", "best_valid_ndcg10", "loss", "event_times")


def serve_local(ctx: RunContext, model: object) -> LocalRecommender:
    """A trained model behind the port, answering as the scenario's API is configured."""
    api = ctx.scenario.api
    return LocalRecommender(model.score, n_items=ctx.dataset.n_items, exclude_history=api.exclude_history,
                            batch_size=api.batch_size)


def train_victim(ctx: RunContext, spec: ComponentSpec, seed: int) -> Target:
    """Train (or load) one victim for one run seed and add its clean-accuracy row."""
    from redteam.fitting import fit_victim

    label = spec.label()
    if getattr(resolve("victims", spec.name), "remote", False):
        return remote_victim(ctx, spec, seed)
    epochs = int(spec.options.get("epochs", 0)) or None
    with ctx.training_progress(f"train {label} (seed {seed})", epochs, victim=label, seed=seed) as (stage, progress):
        t0 = time.perf_counter()
        model, info, cached = fit_victim(spec, train=ctx.split.train, valid=ctx.valid(), n_items=ctx.dataset.n_items,
                                         seed=seed, cache=ctx.cache, progress=progress,
                                         item_text=ctx.dataset.item_text, event_times=ctx.event_times())
        stage.update(status="loaded from cache" if cached else f"{info.get('epochs_run', 0)} epochs")
    ctx.events.emit("victim_ready", victim=label, seed=seed, cached=cached, seconds=time.perf_counter() - t0)
    ctx.artifacts[f"victims/{label}-seed{seed}"] = model.save  # `redteam serve <run dir>` serves it
    target = Target(spec=spec, seed=seed, model=model, recommender=serve_local(ctx, model))
    row = evaluate(ctx, target)
    row.info.setdefault("fit", []).append({"seed": seed, "cached": cached, **{k: info.get(k) for k in FIT_INFO}})
    return target


def remote_victim(ctx: RunContext, spec: ComponentSpec, seed: int) -> Target:
    """A recommender behind an HTTP endpoint: nothing to train; evaluated from its top-k lists."""
    from redteam.fitting import build_victim

    victim = build_victim(spec)
    # its answers to the evaluation users are journaled too: a rerun does not buy them again
    journal = transcript_folder(ctx, spec.label(), seed, "evaluation") / "journal.sqlite"
    # the evaluation users are asked once: the agreement reference reuses these answers
    recommender = MemoizedRecommender(ctx.services.enter_context(victim.recommender(journal=journal, seed=seed)))
    if recommender.n_items != ctx.dataset.n_items:
        from redteam.errors import ConfigError

        raise ConfigError(f"victims.{spec.label()}: the endpoint serves {recommender.n_items} items but the dataset "
                          f"'{ctx.dataset.name}' has {ctx.dataset.n_items}; both must share item ids 1..N")
    target = Target(spec=spec, seed=seed, model=None, recommender=recommender, remote=victim)
    row = evaluate(ctx, target)
    row.info["evaluation"] = (f"top-{recommender.max_k} lists over HTTP: full-catalog metrics were not available "
                              f"(HR/NDCG/MRR@K for K up to {recommender.max_k})")
    return target


def evaluate(ctx: RunContext, target: Target) -> Any:
    """The victim's clean-accuracy row over the evaluation users.

    A victim that reads event times is scored with the test users' times when the data set has
    them (its own quality), and again as the API answers, without times, in a row of its own."""
    reads_times = getattr(target.model, "reads_event_times", False)
    times = ctx.split.test_times(ctx.test_users) if reads_times else None
    with ctx.reporter.stage(f"evaluate {target.label}"):
        row = ctx.rows.row(ctx.dataset.name, target.label)
        if times is None:
            if reads_times:
                row.info["event_times"] = ("the data set has no timestamps: relative-position bias only "
                                           "(every pair takes the one unknown-gap bias)")
            return add_clean_metrics(ctx, target.recommender, row, seed=target.seed)
        add_clean_metrics(ctx, TimedScorer(target.model, times), row, seed=target.seed)
        row.info["event_times"] = "scored with the test users' event times; the API answers without them"
        untimed = add_clean_metrics(ctx, target.recommender, ctx.rows.row(ctx.dataset.name, f"{target.label} (api, no times)"),
                                    seed=target.seed)
        untimed.info["event_times"] = "the same model scored as its API answers: item ids only (unknown-gap bias)"
        return row


class TimedScorer:
    """The full-scoring capability of ``model`` with the evaluation users' event times: the ranking
    code scores consecutive chunks in order, so the times follow a running offset."""

    def __init__(self, model: Any, times: list[Any]) -> None:
        self.model, self.times, self.offset = model, times, 0

    def full_scorer(self) -> Any:
        def score(chunk: list[Any]) -> Any:
            when = self.times[self.offset : self.offset + len(chunk)]
            self.offset += len(chunk)
            return self.model.score(chunk, times=when)

        return score


def add_clean_metrics(ctx: RunContext, recommender: Any, row: Any, *, seed: int) -> Any:
    """HR/NDCG/MRR@K of the evaluation users served by ``recommender``, into ``row`` (returned),
    as the repetition of run seed ``seed``."""
    values = recommender_ranking_values(recommender, ctx.test_histories(), ctx.test_targets(),
                                        ks=ctx.scenario.eval.k, exclude_history=ctx.scenario.eval.exclude_history)
    for metric, per_user in values.items():
        row.add(metric, per_user, repetition=(seed,))
    return row
