"""One scenario run: data -> victims -> stages (attack families, in dependency order) -> results + gates.

The runner names no attack family: each attack's ``family`` resolves to a registered stage
(:data:`redteam.registry.STAGES`), stages are ordered from what they produce and consume, and
every stage runs its attacks against each trained victim. Text-ranking scenarios (victims that
are LLM rankers, never trained) run their stage's paired evaluation instead.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redteam.environment import configure_torch, environment_info
from redteam.errors import ConfigError
from redteam.evaluation import protocol
from redteam.events import EventLog
from redteam.gates import evaluate_gates
from redteam.progress import Reporter
from redteam.paired import paired_rows
from redteam.results import RowTable, json_default, write_per_user
from redteam.scenario import ComponentSpec, Scenario
from redteam.stages.base import Stage
from redteam.stages.context import RunContext
from redteam.stages.setup import build_stages, load_context, run_attack
from redteam.stages.victim import train_victim


@dataclass
class RunOutcome:
    results: dict[str, Any]
    out_dir: Path
    exit_code: int


def run_scenario(scenario: Scenario, *, reporter: Reporter, use_cache: bool | None = None,
                 out_root: Path | None = None) -> RunOutcome:
    on_ray = scenario.runtime.executor == "ray"
    if on_ray:
        check_ray_scenario(scenario, use_cache)
        # each unit runs torch with unit_cpus threads: that is the thread count its numbers depend on
        scenario = scenario.model_copy(update={"runtime": scenario.runtime.model_copy(
            update={"threads": scenario.runtime.unit_cpus})})
    threads = configure_torch(scenario.runtime.threads)
    events = EventLog()
    events.emit("run_started", scenario=scenario.name, threads=threads)
    if scenario.ranks_text:
        return run_text_scenario(scenario, reporter=reporter, events=events, threads=threads, out_root=out_root)
    started = time.perf_counter()
    with reporter.session():
        ctx = load_context(scenario, reporter=reporter, events=events, use_cache=use_cache)
        ctx.timings["data_seconds"] = time.perf_counter() - started
        stages = build_stages(ctx)
        for stage, _ in stages:
            stage.prepare()  # before any training: a bad setting fails fast
        if on_ray:
            run_units_on_ray(ctx)
        else:
            run_serially(ctx, stages)
    ctx.timings["total_seconds"] = time.perf_counter() - started
    results = assemble_results(ctx, [s for s, _ in stages], threads=threads)
    return finish(scenario, results, events, out_root=out_root,
                  artifacts={**ctx.artifacts, "per_user.npz": lambda path: write_per_user(ctx.rows, path)})


def run_serially(ctx: RunContext, stages: list[tuple[Stage, list[ComponentSpec]]]) -> None:
    """The serial executor: every victim, then every stage's attacks against it, in this process."""
    scenario = ctx.scenario
    with ctx.services:  # stops child servers and removes temp folders, also on error and Ctrl-C
        for seed in scenario.run_seeds:
            for spec in scenario.victims:
                target = train_victim(ctx, spec, seed)
                for stage, attacks in stages:
                    for attack in attacks:
                        for attack_seed in scenario.attack_seeds_for(seed):
                            run_attack(stage, target, attack, attack_seed)


def check_ray_scenario(scenario: Scenario, use_cache: bool | None) -> None:
    """What the Ray executor cannot do, refused before anything runs."""
    if scenario.ranks_text:
        raise ConfigError("runtime.executor: ray runs recommender scenarios; text-ranking scenarios run serially")
    if use_cache is False or not scenario.runtime.cache:
        raise ConfigError("runtime.executor: ray needs the cache (its units share trained victims through it); "
                          "drop --no-cache / runtime.cache: false")


def run_units_on_ray(ctx: RunContext) -> None:
    """The run's units as Ray tasks, their records replayed into ``ctx`` in serial order."""
    from redteam.executors.merge import replay
    from redteam.executors.ray_executor import run_plan
    from redteam.executors.units import plan_units

    sc = ctx.scenario
    plan = plan_units(sc, cpus=sc.runtime.unit_cpus)
    records = run_plan(sc, plan, cache_root=ctx.cache.base.resolve(), reporter=ctx.reporter, events=ctx.events)
    replay(ctx, records)
    ctx.timings["units"] = {r["unit"]: {"seconds": r["seconds"], "node": r["node"]["node_id"]} for r in records}


def run_text_scenario(scenario: Scenario, *, reporter: Reporter, events: EventLog, threads: int,
                      out_root: Path | None) -> RunOutcome:
    """A scenario whose victims are text rankers: catalog -> text attacks -> paired trials."""
    from redteam.stages.text_ranking import TextRankingStage, run_text_ranking
    from redteam.stages.text_trials import protocol_of

    with reporter.session():
        out = run_text_ranking(scenario, reporter=reporter, events=events)
    catalog = out["catalog"]
    results = {
        "scenario": scenario.model_dump(mode="json"),
        "fingerprint": scenario.fingerprint(),
        "protocol": protocol_of(scenario, out["summary"]),
        "dataset": {"name": catalog.name, "source": catalog.source, "items": len(catalog.products),
                    "requests": len(catalog.requests), **catalog.info},
        "environment": {**environment_info(), "threads": threads},
        "timings": out["timings"],
        "rows": aggregate_rows(out["rows"], scenario),
        "curves": out["curves"],
        "sts": out["summary"],
        "rankers": out["rankers"],
        "attack_success": {TextRankingStage.family: TextRankingStage.success_metric} if scenario.attacks else {},
    }
    return finish(scenario, results, events, out_root=out_root,
                  artifacts={"per_user.npz": lambda path: write_per_user(out["rows"], path)})


def finish(scenario: Scenario, results: dict[str, Any], events: EventLog, *, out_root: Path | None,
           artifacts: dict[str, Callable[[Path], None]]) -> RunOutcome:
    """Evaluate the gates, write the run directory, and pick the exit code (1: a gate failed)."""
    results["gates"] = evaluate_gates(scenario.gates, results["rows"])
    failed = [g for g in results["gates"] if not g["held"]]
    events.emit("run_finished", seconds=results["timings"]["total_seconds"], gates_failed=len(failed))
    out_dir = write_run(scenario, results, events, out_root=out_root, artifacts=artifacts)
    return RunOutcome(results=results, out_dir=out_dir, exit_code=1 if failed else 0)


def aggregate_rows(rows: RowTable, sc: Scenario) -> list[dict[str, Any]]:
    attack_refs = {spec.label(): str(spec.options["vs"]) for spec in sc.attacks if spec.options.get("vs") is not None}
    paired = paired_rows(rows, attack_refs=attack_refs, seed=sc.seed, n_resamples=sc.eval.bootstrap,
                         confidence=sc.eval.confidence)
    return [{
        "dataset": row.dataset, "victim": row.victim, "attack": row.attack, "defense": row.defense,
        "metrics": row.aggregate(seed=sc.seed, n_resamples=sc.eval.bootstrap, confidence=sc.eval.confidence),
        "info": row.info,
        **paired.get(row.key, {}),
    } for row in rows]


def assemble_results(ctx: RunContext, stages: list[Stage], *, threads: int) -> dict[str, Any]:
    sc = ctx.scenario
    rows = aggregate_rows(ctx.rows, sc)
    sections: dict[str, Any] = {}
    for stage in stages:
        sections.update(stage.results())
    return {
        "scenario": sc.model_dump(mode="json"),
        "fingerprint": sc.fingerprint(),
        "protocol": protocol(
            n_items=ctx.dataset.n_items, n_users=len(ctx.test_users), ks=sc.eval.k,
            exclude_history=sc.eval.exclude_history, seeds=sc.run_seeds,
            bootstrap=sc.eval.bootstrap, confidence=sc.eval.confidence, attacker_users=len(ctx.few_shot_users),
        ),
        "dataset": ctx.dataset.summary(),
        "environment": {**environment_info(), "threads": threads},
        "timings": ctx.timings,
        "attacker": {"few_shot_users": int(len(ctx.few_shot_users)), "api": sc.api.model_dump(mode="json")},
        "rows": rows,
        "curves": ctx.curves,
        **sections,
        "attack_success": {stage.family: stage.success_metric_for(sc) for stage in stages},
    }


def write_run(scenario: Scenario, results: dict[str, Any], events: EventLog, *, out_root: Path | None,
              artifacts: dict[str, Callable[[Path], None]] | None = None) -> Path:
    """Write the run directory atomically: a temp dir renamed to ``<dir>/<name>-<hash>``."""
    import yaml

    from redteam.reports import write_reports

    root = out_root or scenario.output.dir
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{scenario.name}-{scenario.fingerprint()}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{scenario.name}-", dir=root))
    try:
        (tmp / "scenario.resolved.yaml").write_text(yaml.safe_dump(results["scenario"], sort_keys=False))
        text = json.dumps(results, indent=2, default=json_default)
        (tmp / "results.json").write_text(text)
        write_reports(json.loads(text), tmp, scenario.output.formats, source=f"{final.name}/results.json")
        events.write(tmp / "events.jsonl")
        for rel, writer in (artifacts or {}).items():
            writer(tmp / rel)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
