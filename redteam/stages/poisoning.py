"""Profile poisoning: craft fake users, retrain the victim on real + fake profiles, and score
target exposure and clean accuracy before vs after, undefended and under each training-time
defense (``specs/poisoning.md``; the scenario's ``poisoning:`` section).

* Targets are drawn once per run (:mod:`redteam.stages.poisoning_targets`); the fake-user plan is
  shared by every recipe with the same settings (:mod:`redteam.stages.poisoning_plan`).
* A recipe sees a fresh metered endpoint and a :class:`~redteam.knowledge.Knowledge` (what its
  threat model grants), and, when it asks for one, a surrogate: stolen earlier in the run by an
  extraction attack (consumed from the exchange) or a white-box copy of the victim (upper bound).
* The victim is retrained from scratch (or fine-tuned) on real + fake sequences
  (:mod:`redteam.stages.poisoning_retrain`), then under each defense of kind ``training`` or
  ``detector`` (:mod:`redteam.stages.defended_fit`).
* Scoring on the run's evaluation users (:mod:`redteam.stages.exposure`): the clean victim's
  values in its own row ("before"), the poisoned victim's in the attack's row ("after"), paired
  lift and clean-accuracy change with intervals in the row's info; the fake profiles are written
  to ``poisoning/`` in the run directory.
"""

from __future__ import annotations

import copy
import time
from typing import Any, ClassVar

import numpy as np

from redteam.errors import ConfigError
from redteam.evaluation import ranking_values
from redteam.scenario import ComponentSpec, component_params, defends
from redteam.seeding import numpy_rng
from redteam.stages.base import Stage, target_success_metric
from redteam.stages.hosting import attack_recommender, metered_endpoint
from redteam.stages.context import RunContext, Target
from redteam.stages.defended_fit import add_detection, add_fit_cost, add_roc_curve, fit_defended
from redteam.stages.exchange import StolenSurrogate, SurrogateKey
from redteam.stages.exposure import Exposure, paired_changes, target_exposure_values
from redteam.stages.poisoning_plan import build_plan, check_profiles, resolved_settings, write_fakes
from redteam.stages.poisoning_retrain import retrain
from redteam.stages.poisoning_targets import SUMMARY, Targets, select_targets
from redteam.stages.victim import FIT_INFO


class PoisoningStage(Stage):
    family: ClassVar[str] = "poisoning"
    consumes: ClassVar[tuple[type, ...]] = (StolenSurrogate,)
    defense_kinds: ClassVar[frozenset[str]] = frozenset({"training", "detector"})
    needs_model: ClassVar[bool] = True
    success_metric: ClassVar[str] = "target_hr@50"
    attack_verbs: ClassVar[tuple[str, ...]] = ("craft",)

    @classmethod
    def success_metric_for(cls, scenario: Any) -> str:
        return target_success_metric(scenario.poisoning.k)

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self.targets: Targets | None = None
        self._clean: dict[tuple[str, int], dict[str, Any]] = {}
        self._clean_defended: set[tuple[str, str, int]] = set()
        self._undefended: dict[tuple[str, int, str, int], dict[str, Any]] = {}  # the poisoned victim's scores

    def prepare(self) -> None:
        """Draw the run's targets before any victim is trained: a bad id fails fast."""
        ctx = self.ctx
        self.targets = select_targets(ctx.dataset, ctx.split, ctx.scenario.poisoning, ctx.scenario.seed)
        ctx.events.emit("poisoning_targets", targets=self.targets.describe())

    def results(self) -> dict[str, Any]:
        t = self.targets
        return {"poisoning": {"targets": t.describe(), "selection": t.selection, "median_popularity": t.median_popularity,
                              **SUMMARY}} if t is not None else {}

    # ------------------------------------------------------------------------------------------

    def attack(self, target: Target, spec: ComponentSpec, attack_seed: int) -> None:
        fakes = self.attack_core(target, spec, attack_seed)
        for defense_spec in self.separable_defenses(self.ctx.scenario, attack_seed):
            self.defend(target, spec, attack_seed, defense_spec, fakes)

    @classmethod
    def separable_defenses(cls, scenario: Any, attack_seed: int) -> list[ComponentSpec]:
        """The defenses each poisoned training set is retrained under (``none`` is the core's own row)."""
        return [d for d in cls.scenario_defenses(scenario) if d.name != "none" and defends(d, attack_seed)]

    def defend(self, target: Target, spec: ComponentSpec, attack_seed: int, defense_spec: ComponentSpec,
               product: list[np.ndarray]) -> None:
        """One defense against one attack's fakes (``product``). Run apart from its core (another process), it
        reloads the poisoned victim the core trained from the cache and scores it again."""
        label, histories, fakes = spec.label(), self.ctx.test_histories(), product
        key = (target.label, target.seed, label, attack_seed)
        if key not in self._undefended:
            from redteam.registry import resolve

            attack = resolve("attacks", spec.name)(component_params("attacks", spec, where=f"attacks.{label}"))
            poisoned, _, _ = retrain(self.ctx, target, fakes, resolved_settings(self.ctx.scenario.poisoning, attack.params), label)
            after, accuracy = self.score_model(poisoned, histories)
            self._undefended[key] = {"exposure": after, "accuracy": accuracy}
        self.defended(target, defense_spec, label, fakes, attack_seed, histories, clean=self.clean_state(target, histories),
                      undefended=self._undefended[key])

    def attack_core(self, target: Target, spec: ComponentSpec, attack_seed: int) -> list[np.ndarray]:
        """Craft the fakes, retrain the victim on real + fake data undefended and score it (the
        attack's own row); returns the fakes, which every defense then gets."""
        from redteam.registry import resolve

        ctx, sc = self.ctx, self.ctx.scenario
        label, seed, victim_label = spec.label(), target.seed, target.label
        attack = resolve("attacks", spec.name)(component_params("attacks", spec, where=f"attacks.{label}"))
        targets = self.targets
        assert targets is not None, "PoisoningStage.prepare() runs before any attack"
        settings = resolved_settings(sc.poisoning, attack.params)
        histories = ctx.test_histories()
        clean = self.clean_state(target, histories)

        plan = build_plan(ctx.dataset, targets, settings, attack_seed)
        surrogate, source = self.surrogate_for(target, attack, attack_seed)
        with ctx.reporter.stage(f"{label}: craft {plan.n_fakes} fake profiles") as stage, \
                attack_recommender(ctx, target, ComponentSpec(name="none"), None, attack_label=label,
                                   attack_seed=attack_seed) as served:
            api = metered_endpoint(self.ctx, served)
            knowledge = ctx.knowledge(target, label, attack_seed, api, popularity=True, surrogate=surrogate,
                                      surrogate_source=source)
            t0 = time.perf_counter()
            fakes = check_profiles(attack.craft(knowledge, plan), plan, ctx.dataset.n_items, f"attacks.{label}")
            seconds_craft = time.perf_counter() - t0
            stage.update(status=f"{sum(len(f) for f in fakes)} fake interactions, {seconds_craft:.1f} s")
        ctx.events.emit("poisoning_crafted", victim=victim_label, attack=label, seed=seed, attack_seed=attack_seed,
                        fakes=plan.n_fakes, interactions=int(sum(len(f) for f in fakes)), seconds=seconds_craft)

        poisoned, fit_info, cached = retrain(ctx, target, fakes, settings, label)
        after, accuracy = self.score_model(poisoned, histories)

        row = ctx.rows.row(ctx.dataset.name, victim_label, attack=label)
        add_scores(row, after, accuracy, repetition=(seed, attack_seed))
        row.add("queries", float(api.queries_used))
        row.add("seconds", seconds_craft)
        row.add("train_seconds", float(fit_info.get("seconds") or 0.0))
        row.info.setdefault("fit", []).append({"seed": seed, "attack_seed": attack_seed, "cached": cached, "mode": settings["retrain"],
                                               **{k: fit_info.get(k) for k in FIT_INFO}})
        lift, change = self.paired(after, accuracy, clean["exposure"], clean["accuracy"],
                                   rng=numpy_rng(seed, "poisoning-lift", label, attack_seed))
        headline = f"target_hr@{sc.poisoning.k[-1]}"
        row.info.setdefault("poisoning", []).append({
            "seed": seed, "attack_seed": attack_seed, "identifier": attack.identifier(), **settings,
            "surrogate": source, "knowledge": attack.diagnostics.get("knowledge"),
            "recipe": {k: v for k, v in attack.diagnostics.items() if k != "knowledge"},
            "fake_users": plan.n_fakes, "real_users": ctx.dataset.n_users, "fake_interactions": int(sum(len(f) for f in fakes)),
            "mean_profile_length": round(float(np.mean([len(f) for f in fakes])), 2),
            "targets": [{**t, "eligible_users": after.eligible[t["item"]],
                         **{f"{m}_before": clean["exposure"].per_target(m)[t["item"]] for m in after.values},
                         **{f"{m}_after": after.per_target(m)[t["item"]] for m in after.values}} for t in targets.describe()],
            "lift": lift, "clean_change": change,
            "seconds_craft": round(seconds_craft, 2), "seconds_retrain": round(float(fit_info.get("seconds") or 0.0), 2),
            "retrain_cached": cached, "queries": api.queries_used,
        })
        ctx.artifacts[f"poisoning/{victim_label}-{label}-seed{seed}-attack{attack_seed}.tsv"] = (
            lambda path, fakes=fakes, plan=plan: write_fakes(path, fakes, plan, ctx.dataset.item_ids))
        ctx.events.emit("poisoning_scored", victim=victim_label, attack=label, seed=seed, attack_seed=attack_seed,
                        before=float(clean["exposure"].values[headline].mean()), after=float(after.values[headline].mean()),
                        lift=lift[headline]["value"], retrain_cached=cached)
        self._undefended[(victim_label, seed, label, attack_seed)] = {"exposure": after, "accuracy": accuracy}
        return fakes

    def surrogate_for(self, target: Target, attack: Any, attack_seed: int) -> tuple[Any, str | None]:
        choice = getattr(attack.params, "surrogate", None)
        if choice is None:
            return None, None
        if choice == "whitebox":
            return copy.deepcopy(target.model), f"white-box copy of the victim {target.label} (upper bound)"
        key = SurrogateKey(target.label, target.seed, attack_seed, choice.source, choice.through)
        stolen = self.ctx.exchange.get(StolenSurrogate, key)
        if stolen is None:
            raise ConfigError(f"attacks.{attack.alias}.surrogate.from: extraction attack '{choice.source}' has not run "
                              f"against {target.label} (seed {target.seed}, attacker seed {attack_seed}) "
                              f"through defense '{choice.through}'")
        endpoint = "the top-k API" if choice.through == "none" else f"the top-k API guarded by {choice.through}"
        return stolen.model, f"black-box: surrogate stolen by {choice.source} through {endpoint}"

    # ------------------------------------------------------------------------------------------ scoring

    def score_model(self, model: Any, histories: list[np.ndarray]) -> tuple[Exposure, dict[str, np.ndarray]]:
        """Target exposure and clean accuracy of one (clean, poisoned or defended) victim."""
        sc = self.ctx.scenario
        assert self.targets is not None
        exposure = target_exposure_values(model.score, histories, self.ctx.test_users, self.targets.items, sc.poisoning.k,
                                          exclude_history=sc.eval.exclude_history)
        accuracy = ranking_values(model.score, histories, self.ctx.test_targets(), ks=sc.eval.k,
                                  exclude_history=sc.eval.exclude_history)
        return exposure, accuracy

    def paired(self, exposure: Exposure, accuracy: dict[str, np.ndarray], ref_exposure: Exposure,
               ref_accuracy: dict[str, np.ndarray], *, rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
        ev = self.ctx.scenario.eval
        return paired_changes(exposure, accuracy, ref_exposure, ref_accuracy, rng=rng, n_boot=ev.bootstrap, conf=ev.confidence)

    def clean_state(self, target: Target, histories: list[np.ndarray]) -> dict[str, Any]:
        """The clean victim's target exposure ("before"), added to its own row once per run seed, and
        its per-user clean accuracy (for the paired change)."""
        key = (target.label, target.seed)
        if key not in self._clean:
            ctx, targets = self.ctx, self.targets
            assert targets is not None
            exposure = target_exposure_values(target.model.score, histories, ctx.test_users, targets.items,
                                              ctx.scenario.poisoning.k, exclude_history=ctx.scenario.eval.exclude_history)
            row = ctx.rows.row(ctx.dataset.name, target.label)
            # The victim step has just added this seed's clean accuracy: its last array per metric.
            accuracy = {m: arrays[-1] for m, arrays in row.per_seed.items() if m not in exposure.values}
            exposure.add_to(row, repetition=(target.seed,))
            fits = row.info.get("fit") or [{}]
            row.add("train_seconds", float(fits[-1].get("seconds") or 0.0))
            row.info["poisoning_targets"] = [{**t, "eligible_users": exposure.eligible[t["item"]]} for t in targets.describe()]
            self._clean[key] = {"exposure": exposure, "accuracy": accuracy}
        return self._clean[key]

    # ------------------------------------------------------------------------------------------ defenses

    def defended(self, target: Target, defense_spec: ComponentSpec, label: str, fakes: list[np.ndarray], attack_seed: int,
                 histories: list[np.ndarray], *, clean: dict[str, Any], undefended: dict[str, Any]) -> None:
        """The attack's poisoned training set under one defense: a row (attack, defense) with target
        exposure, clean accuracy, detector metrics on the injected users and the training cost; its
        info holds the paired effect of the defense against the undefended poisoned victim."""
        ctx, sc, seed = self.ctx, self.ctx.scenario, target.seed
        dlabel = defense_spec.label()
        if sc.poisoning.defend_clean:
            self.clean_defended(target, defense_spec, histories)
        n_real = len(ctx.split.train)
        fit = fit_defended(ctx, target.spec, defense_spec, [*ctx.split.train, *fakes], seed, what=f"{label} x {dlabel}")
        exposure, accuracy = self.score_model(fit.victim, histories)
        row = ctx.rows.row(ctx.dataset.name, target.label, attack=label, defense=dlabel)
        add_scores(row, exposure, accuracy, repetition=(seed, attack_seed))
        add_fit_cost(row, fit)
        is_fake = np.arange(n_real + len(fakes)) >= n_real
        detection = add_detection(row, fit.detection, is_fake)
        add_roc_curve(ctx, fit.detection, is_fake, detection, victim=target.label, attack=label, defense=dlabel, seed=seed)
        effect, vs_clean = self.paired(exposure, accuracy, undefended["exposure"], clean["accuracy"],
                                       rng=numpy_rng(seed, "defense-effect", label, dlabel, attack_seed))
        effect.update({f"{m}_vs_clean": v for m, v in vs_clean.items()})
        row.info.setdefault("defense", []).append({
            "seed": seed, "attack_seed": attack_seed, "identifier": fit.identifier, "cached": fit.cached,
            "vs_undefended": effect, "detection": detection,
            "fit": {k: fit.info.get(k) for k in ("epochs_run", "best_epoch", "seconds", "seconds_total", "best_valid_ndcg10", "defense")},
        })
        headline = f"target_hr@{sc.poisoning.k[-1]}"
        ctx.events.emit("defense_scored", victim=target.label, attack=label, defense=dlabel, seed=seed, attack_seed=attack_seed,
                        undefended=float(undefended["exposure"].values[headline].mean()),
                        defended=float(exposure.values[headline].mean()), auc=detection.get("detector_auc"))

    def clean_defended(self, target: Target, defense_spec: ComponentSpec, histories: list[np.ndarray]) -> None:
        """The defense on the clean training set, once per (victim, defense, seed): its row (attack
        none) shows what the defense costs in clean accuracy and whom it flags among real users."""
        ctx, dlabel = self.ctx, defense_spec.label()
        key = (target.label, dlabel, target.seed)
        if key in self._clean_defended:
            return
        self._clean_defended.add(key)
        fit = fit_defended(ctx, target.spec, defense_spec, list(ctx.split.train), target.seed, what="clean")
        exposure, accuracy = self.score_model(fit.victim, histories)
        row = ctx.rows.row(ctx.dataset.name, target.label, defense=dlabel)
        add_scores(row, exposure, accuracy, repetition=(target.seed,))
        add_fit_cost(row, fit)
        add_detection(row, fit.detection, np.zeros(len(ctx.split.train), dtype=bool))
        row.info.setdefault("fit", []).append({"seed": target.seed, "cached": fit.cached, "defense": fit.identifier,
                                               **{k: fit.info.get(k) for k in ("epochs_run", "best_epoch", "seconds", "seconds_total")}})


def add_scores(row: Any, exposure: Exposure, accuracy: dict[str, np.ndarray], *, repetition: Any = None) -> None:
    exposure.add_to(row, repetition=repetition)
    for metric, values in accuracy.items():
        row.add(metric, values, repetition=repetition)
