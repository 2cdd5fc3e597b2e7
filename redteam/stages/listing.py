"""Listing rewriting: sellers edit their own items' text, and a recommender that reads item text
ranks the edited items at once, without retraining (``attacks/listing``).

* Targets: the run's poisoning targets (the scenario's ``poisoning:`` section: ``targets``,
  ``target_selection`` or ``target_ids``), one listing each, all edited by the same attacker.
* The attack edits a copy of the trained victim through :class:`ListingDesk` (the platform's
  listing editor: it applies an accepted text with ``set_item_text``; a victim that does not read
  item text, such as ID-only SASRec, keeps answering as before, which is the control) and queries
  that copy in process through a metered endpoint.
* A ``text`` defense moderates edits: calibrated on a sample of the catalog's texts, it rejects an
  edit it flags. Each defense row is the attack run again against the moderated desk (the attacker
  sees rejections and searches around them); its info also holds the filter's detection rate on the
  texts the undefended attack rewrote (listings it left unchanged are not attack texts) and its
  false-positive rate on held-out catalog texts.
* The desk holds the attacker to its threat model: an edit more than ``max_edits`` word edits
  from the original text is refused with :class:`BudgetExceeded`, as the API refuses a query past
  its budget. Restoring the original text is always accepted (it was published before). With a
  finite ``api.budget`` each listing gets an even share of the queries left (``budget`` on the
  attacker's handle), and the attacks stop searching before a probe round that does not fit.
* A filter's ``detection_rate`` in the row is the mean over attacker seeds of each seed's share
  of rewritten texts flagged (seeds that rewrote nothing are left out); the counts per seed
  (``n_attack``, ``attack_flagged``) are in the row's info.
* Scoring on the run's evaluation users (:mod:`redteam.stages.exposure`): target HR/NDCG@K of the
  clean victim ("before", in the victim's row) and of the edited copy (the attack's row), paired
  lift and clean-accuracy change with intervals in the row's info.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

from redteam.errors import BudgetExceeded, ConfigError
from redteam.evaluation import ranking_values
from redteam.registry import resolve
from redteam.scenario import ComponentSpec, component_params, defends
from redteam.seeding import numpy_rng
from redteam.stages.base import Stage, target_success_metric
from redteam.stages.context import RunContext, Target
from redteam.stages.exposure import Exposure, paired_changes, target_exposure_values
from redteam.stages.hosting import metered_endpoint
from redteam.stages.poisoning_targets import Targets, select_targets
from redteam.stages.victim import serve_local

MODERATION_TEXTS = 500  # catalog texts a text defense is calibrated on, as many held out for its FPR (half each if fewer)


@dataclass
class DeskListing:
    """One item's listing on the platform (the attacker's handle, :class:`attacks.listing.base.Listing`)."""

    desk: "ListingDesk"
    item: int
    original: str
    current: str = ""
    accepted: int = 0
    rejected: int = 0
    budget: int | None = None  # API queries this listing may spend (the Listing protocol's field)

    def __post_init__(self) -> None:
        self.current = self.original

    @property
    def text(self) -> str:
        return self.current

    def edit(self, text: str) -> bool:
        text = str(text)
        if self.desk.max_edits is not None:
            from attacks.listing.base import word_edits

            if (n := word_edits(self.original, text)) > self.desk.max_edits:
                raise BudgetExceeded(f"listing of item {self.item}: an edit {n} words from the original text, "
                                     f"over max_edits {self.desk.max_edits}")
        restoring = text == self.original  # the platform already published it: no new text to moderate
        if not restoring and self.desk.moderation is not None and self.desk.moderation.flag([text])[0]:
            self.rejected += 1
            return False
        self.current, self.accepted = text, self.accepted + 1
        if self.desk.reads_text:
            self.desk.model.set_item_text(self.item, text)
        return True


class SealedListing(NamedTuple):
    """What the attacker holds (:class:`attacks.listing.base.Listing`): its item, the original text,
    the current text, ``edit``, and the API queries this listing may spend (``budget``; None:
    unlimited). The desk, and through it the model, sit in closures, as the API's victim does: a
    discipline boundary against honest mistakes, not a sandbox."""

    item: int
    original: str
    current: Callable[[], str]
    edit: Callable[[str], bool]
    budget: int | None = None

    @property
    def text(self) -> str:
        return self.current()

    @classmethod
    def of(cls, listing: DeskListing, *, budget: int | None = None) -> "SealedListing":
        return cls(listing.item, listing.original, lambda: listing.text, lambda text: listing.edit(text), budget)


def budget_share(remaining: int | None, listings_left: int) -> int | None:
    """The queries one listing may spend: an even share of what the API has left among the
    listings still to rewrite (what one leaves unspent goes to the next)."""
    return None if remaining is None else max(0, remaining) // max(1, listings_left)


@dataclass
class ListingDesk:
    """The platform's listing editor in front of one victim copy."""

    model: Any
    texts: list[str]
    moderation: Any = None
    max_edits: int | None = None  # word edits allowed from each original text (the attack's budget)
    listings: dict[int, DeskListing] = field(default_factory=dict)

    @property
    def reads_text(self) -> bool:
        return callable(getattr(self.model, "set_item_text", None))

    def listing(self, item: int) -> DeskListing:
        if item not in self.listings:
            self.listings[item] = DeskListing(self, item, self.texts[item])
        return self.listings[item]


class ListingStage(Stage):
    family: ClassVar[str] = "listing"
    defense_kinds: ClassVar[frozenset[str]] = frozenset({"text"})
    needs_model: ClassVar[bool] = True
    success_metric: ClassVar[str] = "target_hr@50"
    attack_verbs: ClassVar[tuple[str, ...]] = ("rewrite",)
    in_process_only: ClassVar[bool] = True  # edits reach a victim copy here; api.transport: http is refused

    @classmethod
    def success_metric_for(cls, scenario: Any) -> str:
        return target_success_metric(scenario.poisoning.k)

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self.targets: Targets | None = None
        self._clean: dict[tuple[str, int], dict[str, Any]] = {}
        self._undefended_texts: dict[tuple[str, int, str, int], list[str]] = {}

    def prepare(self) -> None:
        ctx = self.ctx
        if not ctx.dataset.item_text:
            raise ConfigError(f"attacks: listing attacks edit item texts, and data set '{ctx.dataset.name}' has none")
        self.targets = select_targets(ctx.dataset, ctx.split, ctx.scenario.poisoning, ctx.scenario.seed)

    def results(self) -> dict[str, Any]:
        t = self.targets
        return {"listing": {
            "targets": t.describe(), "selection": t.selection,
            "queries": "in process, against a copy of the victim that the edits reach (set_item_text)",
            "moderation": f"text defenses calibrated on up to {MODERATION_TEXTS} catalog texts, FPR on as many others",
        }} if t is not None else {}

    def attack(self, target: Target, spec: ComponentSpec, attack_seed: int) -> None:
        for defense_spec in self.defenses() or [ComponentSpec(name="none")]:
            if defends(defense_spec, attack_seed):
                self.run_against(target, spec, attack_seed, defense_spec)

    def defenses(self) -> list[ComponentSpec]:
        """``none`` first (added if absent): the undefended texts measure each filter's detection."""
        chosen = super().defenses()
        if not chosen:
            return chosen
        undefended = [d for d in chosen if d.name == "none"] or [ComponentSpec(name="none")]
        return [undefended[0], *(d for d in chosen if d.name != "none")]

    # ------------------------------------------------------------------------------------------

    def run_against(self, target: Target, spec: ComponentSpec, attack_seed: int, defense_spec: ComponentSpec) -> None:
        ctx, sc = self.ctx, self.ctx.scenario
        assert self.targets is not None, "ListingStage.prepare() runs before any attack"
        label, dlabel = spec.label(), defense_spec.label()
        attack = resolve("attacks", spec.name)(component_params("attacks", spec, where=f"attacks.{label}"))
        texts = list(ctx.dataset.item_text)
        moderation, held_out = self.moderation(defense_spec, texts, target.seed)
        desk = ListingDesk(copy.deepcopy(target.model), texts, moderation, max_edits=attack.params.max_edits)
        api = metered_endpoint(ctx, serve_local(ctx, desk.model))
        knowledge = ctx.knowledge(target, label, attack_seed, api)
        recipes = []
        t0 = time.perf_counter()
        with ctx.reporter.stage(f"{label}: rewrite {len(self.targets.items)} listings"
                                + ("" if moderation is None else f" under {dlabel}")) as stage:
            for n, item in enumerate(self.targets.items):
                share = budget_share(api.remaining, len(self.targets.items) - n)
                attack.rewrite(knowledge, SealedListing.of(desk.listing(item), budget=share))
                recipes.append({"item": item, **attack.diagnostics})
                stage.update(status=f"item {item}: {attack.diagnostics.get('edits', '?')} edits")
        seconds = time.perf_counter() - t0

        histories = ctx.test_histories()
        clean = self.clean_state(target, histories)
        after, accuracy = self.score_model(desk.model, histories)
        row = ctx.rows.row(ctx.dataset.name, target.label, attack=label, defense=dlabel)
        if short := [r["item"] for r in recipes if r.get("budget_exhausted")]:
            row.info.setdefault("warnings", []).append(
                f"{label}: the query budget ran out for listing(s) {', '.join(map(str, short))} "
                f"(attacker seed {attack_seed}); raise api.budget or lower probes/candidates")
        after.add_to(row, repetition=(target.seed, attack_seed))
        for metric, values in accuracy.items():
            row.add(metric, values, repetition=(target.seed, attack_seed))
        row.add("queries", float(api.queries_used))
        row.add("seconds", seconds)
        lift, change = paired_changes(after, accuracy, clean["exposure"], clean["accuracy"],
                                      rng=numpy_rng(target.seed, "listing-lift", label, dlabel, attack_seed),
                                      n_boot=sc.eval.bootstrap, conf=sc.eval.confidence)
        rewritten = [d.text for d in map(desk.listing, self.targets.items) if d.text != d.original]
        entry = {
            "seed": target.seed, "attack_seed": attack_seed, "identifier": attack.identifier(),
            "victim_reads_text": desk.reads_text, "lift": lift, "clean_change": change, "queries": api.queries_used,
            "listings": [{"item": item, "original": desk.listing(item).original, "final": desk.listing(item).text,
                          "accepted": desk.listing(item).accepted, "rejected": desk.listing(item).rejected,
                          **{f"{m}_before": clean["exposure"].per_target(m)[item] for m in after.values},
                          **{f"{m}_after": after.per_target(m)[item] for m in after.values}, "recipe": recipe}
                         for item, recipe in zip(self.targets.items, recipes)],
        }
        key = (target.label, target.seed, label, attack_seed)
        if moderation is None:
            self._undefended_texts[key] = rewritten
        elif key in self._undefended_texts:
            from defenses.text_filters import text_detection_metrics

            detection = text_detection_metrics(moderation, attack_texts=self._undefended_texts[key], clean_texts=held_out)
            entry["detection"] = detection
            if detection["n_attack"]:  # a seed whose attack changed no listing has nothing to detect
                row.add("detection_rate", detection["detection_rate"])
            row.add("fpr", detection["fpr"])
        row.info.setdefault("listing", []).append(entry)
        ctx.events.emit("listing_scored", victim=target.label, attack=label, defense=dlabel, seed=target.seed,
                        attack_seed=attack_seed, lift=lift[f"target_hr@{sc.poisoning.k[-1]}"]["value"])

    def moderation(self, defense_spec: ComponentSpec, texts: list[str], seed: int) -> tuple[Any, list[str]]:
        """The calibrated text filter of ``defense_spec`` (None for ``none``) and the held-out catalog
        texts that measure its false-positive rate."""
        if defense_spec.name == "none":
            return None, []
        assert self.targets is not None
        rng = numpy_rng(seed, "listing-moderation")
        candidates = [t for i, t in enumerate(texts) if i > 0 and i not in self.targets.items and t.strip()]
        unique = sorted(set(candidates))
        order = rng.permutation(len(unique))
        half = min(MODERATION_TEXTS, len(unique) // 2)
        reference = [unique[i] for i in order[:half]]
        held_out = [unique[i] for i in order[half : 2 * half]]
        defense = resolve("defenses", defense_spec.name)(component_params("defenses", defense_spec,
                                                                          where=f"defenses.{defense_spec.label()}"))
        return defense.calibrate(reference), held_out

    def score_model(self, model: Any, histories: list[np.ndarray]) -> tuple[Exposure, dict[str, np.ndarray]]:
        sc = self.ctx.scenario
        assert self.targets is not None
        exposure = target_exposure_values(model.score, histories, self.ctx.test_users, self.targets.items,
                                          sc.poisoning.k, exclude_history=sc.eval.exclude_history)
        accuracy = ranking_values(model.score, histories, self.ctx.test_targets(), ks=sc.eval.k,
                                  exclude_history=sc.eval.exclude_history)
        return exposure, accuracy

    def clean_state(self, target: Target, histories: list[np.ndarray]) -> dict[str, Any]:
        """The clean victim's target exposure (added to its row once per run seed) and accuracy."""
        key = (target.label, target.seed)
        if key not in self._clean:
            exposure, accuracy = self.score_model(target.model, histories)
            row = self.ctx.rows.row(self.ctx.dataset.name, target.label)
            first = next(iter(exposure.values))
            if len(row.per_seed.get(first, [])) < len(row.info.get("fit", [])):  # not added by a poisoning stage
                exposure.add_to(row, repetition=(target.seed,))
            self._clean[key] = {"exposure": exposure, "accuracy": accuracy}
        return self._clean[key]
