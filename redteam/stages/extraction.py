"""Model extraction: steal a victim through its metered top-k endpoint and score the surrogate.

Each attack sees a fresh :class:`~redteam.serving.metered.MeteredEndpoint` (the scenario's top-k,
budget and score exposure) in front of the victim, or in front of a serving defense wrapping the
victim, and a :class:`~redteam.knowledge.Knowledge` with the few-shot users' training sequences.
Scoring happens here, never in the attack, over the evaluation users the attacker never saw:
Agreement@1/10 of the surrogate's full-catalog top lists with the (undefended) victim's (for a
watermark, the watermarked victim it was stolen from: :mod:`redteam.stages.watermarking`), the
surrogate's own HR/NDCG, the queries used and the wall time. A budget curve re-distils on
prefixes of the same query stream. The stolen surrogate is offered to later stages.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from redteam.evaluation import ranking_values, recommender_ranking_values
from redteam.metrics import agreement_at_k, topk_items
from redteam.scenario import ComponentSpec, component_params, defends
from redteam.seeding import numpy_rng
from redteam.serving.port import full_scorer
from redteam.stages.base import Stage
from redteam.stages.context import Target
from redteam.stages.defenses import build_defense
from redteam.stages.hosting import attack_recommender, metered_endpoint, transport_info
from redteam.stages.exchange import StolenSurrogate, SurrogateKey
from redteam.stages.watermarking import is_watermark, verify_stolen, watermark_victim

AGREEMENT_KS = (1, 10)


def top_lists(score_fn: Any, histories: list[np.ndarray], k: int, *, exclude_history: bool, batch: int = 1024) -> np.ndarray:
    """[U, k] full-catalog top-k ids of a scorer (padding, and history if asked, excluded)."""
    parts = []
    for start in range(0, len(histories), batch):
        chunk = histories[start : start + batch]
        parts.append(topk_items(score_fn(chunk), k, exclude=chunk if exclude_history else None).numpy())
    return np.concatenate(parts) if parts else np.zeros((0, k), dtype=np.int64)


def surrogate_agreement(score_fn: Any, histories: list[np.ndarray], victim_top: np.ndarray, ks: tuple[int, ...], *,
                        exclude_history: bool, batch: int = 1024) -> dict[int, np.ndarray]:
    """Per-user Agreement@K of a surrogate with the victim's lists for every K, the surrogate's ties
    at its K-th score drawn at random (:func:`redteam.metrics.expected_agreement_at_k`)."""
    from redteam.metrics_topk import expected_agreement_at_k

    parts: dict[int, list[np.ndarray]] = {k: [] for k in ks}
    for start in range(0, len(histories), batch):
        chunk = histories[start : start + batch]
        scores = score_fn(chunk)
        for k in ks:
            parts[k].append(expected_agreement_at_k(scores, victim_top[start : start + batch], k,
                                                    exclude=chunk if exclude_history else None))
    return {k: np.concatenate(p) if p else np.zeros(0) for k, p in parts.items()}


def warn_below_popularity(ctx: Any, row: Any, quality: dict[str, np.ndarray], popularity: dict[str, float], *,
                          seed: int, attack_seed: int) -> None:
    """A warning on the row (and in the event log) when the stolen surrogate ranks the test users'
    next items worse than training popularity does: distillation collapsed or never started."""
    k = ctx.scenario.eval.k[0]
    metric = f"ndcg@{k}"
    mine, floor = float(quality[metric].mean()), popularity[metric]
    if mine < floor:
        text = (f"seed {seed}, attacker seed {attack_seed}: the surrogate's test {metric.upper()} {mine:.4f} is below "
                f"the popularity ranking's {floor:.4f}")
        row.info.setdefault("warnings", []).append(text)
        ctx.events.emit("warning", victim=row.victim, attack=row.attack, defense=row.defense, text=text)


def served_top_lists(recommender: Any, histories: list[np.ndarray], k: int, *, exclude_history: bool) -> np.ndarray:
    """The recommender's top-k lists: a full ranking when it can score the catalog, else its answers."""
    score_fn = full_scorer(recommender)
    if score_fn is not None:
        return top_lists(score_fn, histories, k, exclude_history=exclude_history)
    return np.concatenate([recommender.recommend(histories[s : s + 512], k).items
                           for s in range(0, len(histories), 512)]) if histories else np.zeros((0, k), dtype=np.int64)


class ExtractionStage(Stage):
    family: ClassVar[str] = "extraction"
    produces: ClassVar[tuple[type, ...]] = (StolenSurrogate,)
    defense_kinds: ClassVar[frozenset[str]] = frozenset({"serving", "watermark"})
    success_metric: ClassVar[str] = "agreement@10"
    attack_verbs: ClassVar[tuple[str, ...]] = ("collect", "train_surrogate", "query_allowance")

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._victim_top: dict[tuple[str, int, str], np.ndarray] = {}
        self._served_clean: set[tuple[str, int, str]] = set()
        self._calibrated: dict[tuple[str, int, str], Any] = {}
        self._watermarked: dict[tuple[str, int, str], Any] = {}
        self._popularity: dict[str, float] | None = None

    def popularity_baseline(self) -> dict[str, float]:
        """Mean HR/NDCG@K of ranking by training popularity on the test users: the floor a stolen
        surrogate should clear (a surrogate below it learned less than a bestseller list)."""
        if self._popularity is None:
            from victims.popularity import Popularity

            ctx, sc = self.ctx, self.ctx.scenario
            popularity = Popularity()
            popularity.fit(ctx.split.train, None, n_items=ctx.dataset.n_items, seed=0)
            values = ranking_values(popularity.score, ctx.test_histories(), ctx.test_targets(), ks=sc.eval.k,
                                    exclude_history=sc.eval.exclude_history)
            self._popularity = {metric: float(v.mean()) for metric, v in values.items()}
        return self._popularity

    def victim_top(self, target: Target) -> np.ndarray:
        key = (target.label, target.seed, target.variant)
        if key not in self._victim_top:
            self._victim_top[key] = served_top_lists(target.recommender, self.ctx.test_histories(), max(AGREEMENT_KS),
                                                     exclude_history=self.ctx.scenario.api.exclude_history)
        return self._victim_top[key]

    def attack(self, target: Target, spec: ComponentSpec, attack_seed: int) -> None:
        # watermarks last: their rows verify the surrogate the same attack stole from the clean endpoint
        for defense_spec in sorted(self.defenses(), key=is_watermark):
            if not defends(defense_spec, attack_seed):
                continue
            if is_watermark(defense_spec):
                marked = self.watermarked(target, defense_spec)
                surrogate = self.steal(marked.target, spec, attack_seed, defense_spec, None)
                verify_stolen(self.ctx, marked, target, spec.label(), attack_seed, surrogate)
                continue
            defense = self.calibrated(target, defense_spec)
            if defense is not None:
                self.score_served(target, defense_spec, defense)
            self.steal(target, spec, attack_seed, defense_spec, defense)

    def calibrated(self, target: Target, defense_spec: ComponentSpec) -> Any:
        """The defense, calibrated on replayed benign traffic when it watches keys (query streams,
        quotas; once per victim, seed and defense)."""
        key = (target.label, target.seed, defense_spec.label())
        if key not in self._calibrated:
            defense = build_defense(defense_spec)
            if defense is not None and hasattr(defense, "calibrate"):
                sc = self.ctx.scenario  # in-process only: checked when the scenario is loaded
                with self.ctx.reporter.stage(f"{defense_spec.label()}: replay benign keys"):
                    summary = defense.calibrate(
                        target.recommender, self.ctx.test_histories(),
                        self.ctx.dataset.item_popularity(self.ctx.split.train), k=sc.api.topk,
                        rng=numpy_rng(target.seed, "stream-detector", defense_spec.name))
                row = self.ctx.rows.row(self.ctx.dataset.name, target.label, defense=defense_spec.label())
                row.info["serving_calibration"] = {str(n): v for n, v in summary.items()}
                for metric, value in defense.row_metrics(summary).items():
                    row.add(metric, value)
            self._calibrated[key] = defense
        return self._calibrated[key]

    def watermarked(self, target: Target, defense_spec: ComponentSpec) -> Any:
        """The victim retrained with the defense's watermark (once per victim, seed and defense)."""
        key = (target.label, target.seed, defense_spec.label())
        if key not in self._watermarked:
            self._watermarked[key] = watermark_victim(self.ctx, target, defense_spec)
        return self._watermarked[key]

    def score_served(self, target: Target, defense_spec: ComponentSpec, defense: Any) -> None:
        """Clean accuracy of the defended service for real users (once per victim, seed and defense)."""
        dlabel = defense_spec.label()
        key = (target.label, target.seed, dlabel)
        if key in self._served_clean:
            return
        self._served_clean.add(key)
        sc = self.ctx.scenario
        served = defense.wrap(target.recommender, numpy_rng(target.seed, "serving-defense", defense_spec.name, "real-users"))
        values = recommender_ranking_values(served, self.ctx.test_histories(),
                                            self.ctx.test_targets(), ks=sc.eval.k, exclude_history=sc.eval.exclude_history)
        row = self.ctx.rows.row(self.ctx.dataset.name, target.label, defense=dlabel)
        for metric, per_user in values.items():
            row.add(metric, per_user, repetition=(target.seed,))
        row.info.setdefault("serving_defense", []).append({"seed": target.seed, "identifier": defense.identifier()})

    def steal(self, target: Target, spec: ComponentSpec, attack_seed: int, defense_spec: ComponentSpec,
              defense: Any | None) -> Any:
        """Steal, score and offer one surrogate (returned). ``target.seed``: the run seed (which
        victim); ``attack_seed``: the attacker's own root seed. The budget curve is drawn for the
        first attacker seed only (each point is a distillation)."""
        from redteam.registry import resolve

        ctx, sc = self.ctx, self.ctx.scenario
        label = spec.label()
        attack = resolve("attacks", spec.name)(component_params("attacks", spec, where=f"attacks.{label}"))
        dlabel = defense_spec.label()
        histories = ctx.test_histories()
        kmax = max(AGREEMENT_KS)
        victim_top = self.victim_top(target)
        where = {"victim": target.label, "attack": label, "seed": target.seed, "attack_seed": attack_seed,
                 **({} if dlabel == "none" else {"defense": dlabel})}

        with ctx.reporter.stage(f"{label}: query {target.label}" + ("" if dlabel == "none" else f" under {dlabel}"),
                                total=sc.api.budget) as stage, \
                attack_recommender(ctx, target, defense_spec, defense, attack_label=label, attack_seed=attack_seed) as served:
            # a quota the attacker reads in the API's terms: it plans within it
            api = metered_endpoint(self.ctx, served, budget=getattr(defense, "attacker_allowance", None))
            knowledge = ctx.knowledge(target, label, attack_seed, api)

            def on_progress(phase: str, done: float, total: float) -> None:
                if phase == "queries":
                    stage.update(completed=done, total=total, status=f"{int(done)} queries")
                else:
                    stage.update(status=f"{phase} {int(done)}/{int(total)}")

            t0 = time.perf_counter()
            transcript = attack.collect(knowledge, max_queries=attack.query_allowance(knowledge), progress=on_progress)
            seconds_collect = time.perf_counter() - t0
            stage.update(completed=api.queries_used, total=api.budget,
                         status=f"{api.queries_used} queries, {len(transcript)} sequences")
            transport = transport_info(served)
            watched = served.stream_report() if hasattr(served, "stream_report") else None
            asked = None if watched is None else served.answered_before_block(watched["flagged_after"])
        answered = api.queries_used
        if asked is not None:  # a blocking detector: the attacker keeps what it bought before the block
            transcript, answered = transcript.restricted(asked), int(watched["flagged_after"])
        ctx.events.emit("extraction_collected", **where, queries=answered, sequences=len(transcript),
                        few_shot_sequences=transcript.few_shot_count(), seconds=seconds_collect)

        curve = []
        first = attack_seed == sc.attack_seeds_for(target.seed)[0]
        points = sorted({int(round(s * transcript.queries)) for s in attack.params.curve if 0 < s < 1}) if first else []
        with ctx.reporter.stage(f"{label}: distil surrogate", total=len(points) + 1) as stage:
            for done, queries in enumerate(points):
                stage.update(completed=done, status=f"budget curve: {queries} queries")
                part = transcript.prefix(queries)
                surrogate, _ = attack.train_surrogate(knowledge, part)
                top = top_lists(surrogate.score, histories, kmax, exclude_history=sc.api.exclude_history)
                curve.append({"queries": part.distinct_prefixes(),
                              "agreement@10": float(agreement_at_k(top, victim_top, 10).mean())})
            stage.update(completed=len(points), status=f"all {transcript.queries} queries")
            t1 = time.perf_counter()
            surrogate, report = attack.train_surrogate(knowledge, transcript)
            seconds_distill = time.perf_counter() - t1
        agreement = surrogate_agreement(surrogate.score, histories, victim_top, AGREEMENT_KS,
                                        exclude_history=sc.api.exclude_history)
        curve.append({"queries": answered, "agreement@10": float(agreement[10].mean())})

        row = ctx.rows.row(ctx.dataset.name, target.label, attack=label, defense=dlabel)
        repetition = (target.seed, attack_seed)
        for k, values in agreement.items():
            row.add(f"agreement@{k}", values, repetition=repetition)
        quality = ranking_values(surrogate.score, histories, ctx.test_targets(), ks=sc.eval.k,
                                 exclude_history=sc.eval.exclude_history)
        for metric, values in quality.items():
            row.add(metric, values, repetition=repetition)
        warn_below_popularity(ctx, row, quality, self.popularity_baseline(), seed=target.seed, attack_seed=attack_seed)
        row.add("queries", float(answered))
        if watched is not None:
            row.add("detector_auc", watched["detector_auc"])
            row.add("flagged_after", float("nan") if watched["flagged_after"] is None else float(watched["flagged_after"]))
            row.add("keys_to_evade", float(watched["keys_to_evade"]))
            row.info.setdefault("stream_detector", []).append({"seed": target.seed, "attack_seed": attack_seed, **watched})
        row.add("seconds", seconds_collect + seconds_distill)
        row.info.setdefault("extraction", []).append({
            "seed": target.seed, "attack_seed": attack_seed, "identifier": attack.identifier(), "surrogate": surrogate.alias,
            "queries": answered, "sequences": len(transcript), "few_shot_sequences": transcript.few_shot_count(),
            "seconds_collect": round(seconds_collect, 2), "seconds_distill": round(seconds_distill, 2),
            "queries_per_second": round(api.queries_used / max(seconds_collect, 1e-9), 1), **transport,
            **({} if asked is None else {"blocked_after": answered, "queries_asked": api.queries_used}),
            "distill_epochs": report.epochs_run, "best_epoch": report.best_epoch,
            "holdout_agreement@10": report.best_holdout_agreement10,
            **attack.diagnostics,
        })
        if first:
            ctx.curves.append({**{k: v for k, v in where.items() if k in ("victim", "attack", "defense")},
                               "seed": attack_seed, "metric": "agreement@10", "points": curve})
        suffix = "" if dlabel == "none" else f"-{dlabel}"
        ctx.artifacts[f"surrogates/{target.label}-{label}{suffix}-seed{target.seed}-attack{attack_seed}"] = surrogate.save
        # later stages (poisoning) ask for the surrogate stolen through a given endpoint (default: undefended)
        ctx.exchange.put(StolenSurrogate(SurrogateKey(target.label, target.seed, attack_seed, label, dlabel), surrogate,
                                         answered))
        ctx.events.emit("extraction_scored", **where, agreement10=float(agreement[10].mean()),
                        seconds_distill=seconds_distill)
        return surrogate
