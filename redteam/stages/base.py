"""The stage contract: one stage per attack family, declaring what it needs and produces.

A stage runs every attack of its family against one trained victim at a time. It declares the
product types it ``produces`` and ``consumes`` (the runner orders stages from those, see
:func:`order_stages`), the defense kinds it can apply (a scenario pairing a defense with no stage
that acts on it is rejected at validation), and the metric that measures its attacks' success.
A new attack family is one module subclassing :class:`Stage` plus one line in
``redteam.registry.STAGES``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from redteam.scenario import ComponentSpec
from redteam.stages.context import RunContext, Target


def target_success_metric(ks: list[int]) -> str:
    """The ``target_hr@K`` a stage scoring the cut-offs ``ks`` reports as its success: the reports'
    own rule (:func:`redteam.reports.roles.pick_success_metric`), so the two cannot disagree."""
    from redteam.reports.roles import pick_success_metric

    return pick_success_metric("poisoning", [f"target_hr@{k}" for k in ks])


class Stage(ABC):
    """``family``: the ``family`` of the attacks it runs. ``defense_kinds``: the defense kinds it
    applies (``none`` is always accepted). ``success_metric``: the y-axis of its attack-success vs
    clean-accuracy tables. ``victim_family``: what it attacks (``recommender`` or ``ranker``).
    ``attack_verbs``: the methods every attack of its family implements (checked by the contract
    tests)."""

    family: ClassVar[str]
    produces: ClassVar[tuple[type, ...]] = ()
    consumes: ClassVar[tuple[type, ...]] = ()
    defense_kinds: ClassVar[frozenset[str]] = frozenset()
    success_metric: ClassVar[str]
    victim_family: ClassVar[str] = "recommender"
    attack_verbs: ClassVar[tuple[str, ...]] = ()  # what every attack of the family implements
    needs_model: ClassVar[bool] = False  # retrains or reads the victim's weights: no remote (HTTP) victims

    @classmethod
    def success_metric_for(cls, scenario: Any) -> str:
        """The success metric under ``scenario``: ``success_metric``, unless the stage scores its
        attacks at a cut-off the scenario sets."""
        return cls.success_metric

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def prepare(self) -> None:
        """Once per run, before any victim is trained (draw shared settings; fail fast on bad ones)."""

    @abstractmethod
    def attack(self, target: Target, spec: ComponentSpec, attack_seed: int) -> None:
        """Run one attack (``spec``) with one attacker seed against ``target`` and add its rows."""

    def results(self) -> dict[str, Any]:
        """Sections this stage adds to results.json (beside the rows)."""
        return {}

    def defenses(self) -> list[ComponentSpec]:
        """The scenario's defenses this stage applies, in scenario order (``none`` first when given)."""
        return self.scenario_defenses(self.ctx.scenario)

    @classmethod
    def scenario_defenses(cls, scenario: Any) -> list[ComponentSpec]:
        from redteam.registry import resolve

        return [d for d in scenario.defenses
                if d.name == "none" or getattr(resolve("defenses", d.name), "kind", None) in cls.defense_kinds]

    # An attack of a stage may be a core plus one part per defense that an executor can run apart
    # (in another process, after the core): ``separable_defenses`` lists those defenses for an
    # attacker seed, ``attack_core`` runs the core and returns what the parts need (a list of
    # integer arrays), ``defend`` runs one part. ``attack`` is then the core and every part in turn.
    @classmethod
    def separable_defenses(cls, scenario: Any, attack_seed: int) -> list[ComponentSpec]:
        return []

    def attack_core(self, target: Target, spec: ComponentSpec, attack_seed: int) -> list[Any]:
        raise NotImplementedError(f"{self.family}: its attacks are not split by defense")

    def defend(self, target: Target, spec: ComponentSpec, attack_seed: int, defense_spec: ComponentSpec,
               product: list[Any]) -> None:
        raise NotImplementedError(f"{self.family}: its attacks are not split by defense")


def order_stages(stages: list[type[Stage]]) -> list[type[Stage]]:
    """Producers before consumers (stable otherwise); a cycle is an error in the declarations."""
    ordered: list[type[Stage]] = []
    pending = list(stages)
    while pending:
        ready = [s for s in pending
                 if not any(p in s.consumes for other in pending if other is not s for p in other.produces)]
        if not ready:
            names = ", ".join(s.family for s in pending)
            raise RuntimeError(f"stages {names}: their produces/consumes declarations form a cycle")
        ordered.append(ready[0])
        pending.remove(ready[0])
    return ordered
