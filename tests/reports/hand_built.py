"""A hand-built results.json of a defense comparison: what the report formats read.

Rows: a SASRec victim without and with the ``lorec`` defense (clean rows, with the targets'
exposure before any attack), an extraction attack, and a poisoning attack under each defense.
Curves: an extraction budget curve and a detector ROC curve. Gates: two held, two failed.
"""

from __future__ import annotations


def metric(value: float, low: float | None = None, high: float | None = None, n: int = 500) -> dict:
    low = value if low is None else low
    high = value if high is None else high
    return {"value": value, "ci_low": low, "ci_high": high, "std_over_seeds": 0.0, "per_seed": [value], "n": n}


def row(victim: str, attack: str, defense: str, **metrics: dict) -> dict:
    return {"dataset": "synthetic", "victim": victim, "attack": attack, "defense": defense,
            "metrics": {name.replace("_at_", "@"): m for name, m in metrics.items()}, "info": {}}


def defense_comparison() -> dict:
    rows = [
        row("sasrec", "none", "none", ndcg_at_10=metric(0.30, 0.27, 0.33), hr_at_10=metric(0.50, 0.46, 0.54),
            target_hr_at_50=metric(0.02, 0.01, 0.03)),
        row("sasrec", "none", "lorec", ndcg_at_10=metric(0.28, 0.25, 0.31), hr_at_10=metric(0.47, 0.43, 0.51),
            target_hr_at_50=metric(0.02, 0.01, 0.03)),
        row("sasrec", "extraction.fewshot", "none", agreement_at_10=metric(0.62, 0.60, 0.64),
            ndcg_at_10=metric(0.25, 0.22, 0.28), queries=metric(20000.0), seconds=metric(12.5)),
        row("sasrec", "poisoning.bandwagon", "none", target_hr_at_50=metric(0.40, 0.35, 0.45),
            ndcg_at_10=metric(0.29, 0.26, 0.32)),
        row("sasrec", "poisoning.bandwagon", "lorec", target_hr_at_50=metric(0.10, 0.07, 0.13),
            ndcg_at_10=metric(0.27, 0.24, 0.30)),
    ]
    gates = [
        {"gate": "agreement@10 <= 0.8 [attack=extraction.fewshot]", "metric": "agreement@10", "dataset": "synthetic",
         "victim": "sasrec", "attack": "extraction.fewshot", "defense": "none", "value": 0.62, "relative_drop": None,
         "held": True, "reason": ""},
        {"gate": "target_hr@50 <= 0.2 [attack=poisoning.bandwagon]", "metric": "target_hr@50", "dataset": "synthetic",
         "victim": "sasrec", "attack": "poisoning.bandwagon", "defense": "none", "value": 0.40, "relative_drop": None,
         "held": False, "reason": "0.4 > max 0.2"},
        {"gate": "target_hr@50 <= 0.2 [attack=poisoning.bandwagon]", "metric": "target_hr@50", "dataset": "synthetic",
         "victim": "sasrec", "attack": "poisoning.bandwagon", "defense": "lorec", "value": 0.10, "relative_drop": None,
         "held": True, "reason": ""},
        {"gate": "ndcg@10 >= 0.1 [defense=dp]", "held": False, "reason": "no result row matches this gate"},
    ]
    curves = [
        {"victim": "sasrec", "attack": "extraction.fewshot", "seed": 7, "metric": "agreement@10",
         "points": [{"queries": 5000, "agreement@10": 0.41}, {"queries": 10000, "agreement@10": 0.55},
                    {"queries": 20000, "agreement@10": 0.62}]},
        {"victim": "sasrec", "attack": "poisoning.bandwagon", "defense": "lorec", "seed": 7, "metric": "roc", "auc": 0.86,
         "points": [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.05, "tpr": 0.52}, {"fpr": 0.2, "tpr": 0.81},
                    {"fpr": 0.5, "tpr": 0.95}, {"fpr": 1.0, "tpr": 1.0}]},
    ]
    return {
        "scenario": {"name": "defense-comparison", "description": "Hand-built results of a defense comparison.",
                     "attacks": [{"name": "extraction.fewshot"}, {"name": "poisoning.bandwagon"}],
                     "eval": {"k": [10, 50], "bootstrap": 1000, "confidence": 0.95},
                     "attacker": {"seeds": None}},
        "fingerprint": "abc123def0",
        "protocol": {"split": "leave-one-out: last item = test, second-to-last = validation, rest = training",
                     "ranking": "full ranking over all 1000 items (no sampled negatives)", "excluded": "padding only",
                     "ties": "broken against the target (pessimistic)", "k": [10, 50], "test_users": 1800,
                     "attacker_users": 200, "seeds": [7], "ci": "95% percentile bootstrap over users, 1000 resamples"},
        "dataset": {"name": "synthetic", "users": 2000, "items": 1000, "interactions": 24000, "checksum": "0123456789abcdef"},
        "environment": {"redteam": "0.1.0", "code_version": "0.1.0+test", "python": "3.11.7", "torch": "2.13.0+cpu",
                        "numpy": "2.4.6", "threads": 2, "device": "cpu"},
        "timings": {"data_seconds": 0.1, "total_seconds": 42.0},
        "attacker": {"few_shot_users": 200, "api": {"topk": 100, "budget": 20000, "expose_scores": False}},
        "rows": rows,
        "curves": curves,
        "gates": gates,
    }




def crowded() -> dict:
    """The defense comparison grown until every plot is crowded: two victims (one with a long
    name), three attacks (one with a long name) under five defenses, six GCG loss curves with long
    target texts: long legends (outside the axes), wrapped labels, horizontal exposure bars."""
    results = defense_comparison()
    for victim in ("sasrec", "hstu-with-a-long-victim-name"):
        for i, defense in enumerate(("none", "lorec", "isolation_forest", "pca_varselect", "dp")):
            results["rows"].append(row(victim, "none", defense, ndcg_at_10=metric(0.30 - 0.01 * i, 0.28 - 0.01 * i, 0.32 - 0.01 * i),
                                       target_hr_at_50=metric(0.02, 0.01, 0.03)))
            for j, attack in enumerate(("poisoning.bandwagon", "poisoning.random", "poisoning.segment_with_a_long_name")):
                hr = 0.45 - 0.08 * i - 0.03 * j
                results["rows"].append(row(victim, attack, defense, target_hr_at_50=metric(hr, hr - 0.05, hr + 0.05),
                                           ndcg_at_10=metric(0.28 - 0.01 * i, 0.25 - 0.01 * i, 0.31 - 0.01 * i)))
    for seed in range(6):
        results["curves"].append({
            "victim": "minilm", "attack": "sts.gcg", "seed": seed, "metric": "gcg_loss",
            "target": f"a rather long product title of target item number {seed}",
            "points": [{"step": s, "loss": 5.0 - 0.03 * s + 0.1 * (s % 3) + 0.05 * seed} for s in range(60)]})
    return results
