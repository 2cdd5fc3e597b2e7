"""A recommender scenario as a graph of units of work.

The serial runner's loop is ``for run seed: for victim: train; for stage: for attack: for
attacker seed: attack``. Every pass through its body is a *step*, numbered in that order. Units
group steps so that each can run on its own given the shared cache:

* a **victim unit** per (run seed, victim): trains the victim (into the cache) and scores its
  clean row;
* an **attack unit** per (run seed, victim, attacker seed, linked attacks): the attacks whose
  products feed one another (a poisoning attack built on a surrogate that an extraction attack
  steals) stay together, in serial order; every other attack is a unit of its own. Attack units
  need their victim unit (they load the trained victim from the cache);
* a **defense unit** per separable defense of an attack (a stage's ``separable_defenses``: the
  retraining of one poisoned training set under one defense): it needs the attack unit, whose
  record holds the attack's product (the fake profiles), and runs as part ``k`` of its step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redteam.scenario import ComponentSpec, Scenario, component_params


@dataclass(frozen=True)
class Step:
    index: int  # position in the serial loop
    run_seed: int
    victim: int  # index into scenario.victims
    attack: int = -1  # index into scenario.attacks; -1: the victim step
    attack_seed: int = 0
    core_only: bool = False  # the attack's core; its separable defenses run in units of their own
    defense: int = -1  # index into scenario.defenses: one separable defense of the step's attack
    part: int = 0  # order of the parts of one step: the core 0, its defenses 1, 2, ...

    @property
    def order(self) -> tuple[int, int]:
        return (self.index, self.part)


@dataclass(frozen=True)
class Unit:
    id: str
    title: str
    run_seed: int
    victim: int
    steps: tuple[Step, ...]
    needs: tuple[str, ...] = ()
    cpus: int = 1

    @property
    def is_victim(self) -> bool:
        return self.steps[0].attack == -1


@dataclass
class Plan:
    units: list[Unit]
    stage_order: list[tuple[Any, list[int]]] = field(default_factory=list)  # (stage class, attack indices)

    @property
    def steps(self) -> int:
        return sum(len(u.steps) for u in self.units)


def stage_groups(scenario: Scenario) -> list[tuple[Any, list[int]]]:
    """The scenario's stages, producers first, each with the indices of its attacks in scenario order."""
    from redteam.registry import resolve, resolve_stage
    from redteam.stages.base import order_stages

    by_family: dict[str, list[int]] = {}
    for i, spec in enumerate(scenario.attacks):
        by_family.setdefault(resolve("attacks", spec.name).family, []).append(i)
    classes = {family: resolve_stage(family) for family in by_family}
    return [(cls, by_family[cls.family]) for cls in order_stages(list(classes.values()))]


def producers(spec: ComponentSpec) -> set[str]:
    """Labels of the attacks whose products this attack consumes (a stolen surrogate's source)."""
    params = component_params("attacks", spec, where=f"attacks.{spec.label()}")
    source = getattr(getattr(params, "surrogate", None), "source", None)
    return {source} if source else set()


def linked_groups(attacks: list[ComponentSpec]) -> list[int]:
    """A group number per attack: attacks linked through consumed products share one."""
    parent = list(range(len(attacks)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_label = {spec.label(): i for i, spec in enumerate(attacks)}
    for i, spec in enumerate(attacks):
        for source in producers(spec):
            if source in by_label:
                parent[root(i)] = root(by_label[source])
    return [root(i) for i in range(len(attacks))]


def plan_units(scenario: Scenario, *, cpus: int = 1) -> Plan:
    """Every step of the serial loop, grouped into units (see the module docstring)."""
    order = stage_groups(scenario)
    groups = linked_groups(scenario.attacks)
    defense_index = {d.label(): i for i, d in enumerate(scenario.defenses)}
    units: list[Unit] = []
    index = 0
    for run_seed in scenario.run_seeds:
        for v, vspec in enumerate(scenario.victims):
            victim_id = f"victim-{v}-seed{run_seed}"
            units.append(Unit(victim_id, f"train {vspec.label()} (seed {run_seed})", run_seed, v,
                              (Step(index, run_seed, v),), cpus=cpus))
            index += 1
            pending: dict[tuple[int, int], list[Step]] = {}
            parts: list[tuple[tuple[int, int], Step]] = []
            for cls, attack_indices in order:
                for a in attack_indices:
                    for attack_seed in scenario.attack_seeds_for(run_seed):
                        separable = cls.separable_defenses(scenario, attack_seed)
                        pending.setdefault((attack_seed, groups[a]), []).append(
                            Step(index, run_seed, v, a, attack_seed, core_only=bool(separable)))
                        parts += [((attack_seed, groups[a]), Step(index, run_seed, v, a, attack_seed,
                                                                  defense=defense_index[d.label()], part=k + 1))
                                  for k, d in enumerate(separable)]
                        index += 1
            unit_ids = {}
            for (attack_seed, group), steps in pending.items():
                labels = " + ".join(dict.fromkeys(scenario.attacks[s.attack].label() for s in steps))
                unit_ids[(attack_seed, group)] = f"attacks-{v}-seed{run_seed}-attacker{attack_seed}-group{group}"
                units.append(Unit(unit_ids[(attack_seed, group)],
                                  f"{vspec.label()} (seed {run_seed}), attacker seed {attack_seed}: {labels}",
                                  run_seed, v, tuple(steps), needs=(victim_id,), cpus=cpus))
            for owner, step in parts:
                attack, defense = scenario.attacks[step.attack].label(), scenario.defenses[step.defense].label()
                units.append(Unit(f"defense-{v}-seed{run_seed}-attacker{step.attack_seed}-step{step.index}-{step.defense}",
                                  f"{vspec.label()} (seed {run_seed}), attacker seed {step.attack_seed}: {attack} under {defense}",
                                  run_seed, v, (step,), needs=(victim_id, unit_ids[owner]), cpus=cpus))
    return Plan(units, order)
