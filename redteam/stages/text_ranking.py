"""Text-ranking scenarios: a catalog, rankers, STS attacks, paired evaluation trials, rows.

Evaluation (Kumar & Lakkaraju, 2024; specs/sts.md): for each target product, ``sts.trials``
trials, each a held-out shopper request and a random catalog order (and, with
``sts.competitors``, a random subset of the pool shown with the target: a bi-encoder ignores
order, so there the competitors vary). Every ranker, defense and attack sees the same trials, with
and without the attack's text on the target (paired). Per trial: the target's rank (N + 1 when it
is not named or was filtered out), top-1, and for attacks advantage / disadvantage (rank improved /
worsened against the same trial without the text). Rows macro-average over targets, with
bootstrap intervals over trials.

Text defenses: a filter (perplexity, non-word share) is calibrated on half of a set of real
product texts and measured for false positives on the other half; in a trial, a flagged product
is dropped from what the ranker sees. Order averaging wraps the ranker.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, ClassVar

import numpy as np

from redteam.catalog import Catalog
from redteam.errors import ConfigError
from redteam.events import EventLog
from redteam.progress import Reporter
from redteam.results import RowTable
from redteam.scenario import Scenario, component_params
from redteam.seeding import derive_seed, numpy_rng
from redteam.stages.text_guard import TextGuard, build_guards
from redteam.stages.text_trials import (MIN_CALIBRATION, Crafted, Trial, add_trial_metrics, load_scenario_catalog,
                                        pick_targets, plan_trials, reference_texts, split_requests)


class TextRankingStage:
    """The stage of text attacks (family ``sts``) against LLM rankers. Text rankers are not trained
    or retrained, so the stage runs the whole paired evaluation at once (:func:`run_text_ranking`)
    rather than one attack at a time against a trained victim."""

    family: ClassVar[str] = "sts"
    produces: ClassVar[tuple[type, ...]] = ()
    consumes: ClassVar[tuple[type, ...]] = ()
    defense_kinds: ClassVar[frozenset[str]] = frozenset({"text", "serving"})
    victim_family: ClassVar[str] = "ranker"
    success_metric: ClassVar[str] = "top1_rate"
    attack_verbs: ClassVar[tuple[str, ...]] = ("craft",)


def run_text_ranking(scenario: Scenario, *, reporter: Reporter, events: EventLog) -> dict[str, Any]:
    """Everything of a text-ranking run except writing it: returns the ``results`` document."""
    from redteam.registry import resolve

    started = time.perf_counter()
    timings: dict[str, float] = {}
    with reporter.stage(f"load catalog: {scenario.catalog.path or scenario.catalog.name}") as stage:
        catalog = load_scenario_catalog(scenario)
        optimise, held_out = split_requests(catalog.requests, scenario.sts.heldout_share, numpy_rng(scenario.seed, "sts-requests"))
        targets = pick_targets(catalog, scenario.sts.targets, numpy_rng(scenario.seed, "sts-targets"))
        stage.update(status=f"{len(catalog.products)} products, {len(optimise)}+{len(held_out)} requests")
    events.emit("catalog_loaded", catalog=catalog.name, products=len(catalog.products), targets=targets)
    rankers = {spec.label(): resolve("victims", spec.name)(component_params("victims", spec, where=f"victims.{spec.label()}"))
               for spec in scenario.victims}
    guards = build_guards(scenario)
    if any(g.filters for g in guards):
        with reporter.stage("calibrate text defenses") as stage:
            calibration, false_positive_texts, source = reference_texts(scenario, catalog)
            if len(calibration) < MIN_CALIBRATION:
                raise ConfigError(f"sts.reference_texts: only {len(calibration)} calibration texts ({source}); "
                                  f"a filter threshold needs at least {MIN_CALIBRATION}: set catalog.data_dir or "
                                  "$REDTEAM_DATA_DIR to the real data, or raise sts.reference_texts")
            for guard in guards:
                guard.calibrate(calibration, false_positive_texts, source=source)
            stage.update(status=f"{len(calibration)} calibration, {len(false_positive_texts)} held-out texts")
    crafted = craft_all(scenario, catalog, targets, optimise, rankers, reporter, events)
    timings["craft_seconds"] = sum(c.seconds for c in crafted)
    rows = RowTable()
    curves: list[dict[str, Any]] = []
    trials = {t: plan_trials(len(catalog.products), t, held_out, scenario.sts.trials, scenario.sts.competitors,
                             numpy_rng(scenario.seed, "sts-trials", t), seen=False)
              + plan_trials(len(catalog.products), t, optimise, scenario.sts.seen_trials, scenario.sts.competitors,
                            numpy_rng(scenario.seed, "sts-seen-trials", t), seen=True)
              for t in targets}
    plan = hashlib.sha256(json.dumps(
        [[t, tr.request, list(tr.shown), tr.seen] for t in targets for tr in trials[t]]
        + [p.json_line() for p in catalog.products]).encode()).hexdigest()[:12]
    t_eval = time.perf_counter()
    for label, ranker in rankers.items():
        memo: dict[tuple, list[int]] = {}  # this ranker's rankings, shared by the defenses that do not wrap it
        for guard in guards:
            evaluate(rows, catalog, label, ranker, guard, targets, trials, crafted, scenario, reporter, memo)
    timings["evaluation_seconds"] = time.perf_counter() - t_eval
    for c in crafted:
        if "losses" in c.diagnostics:
            curves.append({"metric": "gcg_loss", "victim": c.source, "attack": c.attack, "seed": c.attack_seed,
                           "target": catalog.products[c.target].name,
                           "points": [{"step": i, "loss": v} for i, v in enumerate(c.diagnostics["losses"])]})
    timings["total_seconds"] = time.perf_counter() - started
    return {
        "catalog": catalog, "rows": rows, "curves": curves, "timings": timings,
        "summary": {
            "catalog": catalog.name, "source": catalog.source, "products": len(catalog.products), "trial_plan": plan,
            "targets": [catalog.products[t].name for t in targets],
            "optimisation_requests": optimise, "held_out_requests": held_out,
            "crafted": [{"attack": c.attack, "target": catalog.products[c.target].name, "seed": c.attack_seed,
                         "optimised_on": c.source, "text": c.text, "seconds": c.seconds,
                         **{k: v for k, v in c.diagnostics.items() if k not in ("losses", "text")}} for c in crafted],
            "defenses": {g.label: g.metrics for g in guards if g.metrics},
        },
        "rankers": {label: r.identifier() for label, r in rankers.items()},
    }


def craft_all(scenario: Scenario, catalog: Catalog, targets: list[int], optimise: list[str], rankers: dict[str, Any],
              reporter: Reporter, events: EventLog) -> list[Crafted]:
    from attacks.sts.base import STSKnowledge, token_counter
    from redteam.registry import resolve

    out = []
    first = next(iter(rankers))
    for spec in scenario.attacks:
        label = spec.label()
        cls = resolve("attacks", spec.name)
        params = component_params("attacks", spec, where=f"attacks.{label}")
        source = getattr(params, "optimise_on", None) or first  # checked against the labels by check_families
        for target in targets:
            for attack_seed in scenario.attack_seeds_for(scenario.seed):
                attack = cls(params)
                knowledge = STSKnowledge(
                    products=catalog.products, target=target, requests=tuple(optimise),
                    seed=derive_seed(scenario.seed, "attack", attack_seed, target),  # never the label: rows share draws
                    ranker=rankers[source] if cls.needs_ranker else None, ranker_label=source,
                    count_tokens=token_counter(rankers[source]))
                steps = getattr(params, "steps", None)
                name = catalog.products[target].name
                with reporter.stage(f"{label} -> {name[:40]} (on {source})", total=steps) as stage:
                    if steps is not None:
                        attack.progress_callback = lambda step, loss: stage.update(completed=step, status=f"loss {loss:.3f}")
                    t0 = time.perf_counter()
                    text = attack.craft(knowledge)
                    seconds = time.perf_counter() - t0
                events.emit("sts_crafted", attack=label, target=name, seed=attack_seed, seconds=seconds, text=text)
                out.append(Crafted(label, target, attack_seed, text, source if cls.needs_ranker else "", seconds,
                                   dict(attack.diagnostics)))
    return out


def evaluate(rows: RowTable, catalog: Catalog, label: str, ranker: Any, guard: TextGuard, targets: list[int],
             trials: dict[int, list[Trial]], crafted: list[Crafted], scenario: Scenario, reporter: Reporter,
             memo: dict[tuple, list[int]]) -> None:
    """Clean and attacked rows of one (ranker, defense) over the same trials."""
    pool = catalog.products

    def positions(target: int, text: str) -> np.ndarray:
        out = []
        for i, trial in enumerate(trials[target]):
            # A wrapping defense (order averaging) draws its orders from the trial's own generator:
            # the same orders with and without the text, whatever else the scenario runs.
            served = guard.ranker(ranker, numpy_rng(scenario.seed, "sts-defense-orders", label, guard.label, target, i))
            products = [pool[i].with_suffix(text) if i == target else pool[i] for i in trial.shown]
            out.append(guard.position(served, products, trial.shown.index(target), trial.request,
                                      memo if served is ranker else None))
        return np.asarray(out, dtype=np.float64)

    attacks = list(dict.fromkeys(c.attack for c in crafted))
    total = len(targets) * (1 + len(crafted) // max(len(targets), 1))
    with reporter.stage(f"evaluate {label} / {guard.label}", total=total) as stage:
        clean = {}
        for t in targets:
            clean[t] = positions(t, "")
            stage.advance()
        row = rows.row(catalog.name, label, "none", guard.label)
        add_trial_metrics(row, targets, trials, clean, None)
        if "fpr" in guard.metrics:
            row.add("fpr", guard.false_positive_flags)
        for attack in attacks:
            shown_name = attack
            sources = {c.source for c in crafted if c.attack == attack and c.source}
            if sources and label not in sources:
                shown_name = f"{attack} (transfer from {'/'.join(sorted(sources))})"
            row = rows.row(catalog.name, label, shown_name, guard.label)
            for seed in dict.fromkeys(c.attack_seed for c in crafted if c.attack == attack):
                mine = {c.target: c for c in crafted if c.attack == attack and c.attack_seed == seed}
                attacked = {}
                for t in targets:
                    attacked[t] = positions(t, mine[t].text)
                    stage.advance()
                add_trial_metrics(row, targets, trials, attacked, clean)
                if guard.filters:
                    texts = [pool[t].with_suffix(mine[t].text).text() for t in targets]
                    row.add("detection_rate", np.asarray(guard.flag(texts), dtype=np.float64))
                    row.add("fpr", guard.false_positive_flags)
                row.add("seconds", np.asarray([mine[t].seconds for t in targets]))
            row.info["optimised_on"] = sorted(sources)
