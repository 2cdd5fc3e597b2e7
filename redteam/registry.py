"""Alias -> "module:Class" tables; classes are imported only when a scenario names them.

A plugin is one file plus one line here (or a call to :func:`register`).
"""

from __future__ import annotations

import difflib
import re
import importlib
import typing
from typing import Any, Literal

from redteam.errors import ConfigError

Kind = Literal["victims", "attacks", "defenses"]

REGISTRY: dict[str, dict[str, str]] = {
    "victims": {
        "sasrec": "victims.sasrec:SASRec",
        "bert4rec": "victims.bert4rec:BERT4Rec",
        "gru4rec": "victims.gru4rec:GRU4Rec",
        "narm": "victims.narm:NARM",
        "hstu": "victims.hstu:HSTU",
        "text_sasrec": "victims.text_sasrec:TextSASRec",
        "popularity": "victims.popularity:Popularity",
        "ranker.embedding": "victims.embedding_ranker:EmbeddingRanker",
        "ranker.causal_lm": "victims.causal_lm_ranker:CausalLMRanker",
        "http": "victims.http_victim:HttpVictim",
    },
    "attacks": {
        "extraction.random": "attacks.extraction.random_sequences:RandomSequences",
        "extraction.autoregressive": "attacks.extraction.autoregressive:Autoregressive",
        "extraction.fewshot": "attacks.extraction.fewshot:FewShot",
        "poisoning.random": "attacks.poisoning.random_profiles:RandomProfiles",
        "poisoning.bandwagon": "attacks.poisoning.bandwagon:Bandwagon",
        "poisoning.segment": "attacks.poisoning.segment:Segment",
        "poisoning.surrogate": "attacks.poisoning.surrogate_guided:SurrogateGuided",
        "listing.stuffing": "attacks.listing.stuffing:KeywordStuffing",
        "listing.greedy": "attacks.listing.greedy:GreedyRewrite",
        "sts.gcg": "attacks.sts.gcg:GCGAttack",
        "sts.keyword_stuffing": "attacks.sts.keyword_stuffing:KeywordStuffing",
    },
    "defenses": {
        "none": "defenses.none:NoDefense",
        "lorec": "defenses.lorec:LoRec",
        "llm4dec": "defenses.llm4dec:LLM4Dec",
        "pca_varselect": "defenses.pca_varselect:PCAVarSelect",
        "isolation_forest": "defenses.feature_detector:FeatureIsolationForest",
        "apr": "defenses.apr:APR",
        "perplexity_filter": "defenses.text_filters:PerplexityFilter",
        "nonword_filter": "defenses.text_filters:NonWordFilter",
        "order_averaging": "defenses.order_averaging:OrderAveraging",
        "topk_truncation": "defenses.topk_truncation:TopKTruncation",
        "rank_noise": "defenses.rank_noise:RankNoise",
        "random_replacement": "defenses.random_replacement:RandomReplacement",
        "score_rounding": "defenses.score_rounding:ScoreRounding",
        "query_stream": "defenses.query_stream:QueryStreamDetector",
        "key_quota": "defenses.key_quota:KeyQuota",
        "aow": "defenses.aow:AOW",
    },
}


# Attack family -> the stage that runs its attacks (a new family: one stage module + one line here).
STAGES: dict[str, str] = {
    "extraction": "redteam.stages.extraction:ExtractionStage",
    "poisoning": "redteam.stages.poisoning:PoisoningStage",
    "listing": "redteam.stages.listing:ListingStage",
    "sts": "redteam.stages.text_ranking:TextRankingStage",
}


def resolve_stage(family: str, *, where: str = "attacks") -> Any:
    """The stage class that runs attacks of ``family``; ConfigError if no stage runs it."""
    if family not in STAGES:
        raise ConfigError(f"{where}: no stage runs attacks of the '{family}' family (known: {', '.join(sorted(STAGES))}); "
                          "register one in redteam.registry.STAGES")
    module_name, _, attr = STAGES[family].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def register(kind: Kind, alias: str, target: str) -> None:
    """Add a component: ``register("attacks", "my.attack", "mypkg.attack:MyAttack")``."""
    REGISTRY[kind][alias] = target


def did_you_mean(word: str, options: list[str] | tuple[str, ...] | set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def resolve(kind: Kind, alias: str, *, where: str = "") -> Any:
    """The class registered under ``alias``; ConfigError naming ``where`` if unknown."""
    table = REGISTRY[kind]
    if alias not in table:
        known = ", ".join(sorted(table)) or "none yet"
        raise ConfigError(f"{where or kind}: unknown {kind[:-1]} '{alias}'{did_you_mean(alias, table)}; known: {known}")
    module_name, _, attr = table[alias].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def type_name(annotation: Any) -> str:
    """``int``, ``list[float]``, ``Literal['ce', 'sampled']``: readable, with the allowed values."""
    if not typing.get_args(annotation) and hasattr(annotation, "__name__"):
        return annotation.__name__
    # Classes inside a Union print with their module path: keep the class name only.
    return re.sub(r"\b(?:[a-z_][a-z0-9_]*\.)+([A-Z]\w*)", r"\1", str(annotation).replace("typing.", ""))


def describe(kind: Kind) -> list[dict[str, Any]]:
    """One entry per component: alias, one-line summary, declared parameters with defaults."""
    rows = []
    for alias in sorted(REGISTRY[kind]):
        cls = resolve(kind, alias)
        doc = (cls.__doc__ or "").strip().splitlines()
        params = []
        for name, field in cls.Params.model_fields.items():
            params.append({"name": name, "type": type_name(field.annotation), "default": field.get_default(call_default_factory=True),
                           "description": field.description or ""})
        rows.append({"alias": alias, "summary": doc[0] if doc else "", "params": params})
    return rows
