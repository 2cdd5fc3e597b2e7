"""Watermark defenses in the extraction stage (kind ``watermark``, e.g. AOW).

The owner trains its secret into the victim it deploys (retrained from scratch with the clean
victim's settings and seed; cached like any defended victim), the attacks steal that victim
through its API, and every model in sight is verified with the secret:

* positives: each surrogate stolen from the watermarked endpoint (``watermark_detected`` on the
  attack's row, one value per attacker seed: its mean is the true-positive rate);
* negatives: the surrogate the same attack stole from the clean endpoint
  (``watermark_false_alarm``), the owner's clean victim, and models trained independently on
  the clean data with seeds of their own, of the victim's and of other architectures
  (``watermark_fpr`` on the defense's clean row).

The clean row (attack ``none``) of the defense is the watermarked victim serving real users:
its paired change against ``none`` is the watermark's cost in clean accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from redteam.errors import ConfigError
from redteam.scenario import ComponentSpec
from redteam.seeding import derive_seed
from redteam.stages.context import RunContext, Target

TRAIN_OPTIONS = ("epochs", "patience", "max_len")  # carried from the victim to control models of other architectures


@dataclass
class Watermarked:
    """The watermarked victim behind the port, its defense object and the secret it carries."""

    defense: Any
    secret: list[list[int]]
    target: Target


def is_watermark(spec: ComponentSpec) -> bool:
    from redteam.registry import resolve

    return spec.name != "none" and getattr(resolve("defenses", spec.name), "kind", None) == "watermark"


def evidence_info(label: str, evidence: Any) -> dict[str, Any]:
    return {"model": label, "hits": evidence.hits, "queries": evidence.queries, "hit_rate": round(evidence.hit_rate, 4),
            "chance": evidence.chance, "p_value": evidence.p_value, "detected": evidence.detected}


def watermark_victim(ctx: RunContext, target: Target, defense_spec: ComponentSpec) -> Watermarked:
    """Train the watermarked victim, score it for real users, verify it and the innocent controls."""
    from redteam.stages.defended_fit import add_fit_cost, fit_defended
    from redteam.stages.defenses import build_defense
    from redteam.stages.victim import add_clean_metrics, serve_local

    label = defense_spec.label()
    if target.remote is not None or target.model is None:
        raise ConfigError(f"defenses.{label}: a watermark is trained into the victim; '{target.label}' is a remote "
                          "endpoint this run cannot retrain")
    defense = build_defense(defense_spec)
    fit = fit_defended(ctx, target.spec, defense_spec, ctx.split.train, target.seed, what="watermark",
                       oracle=target.model.score)
    secret = fit.info["defense"]["watermark"]
    marked = Target(spec=target.spec, seed=target.seed, model=fit.victim, recommender=serve_local(ctx, fit.victim),
                    variant=label)
    with ctx.reporter.stage(f"{label}: evaluate the watermarked {target.label}"):
        row = add_clean_metrics(ctx, marked.recommender, ctx.rows.row(ctx.dataset.name, target.label, defense=label),
                                seed=target.seed)
    add_fit_cost(row, fit)
    own = defense.verify(fit.victim.score, secret)
    row.add("watermark_hit_rate", own.hit_rate)
    controls = [evidence_info(f"{target.label} (clean, seed {target.seed})", defense.verify(target.model.score, secret))]
    with ctx.reporter.stage(f"{label}: train innocent control models", total=len(defense.params.controls)
                            * defense.params.control_seeds) as stage:
        for name, model in control_models(ctx, target, defense.params.controls, defense.params.control_seeds, stage):
            controls.append(evidence_info(name, defense.verify(model.score, secret)))
    row.add("watermark_fpr", float(np.mean([c["detected"] for c in controls])))
    row.info.setdefault("watermark", []).append({
        "seed": target.seed, "identifier": defense.identifier(), "secret_items": sum(map(len, secret)),
        "verification_queries": own.queries, "watermarked_victim": evidence_info(target.label, own),
        "controls": controls})
    return Watermarked(defense, secret, marked)


def control_models(ctx: RunContext, target: Target, aliases: list[str], per_alias: int, stage: Any):
    """Innocent suspects: each alias trained on the clean data with seeds of its own (cached)."""
    from redteam.fitting import fit_victim

    carried = {k: v for k, v in target.spec.options.items() if k in TRAIN_OPTIONS}
    for alias in aliases:
        options = target.spec.options if alias == target.spec.name else carried
        spec = ComponentSpec(name=alias, **{k: v for k, v in options.items() if k != "label"})
        for i in range(per_alias):
            seed = derive_seed(target.seed, "watermark-control", alias, i)
            model, _, cached = fit_victim(spec, train=ctx.split.train, valid=ctx.valid(), n_items=ctx.dataset.n_items,
                                          seed=seed, cache=ctx.cache, item_text=ctx.dataset.item_text,
                                          event_times=ctx.event_times())
            stage.advance(1, status=f"{alias} #{i + 1}" + (" (cached)" if cached else ""))
            yield f"{alias} (independent, seed {seed})", model


def verify_stolen(ctx: RunContext, marked: Watermarked, target: Target, attack_label: str, attack_seed: int,
                  surrogate: Any) -> None:
    """Verify the surrogate stolen from the watermarked endpoint, and its twin from the clean one."""
    from redteam.stages.exchange import StolenSurrogate, SurrogateKey

    label = marked.target.variant
    row = ctx.rows.row(ctx.dataset.name, target.label, attack=attack_label, defense=label)
    stolen = marked.defense.verify(surrogate.score, marked.secret)
    row.add("watermark_detected", float(stolen.detected))
    row.add("watermark_hit_rate", stolen.hit_rate)
    record = {"seed": target.seed, "attack_seed": attack_seed, "stolen": evidence_info("surrogate", stolen)}
    twin = ctx.exchange.get(StolenSurrogate, SurrogateKey(target.label, target.seed, attack_seed, attack_label, "none"))
    if twin is not None:
        innocent = marked.defense.verify(twin.model.score, marked.secret)
        row.add("watermark_false_alarm", float(innocent.detected))
        record["stolen_from_clean_endpoint"] = evidence_info("surrogate (clean endpoint)", innocent)
    row.info.setdefault("watermark", []).append(record)
