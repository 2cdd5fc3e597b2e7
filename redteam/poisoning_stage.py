"""Run one profile-poisoning attack: craft fake users, retrain the victim on real + fake
profiles, and score target exposure and clean accuracy before vs after.

Protocol (``specs/poisoning.md``; the scenario's ``poisoning:`` section):

* Targets are drawn once per run from the root seed (or named by the dataset's own item ids)
  and shared by every poisoning attack, so their rows are comparable; popularity is counted on
  the training data the victim sees.
* One plan per attack seed: ``round(fake_share * real users)`` fake users (at least one per
  target), split evenly across the targets, profile lengths drawn from the real users' lengths
  (or fixed), target slots placed the same way for every recipe with the same settings. A recipe
  only fills the filler slots, through :class:`~redteam.knowledge.Knowledge` (what its threat
  model grants) and a fresh black-box API.
* The victim is retrained FROM SCRATCH on the real training sequences + the fake profiles with
  the clean victim's settings and seed (cached by the poisoned data's checksum like any victim);
  ``retrain: finetune`` continues from the clean weights instead (a weaker, labelled setting).
* Scoring, on the run's evaluation users (real test users; the attacker's few-shot users and all
  fake users are never evaluated): ``target_hr@K`` / ``target_ndcg@K`` per target over the users
  whose test history lacks the target, macro-averaged over targets, with a bootstrap over users
  (each resample draws users and recomputes every target's mean); the clean victim's values go
  into its own row ("before"), the poisoned victim's into the attack's row ("after"); clean
  ``hr@K`` / ``ndcg@K`` of the poisoned victim next to the clean row's. The row's info holds the
  paired lift and clean-accuracy change with intervals, per-target values, the fake budget and
  the retraining cost; the fake profiles are written to ``poisoning/`` in the run directory.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from redteam.errors import ConfigError
from redteam.evaluation import ranking_values
from redteam.knowledge import Knowledge
from redteam.metrics import bootstrap_ci_grouped, paired_bootstrap_diff, target_exposure
from redteam.scenario import ComponentSpec, PoisoningConfig, component_params, defends
from redteam.seeding import derive_seed, numpy_rng

if TYPE_CHECKING:
    from attacks.poisoning.base import FakePlan
    from redteam.data.dataset import LeaveOneOutSplit, SequenceDataset
    from redteam.runner import RunContext

SETTINGS = ("fake_share", "profile_length", "placement", "target_share", "retrain")
CLEAN_METRICS = ("hr@10", "ndcg@10")


@dataclass(frozen=True)
class Targets:
    """The run's target items (ids 1..N), their raw ids and training popularity."""

    items: tuple[int, ...]
    raw: tuple[str, ...]
    popularity: tuple[int, ...]
    selection: str
    median_popularity: float

    def describe(self) -> list[dict[str, Any]]:
        return [{"item": i, "raw_id": r, "popularity": p} for i, r, p in zip(self.items, self.raw, self.popularity)]


def select_targets(dataset: "SequenceDataset", split: "LeaveOneOutSplit", cfg: PoisoningConfig, seed: int) -> Targets:
    """Explicit raw ids, or drawn from the root seed: ``unpopular`` = uniformly among items seen in
    training fewer times than the median item (items never seen in training are left out: an
    untrained embedding is another setting); ``buckets`` = one item from each of ``targets``
    equal-size buckets of the seen items sorted by popularity."""
    popularity = dataset.item_popularity(split.train)
    raw_ids = dataset.item_ids or [""] + [str(i) for i in range(1, dataset.n_items + 1)]
    median = float(np.median(popularity[1:]))
    if cfg.target_ids is not None:
        index = {str(r): i for i, r in enumerate(raw_ids) if i > 0}
        items = []
        for given in cfg.target_ids:
            if str(given) not in index:
                example = ", ".join(repr(r) for r in raw_ids[1:4])
                raise ConfigError(f"poisoning.target_ids: '{given}' is not an item id of {dataset.name} (ids look like {example})")
            items.append(index[str(given)])
        if len(set(items)) != len(items):
            raise ConfigError("poisoning.target_ids: an item is named twice")
        selection = "explicit"
    else:
        rng = numpy_rng(seed, "poisoning-targets")
        seen = np.flatnonzero(popularity >= 1)
        seen = seen[seen > 0]
        if cfg.target_selection == "unpopular":
            pool = seen[popularity[seen] < median]
            if len(pool) < cfg.targets:  # a heavy tail of ties at the median
                pool = seen[popularity[seen] <= median]
            if len(pool) < cfg.targets:
                raise ConfigError(f"poisoning.targets: only {len(pool)} items are at or below the median popularity")
            items = sorted(rng.choice(pool, size=cfg.targets, replace=False).tolist())
        else:
            if len(seen) < cfg.targets:
                raise ConfigError(f"poisoning.targets: {cfg.targets} buckets but only {len(seen)} items seen in training")
            order = seen[np.lexsort((rng.permutation(len(seen)), popularity[seen]))]
            items = [int(rng.choice(bucket)) for bucket in np.array_split(order, cfg.targets)]
        selection = cfg.target_selection
    items = [int(i) for i in items]
    return Targets(tuple(items), tuple(str(raw_ids[i]) for i in items), tuple(int(popularity[i]) for i in items),
                   selection, median)


def prepare(ctx: "RunContext") -> None:
    """Draw the run's targets (once, before any victim is trained: a bad id fails fast)."""
    if "targets" not in ctx.poisoning:
        targets = select_targets(ctx.dataset, ctx.split, ctx.scenario.poisoning, ctx.scenario.seed)
        ctx.poisoning["targets"] = targets
        ctx.poisoning["summary"] = {  # results.json["poisoning"]: what every poisoning row shares
            "targets": targets.describe(), "selection": targets.selection, "median_popularity": targets.median_popularity,
            "popularity": "interactions in the training data the clean victim sees",
            "eligible": "real evaluation users whose test history lacks the target",
            "average": "per target, then across targets",
            "ci": "percentile bootstrap over users (targets fixed); a resampled user brings all its targets",
            "fake_users": "round(fake_share * real users), at least one per target, split evenly across the targets",
        }
        ctx.events.emit("poisoning_targets", targets=targets.describe())


# ------------------------------------------------------------------------------------------------
# Target exposure


@dataclass
class Exposure:
    """Per-(target, user) values of each target metric, in target order, with their layout."""

    values: dict[str, np.ndarray]
    groups: np.ndarray  # target id of each unit
    clusters: np.ndarray  # user index of each unit
    eligible: dict[int, int]  # target -> users whose history lacks it

    def per_target(self, metric: str) -> dict[int, float]:
        v = self.values[metric]
        return {t: float(v[self.groups == t].mean()) if n else float("nan") for t, n in self.eligible.items()}

    def add_to(self, row: Any) -> None:
        for metric, values in self.values.items():
            row.add(metric, values, groups=self.groups, clusters=self.clusters)


def target_exposure_values(score_fn: Any, histories: list[np.ndarray], users: np.ndarray, targets: tuple[int, ...],
                           ks: list[int], *, exclude_history: bool, batch: int = 1024) -> Exposure:
    """:func:`redteam.metrics.target_exposure` over users in chunks (one score chunk alive at a time)."""
    import torch

    parts: dict[str, dict[int, list[np.ndarray]]] = {f"{m}@{k}": {t: [] for t in targets}
                                                      for k in ks for m in ("target_hr", "target_ndcg")}
    with torch.no_grad():
        for start in range(0, len(histories), batch):
            chunk = histories[start : start + batch]
            scores = score_fn(chunk)
            for k in ks:
                for t, (hr, nd) in target_exposure(scores, chunk, list(targets), k=k, exclude_history=exclude_history).items():
                    parts[f"target_hr@{k}"][t].append(hr)
                    parts[f"target_ndcg@{k}"][t].append(nd)
    keep = {t: np.array([not np.any(np.asarray(h) == t) for h in histories], dtype=bool) for t in targets}
    groups = np.concatenate([np.full(int(keep[t].sum()), t, dtype=np.int64) for t in targets])
    clusters = np.concatenate([np.asarray(users)[keep[t]] for t in targets])
    values = {m: np.concatenate([np.concatenate(per[t]) if per[t] else np.zeros(0) for t in targets]) for m, per in parts.items()}
    return Exposure(values, groups, clusters, {t: int(keep[t].sum()) for t in targets})


# ------------------------------------------------------------------------------------------------
# The stage


def resolved_settings(cfg: PoisoningConfig, params: Any) -> dict[str, Any]:
    return {name: getattr(params, name) if getattr(params, name, None) is not None else getattr(cfg, name) for name in SETTINGS}


def build_plan(ctx: "RunContext", targets: Targets, settings: dict[str, Any], attack_seed: int) -> "FakePlan":
    """The same plan for every recipe with the same settings and attacker seed."""
    from attacks.poisoning.base import make_plan

    n_real = ctx.dataset.n_users
    n_fakes = max(len(targets.items), int(round(settings["fake_share"] * n_real)))
    if settings["profile_length"] == "real":
        real = np.array([len(s) for s in ctx.dataset.sequences], dtype=np.int64)
        lengths = np.maximum(2, real[numpy_rng(attack_seed, "poisoning-plan", "lengths", n_fakes).integers(0, len(real), size=n_fakes)])
    else:
        lengths = np.full(n_fakes, int(settings["profile_length"]), dtype=np.int64)
    # Lengths depend on the budget only; slots on the placement too: a placement ablation keeps the lengths.
    slots = numpy_rng(attack_seed, "poisoning-plan", "slots", n_fakes, settings["profile_length"], settings["placement"], settings["target_share"])
    return make_plan(list(targets.items), n_fakes=n_fakes, lengths=lengths, placement=settings["placement"],
                     target_share=settings["target_share"], rng=slots)


def check_profiles(profiles: list[np.ndarray], plan: "FakePlan", n_items: int, where: str) -> list[np.ndarray]:
    """One profile per template, same length, holding its target, ids in 1..N."""
    if len(profiles) != plan.n_fakes:
        raise RuntimeError(f"{where}: crafted {len(profiles)} profiles, the plan has {plan.n_fakes}")
    out = []
    for i, (profile, template) in enumerate(zip(profiles, plan.templates)):
        arr = np.asarray(profile, dtype=np.int64).reshape(-1)
        if len(arr) != len(template) or arr.min() < 1 or arr.max() > n_items or not np.any(arr == plan.target_of[i]):
            raise RuntimeError(f"{where}: fake profile {i} breaks the plan (length {len(arr)} vs {len(template)}, "
                               f"ids in 1..{n_items}, must hold target {plan.target_of[i]})")
        out.append(arr)
    return out


def surrogate_for(ctx: "RunContext", victim: Any, victim_label: str, attack: Any, seed: int, attack_seed: int) -> tuple[Any, str | None]:
    choice = getattr(attack.params, "surrogate", None)
    if choice is None:
        return None, None
    if choice == "whitebox":
        return copy.deepcopy(victim), f"white-box copy of the victim {victim_label} (upper bound)"
    key = (victim_label, seed, attack_seed, choice.source)
    if key not in ctx.surrogates:
        raise ConfigError(f"attacks.{attack.alias}.surrogate.from: extraction attack '{choice.source}' has not run "
                          f"against {victim_label} (seed {seed}, attacker seed {attack_seed})")
    return ctx.surrogates[key], f"black-box: surrogate stolen by {choice.source} through the top-k API"


def run_poisoning(ctx: "RunContext", victim: Any, victim_label: str, spec: ComponentSpec, seed: int, attack_seed: int) -> None:
    """``seed``: the run seed (which clean victim); ``attack_seed``: the attacker's own root seed."""
    from redteam.extraction_stage import build_api
    from redteam.registry import resolve

    sc = ctx.scenario
    cfg = sc.poisoning
    label = spec.label()
    cls = resolve("attacks", spec.name)
    attack = cls(component_params("attacks", spec, where=f"attacks.{label}"))
    prepare(ctx)
    targets: Targets = ctx.poisoning["targets"]
    settings = resolved_settings(cfg, attack.params)
    histories = ctx.split.test_histories(ctx.test_users)
    clean = clean_state(ctx, victim, victim_label, seed, histories)

    plan = build_plan(ctx, targets, settings, attack_seed)
    surrogate, source = surrogate_for(ctx, victim, victim_label, attack, seed, attack_seed)
    api = build_api(ctx, victim)
    popularity = ctx.dataset.item_popularity(ctx.split.train)
    knowledge = Knowledge(
        api=api, n_items=ctx.dataset.n_items, seed=derive_seed(attack_seed, "attack", label),
        few_shot=tuple(ctx.split.train[u] for u in ctx.few_shot_users),
        victim_architecture=victim.alias if sc.attacker.knows_architecture else None,
        item_text=tuple(ctx.dataset.item_text) if sc.attacker.item_text and ctx.dataset.item_text else None,
        item_popularity=popularity if sc.attacker.item_popularity else None,
        surrogate=surrogate, surrogate_source=source,
    )
    with ctx.reporter.stage(f"{label}: craft {plan.n_fakes} fake profiles") as stage:
        t0 = time.perf_counter()
        fakes = check_profiles(attack.craft(knowledge, plan), plan, ctx.dataset.n_items, f"attacks.{label}")
        seconds_craft = time.perf_counter() - t0
        stage.update(status=f"{sum(len(f) for f in fakes)} fake interactions, {seconds_craft:.1f} s")
    ctx.events.emit("poisoning_crafted", victim=victim_label, attack=label, seed=seed, attack_seed=attack_seed,
                    fakes=plan.n_fakes, interactions=int(sum(len(f) for f in fakes)), seconds=seconds_craft)

    poisoned, fit_info, cached = retrain(ctx, victim, spec_for(ctx, victim_label), fakes, seed, settings, label)
    after, accuracy = score_victim(ctx, poisoned, histories)

    row = ctx.rows.row(ctx.dataset.name, victim_label, attack=label)
    add_scores(row, after, accuracy)
    row.add("queries", float(api.queries_used))
    row.add("seconds", seconds_craft)
    row.add("train_seconds", float(fit_info.get("seconds") or 0.0))
    row.info.setdefault("fit", []).append({"seed": seed, "attack_seed": attack_seed, "cached": cached, "mode": settings["retrain"],
                                           **{k: fit_info.get(k) for k in ("epochs_run", "best_epoch", "seconds", "seconds_per_epoch", "best_valid_ndcg10")}})
    lift, change = paired_changes(ctx, after, accuracy, clean["exposure"], clean["accuracy"],
                                  rng=numpy_rng(seed, "poisoning-lift", label, attack_seed))
    headline = f"target_hr@{cfg.k[-1]}"
    row.info.setdefault("poisoning", []).append({
        "seed": seed, "attack_seed": attack_seed, "identifier": attack.identifier(), **settings,
        "surrogate": source, "knowledge": attack.diagnostics.get("knowledge"), "recipe": {k: v for k, v in attack.diagnostics.items() if k != "knowledge"},
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
    undefended = {"exposure": after, "accuracy": accuracy}
    for defense_spec in (d for d in sc.defenses if d.name != "none" and defends(d, attack_seed)):
        defended_poisoning(ctx, victim_label, defense_spec, label, fakes, seed, attack_seed, histories,
                           clean=clean, undefended=undefended)


def score_victim(ctx: "RunContext", model: Any, histories: list[np.ndarray]) -> tuple[Exposure, dict[str, np.ndarray]]:
    """Target exposure and clean accuracy of one (clean, poisoned or defended) victim."""
    sc = ctx.scenario
    targets: Targets = ctx.poisoning["targets"]
    exposure = target_exposure_values(model.score, histories, ctx.test_users, targets.items, sc.poisoning.k,
                                      exclude_history=sc.eval.exclude_history)
    accuracy = ranking_values(model.score, histories, ctx.split.test_targets(ctx.test_users),
                              ks=sc.eval.k, exclude_history=sc.eval.exclude_history)
    return exposure, accuracy


def add_scores(row: Any, exposure: Exposure, accuracy: dict[str, np.ndarray]) -> None:
    exposure.add_to(row)
    for metric, values in accuracy.items():
        row.add(metric, values)


def paired_changes(ctx: "RunContext", exposure: Exposure, accuracy: dict[str, np.ndarray], ref_exposure: Exposure,
                   ref_accuracy: dict[str, np.ndarray], *, rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
    """Paired differences (same users) against a reference victim: each target metric (bootstrap
    over users, targets fixed) and each clean-accuracy metric (with a p-value)."""
    n_boot, conf = ctx.scenario.eval.bootstrap, ctx.scenario.eval.confidence
    target = {}
    for metric in exposure.values:
        diff = exposure.values[metric] - ref_exposure.values[metric]
        mean, low, high = bootstrap_ci_grouped(diff, exposure.groups, exposure.clusters, rng=rng, n_resamples=n_boot, confidence=conf)
        target[metric] = {"value": mean, "ci_low": low, "ci_high": high}
    clean = {}
    for metric in (m for m in accuracy if m in ref_accuracy):
        d, low, high, p = paired_bootstrap_diff(accuracy[metric], ref_accuracy[metric], rng=rng, n_resamples=n_boot, confidence=conf)
        clean[metric] = {"value": d, "ci_low": low, "ci_high": high, "p_value": p}
    return target, clean


def defended_poisoning(ctx: "RunContext", victim_label: str, defense_spec: ComponentSpec, label: str,
                       fakes: list[np.ndarray], seed: int, attack_seed: int, histories: list[np.ndarray], *,
                       clean: dict[str, Any], undefended: dict[str, Any]) -> None:
    """The attack's poisoned training set under one defense: a row (attack, defense) with target
    exposure, clean accuracy, detector metrics on the injected users and the training cost; its
    info holds the paired effect of the defense against the undefended poisoned victim."""
    from redteam.defense_stage import add_detection, add_fit_cost, add_roc_curve, fit_defended

    sc = ctx.scenario
    dlabel = defense_spec.label()
    if sc.poisoning.defend_clean:
        clean_defended(ctx, victim_label, defense_spec, seed, histories)
    n_real = len(ctx.split.train)
    fit = fit_defended(ctx, spec_for(ctx, victim_label), defense_spec, [*ctx.split.train, *fakes], seed,
                       what=f"{label} x {dlabel}")
    exposure, accuracy = score_victim(ctx, fit.victim, histories)
    row = ctx.rows.row(ctx.dataset.name, victim_label, attack=label, defense=dlabel)
    add_scores(row, exposure, accuracy)
    add_fit_cost(row, fit)
    is_fake = np.arange(n_real + len(fakes)) >= n_real
    detection = add_detection(row, fit.detection, is_fake)
    add_roc_curve(ctx, fit.detection, is_fake, detection, victim=victim_label, attack=label, defense=dlabel, seed=seed)
    effect, vs_clean = paired_changes(ctx, exposure, accuracy, undefended["exposure"], clean["accuracy"],
                                      rng=numpy_rng(seed, "defense-effect", label, dlabel, attack_seed))
    effect.update({f"{m}_vs_clean": v for m, v in vs_clean.items()})
    row.info.setdefault("defense", []).append({
        "seed": seed, "attack_seed": attack_seed, "identifier": fit.identifier, "cached": fit.cached,
        "vs_undefended": effect, "detection": detection,
        "fit": {k: fit.info.get(k) for k in ("epochs_run", "best_epoch", "seconds", "seconds_total", "best_valid_ndcg10", "defense")},
    })
    headline = f"target_hr@{sc.poisoning.k[-1]}"
    ctx.events.emit("defense_scored", victim=victim_label, attack=label, defense=dlabel, seed=seed, attack_seed=attack_seed,
                    undefended=float(undefended["exposure"].values[headline].mean()),
                    defended=float(exposure.values[headline].mean()), auc=detection.get("detector_auc"))


def clean_defended(ctx: "RunContext", victim_label: str, defense_spec: ComponentSpec, seed: int,
                   histories: list[np.ndarray]) -> None:
    """The defense on the clean training set, once per (victim, defense, seed): its row (attack
    none) shows what the defense costs in clean accuracy and whom it flags among real users."""
    from redteam.defense_stage import add_detection, add_fit_cost, fit_defended

    dlabel = defense_spec.label()
    done = ctx.poisoning.setdefault("clean_defended", set())
    if (victim_label, dlabel, seed) in done:
        return
    done.add((victim_label, dlabel, seed))
    fit = fit_defended(ctx, spec_for(ctx, victim_label), defense_spec, list(ctx.split.train), seed, what="clean")
    exposure, accuracy = score_victim(ctx, fit.victim, histories)
    row = ctx.rows.row(ctx.dataset.name, victim_label, defense=dlabel)
    add_scores(row, exposure, accuracy)
    add_fit_cost(row, fit)
    add_detection(row, fit.detection, np.zeros(len(ctx.split.train), dtype=bool))
    row.info.setdefault("fit", []).append({"seed": seed, "cached": fit.cached, "defense": fit.identifier,
                                           **{k: fit.info.get(k) for k in ("epochs_run", "best_epoch", "seconds", "seconds_total")}})


def spec_for(ctx: "RunContext", victim_label: str) -> ComponentSpec:
    for spec in ctx.scenario.victims:
        if spec.label() == victim_label:
            return spec
    raise KeyError(victim_label)


def clean_state(ctx: "RunContext", victim: Any, victim_label: str, seed: int, histories: list[np.ndarray]) -> dict[str, Any]:
    """The clean victim's target exposure ("before"), added to its own row once per run seed, and
    its per-user clean accuracy (for the paired change)."""
    key = (victim_label, seed)
    state = ctx.poisoning.setdefault("clean", {})
    if key not in state:
        targets: Targets = ctx.poisoning["targets"]
        exposure = target_exposure_values(victim.score, histories, ctx.test_users, targets.items, ctx.scenario.poisoning.k,
                                          exclude_history=ctx.scenario.eval.exclude_history)
        row = ctx.rows.row(ctx.dataset.name, victim_label)
        # run_victim has just added this seed's clean accuracy: its last array per metric.
        accuracy = {m: arrays[-1] for m, arrays in row.per_seed.items() if m not in exposure.values}
        exposure.add_to(row)
        fits = row.info.get("fit") or [{}]
        row.add("train_seconds", float(fits[-1].get("seconds") or 0.0))
        row.info["poisoning_targets"] = [{**t, "eligible_users": exposure.eligible[t["item"]]} for t in targets.describe()]
        state[key] = {"exposure": exposure, "accuracy": accuracy}
    return state[key]


def retrain(ctx: "RunContext", victim: Any, spec: ComponentSpec, fakes: list[np.ndarray], seed: int,
            settings: dict[str, Any], label: str) -> tuple[Any, dict[str, Any], bool]:
    """The victim retrained on real + fake training sequences (cached by their checksum)."""
    from redteam.fitting import fit_victim

    split = ctx.split
    train = [*split.train, *fakes]
    valid = (split.valid_histories(), split.valid_targets())
    mode = settings["retrain"]
    epochs = (ctx.scenario.poisoning.finetune_epochs if mode == "finetune" else int(spec.options.get("epochs", 0)) or None)
    with ctx.reporter.stage(f"{label}: retrain {spec.label()} ({mode}) on {len(split.train)} real + {len(fakes)} fake users",
                            total=epochs) as stage:
        def progress(epoch: int, total: int, metrics: dict[str, float]) -> None:
            stage.update(completed=epoch, total=total,
                         status=f"valid NDCG@10 {metrics.get('valid_ndcg@10', float('nan')):.4f}")
            ctx.events.emit("epoch", victim=spec.label(), attack=label, seed=seed, **metrics)

        if mode == "scratch":
            poisoned, info, cached = fit_victim(spec, train=train, valid=valid, n_items=ctx.dataset.n_items, seed=seed,
                                                cache=ctx.cache, progress=progress)
        else:
            poisoned, info, cached = finetune(ctx, victim, spec, train, valid, seed, progress)
        stage.update(status="loaded from cache" if cached else f"{info.get('epochs_run', 0)} epochs, {info.get('seconds', 0):.0f} s")
    ctx.events.emit("poisoned_victim_ready", victim=spec.label(), attack=label, seed=seed, mode=mode, cached=cached,
                    seconds=info.get("seconds"))
    return poisoned, info, cached


def finetune(ctx: "RunContext", victim: Any, spec: ComponentSpec, train: list[np.ndarray],
             valid: tuple[list[np.ndarray], np.ndarray], seed: int, progress: Any) -> tuple[Any, dict[str, Any], bool]:
    """A copy of the clean victim trained further on the poisoned data (``finetune_epochs`` at most,
    same early stopping, a fresh optimizer): Yue et al.'s setting, weaker than retraining."""
    from redteam.cache import cache_key, sequences_checksum
    from redteam.registry import resolve
    from redteam.training import train_model

    if getattr(victim, "model", None) is None:
        raise ConfigError(f"poisoning.retrain: 'finetune' needs a neural victim; {spec.label()} has no weights to continue from")
    cls = resolve("victims", spec.name)
    params = component_params("victims", spec, where="victims").model_copy(update={"epochs": ctx.scenario.poisoning.finetune_epochs})
    victim_seed = derive_seed(seed, "victim", spec.label())
    weights = hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes() for v in victim.model.state_dict().values())).hexdigest()[:16]
    key = cache_key(victim=spec.name, params=params.model_dump(mode="json"), seed=victim_seed, mode="finetune",
                    clean_weights=weights, train=sequences_checksum(train),
                    valid=sequences_checksum([*valid[0], valid[1]]), n_items=ctx.dataset.n_items)

    def create() -> tuple[Any, dict[str, Any]]:
        tuned = cls(params)
        tuned.n_items = victim.n_items
        tuned.model = copy.deepcopy(victim.model)
        report = train_model(tuned, train, valid, seed=derive_seed(victim_seed, "finetune"), progress=progress)
        return tuned, report.to_dict()

    return ctx.cache.get_or_create(f"{spec.name}-finetune", key, create=create, save=lambda v, p: v.save(p), load=cls.load)


def write_fakes(path: Path, fakes: list[np.ndarray], plan: "FakePlan", item_ids: list[str] | None) -> None:
    """One fake profile per line: index, target, item ids (1..N), the dataset's raw ids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# fake\ttarget\titems (ids 1..N, chronological)\traw item ids"]
    for i, profile in enumerate(fakes):
        raw = " ".join(str(item_ids[j]) for j in profile) if item_ids else ""
        lines.append(f"{i}\t{int(plan.target_of[i])}\t{' '.join(map(str, profile.tolist()))}\t{raw}")
    path.write_text("\n".join(lines) + "\n")
