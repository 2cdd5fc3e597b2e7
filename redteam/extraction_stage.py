"""Run one extraction attack against one trained victim and score the stolen surrogate.

The attack sees a fresh :class:`BlackBoxAPI` (the scenario's top-k, budget, score exposure)
and a :class:`Knowledge` with the few-shot users' training sequences. Scoring happens here,
never in the attack, over the evaluation users the attacker never saw: Agreement@1/10 of
the surrogate's full-catalog top lists with the victim's, the surrogate's own HR/NDCG, the
queries used and the wall time. A budget curve re-distils on prefixes of the same stream.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from redteam.api import BlackBoxAPI
from redteam.evaluation import ranking_values
from redteam.knowledge import Knowledge
from redteam.metrics import agreement_at_k, topk_items
from redteam.scenario import ComponentSpec, component_params
from redteam.seeding import derive_seed

if TYPE_CHECKING:
    from redteam.runner import RunContext

AGREEMENT_KS = (1, 10)


def top_lists(score_fn: Any, histories: list[np.ndarray], k: int, *, exclude_history: bool, batch: int = 1024) -> np.ndarray:
    """[U, k] full-catalog top-k ids of a scorer (padding, and history if asked, excluded)."""
    parts = []
    for start in range(0, len(histories), batch):
        chunk = histories[start : start + batch]
        parts.append(topk_items(score_fn(chunk), k, exclude=chunk if exclude_history else None).numpy())
    return np.concatenate(parts) if parts else np.zeros((0, k), dtype=np.int64)


def build_api(ctx: "RunContext", victim: Any) -> BlackBoxAPI:
    a = ctx.scenario.api
    return BlackBoxAPI(victim.score, n_items=ctx.dataset.n_items, topk=a.topk, budget=a.budget,
                       expose_scores=a.expose_scores, exclude_history=a.exclude_history, batch_size=a.batch_size)


def run_extraction(ctx: "RunContext", victim: Any, victim_label: str, spec: ComponentSpec, seed: int, attack_seed: int) -> None:
    """``seed``: the run seed (which victim); ``attack_seed``: the attacker's own root seed.

    The budget curve is drawn for the first attacker seed only (each point is a distillation).
    """
    from redteam.registry import resolve

    sc = ctx.scenario
    label = spec.label()
    cls = resolve("attacks", spec.name)
    attack = cls(component_params("attacks", spec, where=f"attacks.{label}"))
    api = build_api(ctx, victim)
    knowledge = Knowledge(
        api=api, n_items=ctx.dataset.n_items, seed=derive_seed(attack_seed, "attack", label),
        few_shot=tuple(ctx.split.train[u] for u in ctx.few_shot_users),
        victim_architecture=victim.alias if sc.attacker.knows_architecture else None,
        item_text=tuple(ctx.dataset.item_text) if sc.attacker.item_text and ctx.dataset.item_text else None,
    )
    histories = ctx.split.test_histories(ctx.test_users)
    kmax = max(AGREEMENT_KS)
    victim_top = ctx.victim_top.get((victim_label, seed))
    if victim_top is None:
        victim_top = top_lists(victim.score, histories, kmax, exclude_history=sc.api.exclude_history)
        ctx.victim_top[(victim_label, seed)] = victim_top

    with ctx.reporter.stage(f"{label}: query {victim_label}", total=api.budget) as stage:
        def on_progress(phase: str, done: float, total: float) -> None:
            if phase == "queries":
                stage.update(completed=done, total=total, status=f"{int(done)} queries")
            else:
                stage.update(status=f"{phase} {int(done)}/{int(total)}")

        t0 = time.perf_counter()
        transcript = attack.collect(knowledge, max_queries=attack.query_allowance(knowledge), progress=on_progress)
        seconds_collect = time.perf_counter() - t0
        stage.update(completed=api.queries_used, total=api.budget, status=f"{api.queries_used} queries, {len(transcript)} sequences")
    ctx.events.emit("extraction_collected", victim=victim_label, attack=label, seed=seed, attack_seed=attack_seed, queries=api.queries_used,
                    sequences=len(transcript), few_shot_sequences=transcript.few_shot_count(), seconds=seconds_collect)

    curve = []
    first = attack_seed == sc.attack_seeds_for(seed)[0]
    points = sorted({int(round(s * transcript.queries)) for s in attack.params.curve if 0 < s < 1}) if first else []
    with ctx.reporter.stage(f"{label}: distil surrogate", total=len(points) + 1) as stage:
        for done, queries in enumerate(points):
            stage.update(completed=done, status=f"budget curve: {queries} queries")
            part = transcript.prefix(queries)
            surrogate, _ = attack.train_surrogate(knowledge, part)
            top = top_lists(surrogate.score, histories, kmax, exclude_history=sc.api.exclude_history)
            curve.append({"queries": part.distinct_prefixes(), "agreement@10": float(agreement_at_k(top, victim_top, 10).mean())})
        stage.update(completed=len(points), status=f"all {transcript.queries} queries")
        t1 = time.perf_counter()
        surrogate, report = attack.train_surrogate(knowledge, transcript)
        seconds_distill = time.perf_counter() - t1
    top = top_lists(surrogate.score, histories, kmax, exclude_history=sc.api.exclude_history)
    agreement = {k: agreement_at_k(top, victim_top, k) for k in AGREEMENT_KS}
    curve.append({"queries": api.queries_used, "agreement@10": float(agreement[10].mean())})

    row = ctx.rows.row(ctx.dataset.name, victim_label, attack=label)
    for k, values in agreement.items():
        row.add(f"agreement@{k}", values)
    quality = ranking_values(surrogate.score, histories, ctx.split.test_targets(ctx.test_users),
                             ks=sc.eval.k, exclude_history=sc.eval.exclude_history)
    for metric, values in quality.items():
        row.add(metric, values)
    row.add("queries", float(api.queries_used))
    row.add("seconds", seconds_collect + seconds_distill)
    row.info.setdefault("extraction", []).append({
        "seed": seed, "attack_seed": attack_seed, "identifier": attack.identifier(), "surrogate": surrogate.alias,
        "queries": api.queries_used, "sequences": len(transcript), "few_shot_sequences": transcript.few_shot_count(),
        "seconds_collect": round(seconds_collect, 2), "seconds_distill": round(seconds_distill, 2),
        "queries_per_second": round(api.queries_used / max(seconds_collect, 1e-9), 1),
        "distill_epochs": report.epochs_run, "best_epoch": report.best_epoch,
        "holdout_agreement@10": report.best_holdout_agreement10,
        **attack.diagnostics,
    })
    if first:
        ctx.curves.append({"victim": victim_label, "attack": label, "seed": attack_seed, "metric": "agreement@10", "points": curve})
    ctx.artifacts[f"surrogates/{victim_label}-{label}-seed{seed}-attack{attack_seed}"] = surrogate.save
    ctx.surrogates[(victim_label, seed, attack_seed, label)] = surrogate  # for a poisoning attack of the same run
    ctx.events.emit("extraction_scored", victim=victim_label, attack=label, seed=seed,
                    agreement10=float(agreement[10].mean()), seconds_distill=seconds_distill)
