"""Setting up a recommender run and running one attack: shared by the serial runner
(:mod:`redteam.runner`) and by the workers of the Ray executor (:mod:`redteam.executors.unit_run`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from redteam.cache import ModelCache
from redteam.data.dataset import LeaveOneOutSplit
from redteam.errors import ComponentError, InternalError, RedteamError
from redteam.events import EventLog
from redteam.progress import Reporter
from redteam.scenario import ComponentSpec, Scenario
from redteam.seeding import numpy_rng
from redteam.stages.base import Stage
from redteam.stages.context import RunContext, Target


def load_context(scenario: Scenario, *, reporter: Reporter, events: EventLog, use_cache: bool | None) -> RunContext:
    """The dataset, its split, the attacker's few-shot users and the evaluation users."""
    from redteam.data.registry import load_dataset

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
    return RunContext(scenario=scenario, dataset=dataset, split=split, test_users=test_users,
                      cache=ModelCache(scenario.runtime.cache_dir, enabled=cache_on), events=events, reporter=reporter,
                      few_shot_users=few_shot_users)


def attacker_users(scenario: Scenario, n_users: int) -> np.ndarray:
    """The real users whose training sequences attackers hold (none when no attack runs).

    Drawn once from the root seed, so every attack and seed of a scenario shares them; they are
    removed from every evaluation, clean rows included.
    """
    count = int(round(scenario.attacker.few_shot_ratio * n_users)) if scenario.attacks else 0
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(numpy_rng(scenario.seed, "few-shot-users").choice(n_users, count, replace=False))


def build_stages(ctx: RunContext) -> list[tuple[Stage, list[ComponentSpec]]]:
    """One stage per attack family of the scenario, producers before consumers, each with its
    attacks in scenario order."""
    from redteam.executors.units import stage_groups

    return [(cls(ctx), [ctx.scenario.attacks[i] for i in indices]) for cls, indices in stage_groups(ctx.scenario)]


def run_attack(stage: Stage, target: Target, spec: ComponentSpec, attack_seed: int,
               part: Callable[[], Any] | None = None) -> Any:
    """One attack with one attacker seed (or ``part`` of it, see ``Stage.attack_core``); a
    component's failure becomes a ComponentError naming it."""
    try:
        return part() if part is not None else stage.attack(target, spec, attack_seed)
    except (RedteamError, InternalError):
        raise
    except Exception as exc:
        raise ComponentError(f"attacks.{spec.label()} against {target.label} (seed {target.seed}, attacker seed "
                             f"{attack_seed}): {type(exc).__name__}: {exc}") from exc
