"""One scenario run: data -> victims -> (attacks x defenses) -> scores -> results + gates."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redteam.cache import ModelCache
from redteam.data.dataset import LeaveOneOutSplit, SequenceDataset
from redteam.errors import ConfigError
from redteam.environment import configure_threads, environment_info
from redteam.evaluation import protocol, ranking_values
from redteam.events import EventLog
from redteam.gates import evaluate_gates
from redteam.progress import Reporter
from redteam.results import RowTable, write_per_user
from redteam.scenario import ComponentSpec, Scenario
from redteam.seeding import numpy_rng


@dataclass
class RunContext:
    """What every stage of a run can see (attacks receive a narrower Knowledge object)."""

    scenario: Scenario
    dataset: SequenceDataset
    split: LeaveOneOutSplit
    test_users: np.ndarray
    cache: ModelCache
    events: EventLog
    reporter: Reporter
    few_shot_users: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rows: RowTable = field(default_factory=RowTable)
    timings: dict[str, float] = field(default_factory=dict)
    curves: list[dict[str, Any]] = field(default_factory=list)
    victim_top: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    artifacts: dict[str, Callable[[Path], None]] = field(default_factory=dict)  # run-dir path -> writer
    surrogates: dict[tuple[str, int, int, str], Any] = field(default_factory=dict)  # (victim, seed, attack seed, label) -> stolen model
    poisoning: dict[str, Any] = field(default_factory=dict)  # the poisoning stage's per-run state (targets, clean exposure)


@dataclass
class RunOutcome:
    results: dict[str, Any]
    out_dir: Path
    exit_code: int


def run_scenario(
    scenario: Scenario,
    *,
    reporter: Reporter,
    use_cache: bool | None = None,
    out_root: Path | None = None,
) -> RunOutcome:
    from redteam.data.registry import load_dataset

    threads = configure_threads(scenario.runtime.threads)
    events = EventLog()
    events.emit("run_started", scenario=scenario.name, threads=threads)
    if scenario.ranks_text:
        return run_text_scenario(scenario, reporter=reporter, events=events, threads=threads, out_root=out_root)
    started = time.perf_counter()
    with reporter.session():
        with reporter.stage(f"load data: {scenario.dataset.name}") as stage:
            dataset = load_dataset(scenario.dataset, seed=scenario.seed)
            split = LeaveOneOutSplit.of(dataset)
            stage.update(status=f"{dataset.n_users} users, {dataset.n_items} items")
        events.emit("data_loaded", **dataset.summary())
        few_shot_users = attacker_users(scenario, dataset.n_users)
        test_users = np.setdiff1d(split.eval_users, few_shot_users)
        if scenario.eval.max_users is not None and scenario.eval.max_users < len(test_users):
            pick = numpy_rng(scenario.seed, "eval-users").choice(len(test_users), scenario.eval.max_users, replace=False)
            test_users = np.sort(test_users[pick])
        cache_on = scenario.runtime.cache if use_cache is None else use_cache
        ctx = RunContext(
            scenario=scenario, dataset=dataset, split=split, test_users=test_users,
            cache=ModelCache(scenario.runtime.cache_dir, enabled=cache_on), events=events, reporter=reporter,
            few_shot_users=few_shot_users,
        )
        ctx.timings["data_seconds"] = time.perf_counter() - started
        attacks = order_attacks(scenario.attacks)
        if any(family_of(a) == "poisoning" for a in attacks):
            from redteam.poisoning_stage import prepare

            prepare(ctx)  # draw (or look up) the targets before any training: a bad id fails fast
        for seed in scenario.run_seeds:
            for spec in scenario.victims:
                victim = run_victim(ctx, spec, seed)
                for attack in attacks:
                    for attack_seed in scenario.attack_seeds_for(seed):
                        run_attack(ctx, victim, spec.label(), attack, seed, attack_seed)
    ctx.timings["total_seconds"] = time.perf_counter() - started
    results = assemble_results(ctx, threads=threads)
    results["gates"] = evaluate_gates(scenario.gates, results["rows"])
    failed = [g for g in results["gates"] if not g["held"]]
    events.emit("run_finished", seconds=ctx.timings["total_seconds"], gates_failed=len(failed))
    ctx.artifacts["per_user.npz"] = lambda path: write_per_user(ctx.rows, path)
    out_dir = write_run(scenario, results, events, out_root=out_root, artifacts=ctx.artifacts)
    return RunOutcome(results=results, out_dir=out_dir, exit_code=1 if failed else 0)


def attacker_users(scenario: Scenario, n_users: int) -> np.ndarray:
    """The real users whose training sequences attackers hold (none when no attack runs).

    Drawn once from the root seed, so every attack and seed of a scenario shares them; they are
    removed from every evaluation, clean rows included.
    """
    count = int(round(scenario.attacker.few_shot_ratio * n_users)) if scenario.attacks else 0
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(numpy_rng(scenario.seed, "few-shot-users").choice(n_users, count, replace=False))


def family_of(spec: ComponentSpec) -> str:
    from redteam.registry import resolve

    return resolve("attacks", spec.name).family


def order_attacks(attacks: list[ComponentSpec]) -> list[ComponentSpec]:
    """Scenario order, except that poisoning attacks run last: they may use a surrogate that an
    extraction attack of the same scenario steals first."""
    return sorted(attacks, key=lambda spec: family_of(spec) == "poisoning")


def run_attack(ctx: RunContext, victim: Any, victim_label: str, spec: ComponentSpec, seed: int, attack_seed: int) -> None:
    """One attack against one trained victim; ``attack_seed`` roots the attacker's randomness."""
    family = family_of(spec)
    if family == "extraction":
        from redteam.extraction_stage import run_extraction

        run_extraction(ctx, victim, victim_label, spec, seed, attack_seed)
    elif family == "poisoning":
        from redteam.poisoning_stage import run_poisoning

        run_poisoning(ctx, victim, victim_label, spec, seed, attack_seed)
    else:
        raise ConfigError(f"attacks: no runner stage for the '{family}' family yet ({spec.name})")


def run_victim(ctx: RunContext, spec: ComponentSpec, seed: int) -> Any:
    """Train (or load) one victim for one seed and score its clean accuracy."""
    from redteam.fitting import fit_victim

    label = spec.label()
    split = ctx.split
    valid = (split.valid_histories(), split.valid_targets())
    epochs = int(spec.options.get("epochs", 0)) or None
    with ctx.reporter.stage(f"train {label} (seed {seed})", total=epochs) as stage:
        def progress(epoch: int, total: int, metrics: dict[str, float]) -> None:
            stage.update(completed=epoch, total=total,
                         status=f"valid NDCG@10 {metrics.get('valid_ndcg@10', float('nan')):.4f}")
            ctx.events.emit("epoch", victim=label, seed=seed, **metrics)

        t0 = time.perf_counter()
        victim, info, cached = fit_victim(
            spec, train=split.train, valid=valid, n_items=ctx.dataset.n_items, seed=seed,
            cache=ctx.cache, progress=progress,
        )
        stage.update(status="loaded from cache" if cached else f"{info.get('epochs_run', 0)} epochs")
    ctx.events.emit("victim_ready", victim=label, seed=seed, cached=cached, seconds=time.perf_counter() - t0)
    with ctx.reporter.stage(f"evaluate {label}") as stage:
        values = ranking_values(
            victim.score, split.test_histories(ctx.test_users), split.test_targets(ctx.test_users),
            ks=ctx.scenario.eval.k, exclude_history=ctx.scenario.eval.exclude_history,
        )
    row = ctx.rows.row(ctx.dataset.name, label)
    for metric, per_user in values.items():
        row.add(metric, per_user)
    row.info.setdefault("fit", []).append({"seed": seed, "cached": cached, **{
        k: info.get(k) for k in ("epochs_run", "best_epoch", "seconds", "seconds_per_epoch", "best_valid_ndcg10")}})
    return victim


def run_text_scenario(scenario: Scenario, *, reporter: Reporter, events: EventLog, threads: int,
                      out_root: Path | None) -> RunOutcome:
    """A scenario whose victims are text rankers: catalog -> STS attacks -> paired trials."""
    from redteam.sts_stage import protocol_of, run_sts_scenario

    with reporter.session():
        out = run_sts_scenario(scenario, reporter=reporter, events=events, threads=threads)
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
    }
    results["gates"] = evaluate_gates(scenario.gates, results["rows"])
    failed = [g for g in results["gates"] if not g["held"]]
    events.emit("run_finished", seconds=out["timings"]["total_seconds"], gates_failed=len(failed))
    artifacts = {"per_user.npz": lambda path: write_per_user(out["rows"], path)}
    out_dir = write_run(scenario, results, events, out_root=out_root, artifacts=artifacts)
    return RunOutcome(results=results, out_dir=out_dir, exit_code=1 if failed else 0)


def aggregate_rows(rows: RowTable, sc: Scenario) -> list[dict[str, Any]]:
    rng = numpy_rng(sc.seed, "bootstrap")
    return [{
        "dataset": row.dataset, "victim": row.victim, "attack": row.attack, "defense": row.defense,
        "metrics": row.aggregate(rng=rng, n_resamples=sc.eval.bootstrap, confidence=sc.eval.confidence),
        "info": row.info,
    } for row in rows]


def assemble_results(ctx: RunContext, *, threads: int) -> dict[str, Any]:
    sc = ctx.scenario
    rows = aggregate_rows(ctx.rows, sc)
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
        **({"poisoning": ctx.poisoning["summary"]} if "summary" in ctx.poisoning else {}),
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
        text = json.dumps(results, indent=2, default=_json_default)
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


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
