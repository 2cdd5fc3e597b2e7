"""Train a victim under a training-time defense, and score the defense as a detector.

Every defense of a scenario is applied to the same training sets: the clean one (its cost in
clean accuracy, and its false-positive rate) and each attack's poisoned one (real + fake users).
The defended victim is trained from scratch with the clean victim's settings and seed, so the
rows differ only by the defense; it is cached by the training data, the defense's identifier
and the code like any victim. A detection (suspicion per training user and the users acted on)
travels in the cache entry's info, so a cached run reports the same detector figures.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from redteam.errors import ConfigError
from redteam.scenario import ComponentSpec, component_params
from redteam.seeding import derive_seed
from redteam.stages.context import RunContext
from redteam.stages.defenses import build_defense

if TYPE_CHECKING:
    from defenses.base import DefenseInputs, Detection


DOMAINS = {"amazon-beauty": "beauty product", "amazon-scientific": "scientific product", "amazon-sports": "sports product",
           "ml-100k": "movie", "synthetic": "product"}


@dataclass
class DefendedFit:
    victim: Any
    info: dict[str, Any]
    cached: bool
    detection: "Detection | None"
    identifier: dict[str, Any]


@lru_cache(maxsize=1)
def defense_code_version() -> str:
    """Hash of the defenses' sources: a defended victim is cached under the code that trained it
    (the victims' and trainer's sources are in every cache key already). The poisoning recipes and
    the attacker's knowledge are in it too: LoRec and LLM4Dec train on fakes they simulate with them."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for f in sorted([*(root / "defenses").rglob("*.py"), *(root / "redteam").glob("lm*.py"), Path(__file__).resolve(),
                     *(root / "attacks" / "poisoning").rglob("*.py"), root / "redteam" / "knowledge.py"]):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def defense_inputs(ctx: RunContext, train: list[np.ndarray], seed: int, victim_params: Any, *,
                   oracle: Any = None) -> "DefenseInputs":
    from defenses.base import DefenseInputs

    dataset = ctx.dataset
    return DefenseInputs(
        train=train, n_items=dataset.n_items, seed=seed,
        item_popularity=dataset.item_popularity(train),
        item_text=tuple(dataset.item_text) if dataset.item_text else None,
        domain=DOMAINS.get(dataset.name, "item"),
        epochs=int(getattr(victim_params, "epochs", 30)), max_len=int(getattr(victim_params, "max_len", 50)),
        cache_dir=ctx.cache.root.parent if ctx.cache.enabled else None, oracle=oracle,
    )


def fit_defended(ctx: RunContext, victim_spec: ComponentSpec, defense_spec: ComponentSpec, train: list[np.ndarray],
                 seed: int, *, what: str, oracle: Any = None) -> DefendedFit:
    """The victim trained on ``train`` under the defense (from the cache when possible). ``oracle``:
    the defender's clean model (``score``), for a defense that queries it (a watermark draws its
    sequences with it; the clean model is itself determined by the cache key's data and seed)."""
    from defenses.base import Detection
    from redteam.fitting import TrainingSetup, fit_victim

    defense = build_defense(defense_spec)
    if defense is None:
        raise ValueError("fit_defended: 'none' is the plain victim (fit_victim)")
    params = component_params("victims", victim_spec, where="victims")
    if not hasattr(params, "epochs"):
        raise ConfigError(f"defenses.{defense_spec.label()}: victim '{victim_spec.label()}' is not trained by the "
                          "shared trainer, so a training-time defense cannot act on it")
    split = ctx.split
    identifier = defense.identifier()
    label = defense_spec.label()

    def setup() -> TrainingSetup:
        t0 = time.perf_counter()
        plan = defense.prepare(defense_inputs(ctx, train, derive_seed(seed, "defense", defense_spec.name), params, oracle=oracle))
        prepare_seconds = time.perf_counter() - t0

        def finish(info: dict[str, Any]) -> None:
            info["defense"] = {**plan.info, "prepare_seconds": round(prepare_seconds, 2),
                               "defender_added_users": len(plan.extra_train)}
            info["seconds_total"] = round(prepare_seconds + info["seconds"], 2)
            if plan.detection is not None:
                info["detection"] = {"scores": plan.detection.scores.tolist(),
                                     "flagged": np.flatnonzero(plan.detection.flagged).tolist()}

        return TrainingSetup(hooks=plan.hooks, extra_train=plan.extra_train, finish=finish)

    with ctx.training_progress(f"{what}: train {victim_spec.label()} under {label}", params.epochs, victim=victim_spec.label(),
                               defense=label, what=what, seed=seed) as (stage, progress):
        victim, info, cached = fit_victim(
            victim_spec, train=train, valid=(split.valid_histories(), split.valid_targets()), n_items=ctx.dataset.n_items,
            seed=seed, cache=ctx.cache, progress=progress, setup=setup, item_text=ctx.dataset.item_text,
            event_times=ctx.event_times(),
            extra_key={"defense": identifier, "defense_code": defense_code_version()},
            cache_label=f"{victim_spec.name}-{defense_spec.name}")
        stage.update(status="loaded from cache" if cached else f"{info.get('epochs_run', 0)} epochs")
    detection = None
    if "detection" in info:
        scores = np.asarray(info["detection"]["scores"], dtype=np.float64)
        flagged = np.zeros(len(scores), dtype=bool)
        flagged[np.asarray(info["detection"]["flagged"], dtype=np.int64)] = True
        detection = Detection(scores, flagged)
    info = {k: v for k, v in info.items() if k != "detection"}
    ctx.events.emit("defended_victim_ready", victim=victim_spec.label(), defense=label, what=what, seed=seed,
                    cached=cached, seconds=info.get("seconds_total"))
    return DefendedFit(victim, info, cached, detection, identifier)


def add_detection(row: Any, detection: "Detection | None", is_fake: np.ndarray) -> dict[str, float]:
    """Detector metrics of one defended training run into its row (one value per seed)."""
    from redteam.detection import detector_metrics

    if detection is None:
        return {}
    values = detector_metrics(detection.scores, detection.flagged, is_fake)
    for metric in ("detector_auc", "precision", "recall", "fpr"):
        if metric in values and np.isfinite(values[metric]):
            row.add(metric, float(values[metric]))
    return values


def add_roc_curve(ctx: RunContext, detection: "Detection | None", is_fake: np.ndarray, values: dict[str, float],
                  **where: Any) -> None:
    """The detector's ROC curve on one poisoned training set, for the report's ROC plot."""
    from redteam.detection import roc_points

    if detection is None or not np.isfinite(values.get("detector_auc", float("nan"))):
        return
    points = [{"fpr": a, "tpr": b} for a, b in roc_points(detection.scores, is_fake)]
    ctx.curves.append({**where, "metric": "roc", "auc": values["detector_auc"], "points": points})


def add_fit_cost(row: Any, fit: DefendedFit) -> None:
    row.add("train_seconds", float(fit.info.get("seconds_total") or fit.info.get("seconds") or 0.0))
