"""The defense table: what each defense costs real users and takes from each attack, paired.

One row per (victim, defense): the change in clean HR/NDCG@K for real users served through the
defense, then for every attack its success metric under the defense and the change against the
undefended row, each with the paired bootstrap interval recorded in ``results.json``
(``rows[].paired``, see :mod:`redteam.paired`). The ablation table does the same for attack
rows paired with another attack (``vs``, ``rows[].paired_attack``). Shared by the terminal,
Markdown and HTML reports.
"""

from __future__ import annotations

import math
from typing import Any

from redteam.reports.roles import attack_families, row_family, success_metric
from redteam.reports.summary import short_name


def defense_effects(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) as text; no rows when no defended row was paired with an undefended one."""
    rows = [r for r in results.get("rows", []) if r.get("paired")]
    if not rows:
        return [], []
    k = (results.get("scenario", {}).get("eval", {}).get("k") or [10])[0]
    clean_metrics = [f"ndcg@{k}", f"hr@{k}"]
    families = attack_families(results)
    attacks = list(dict.fromkeys(r["attack"] for r in rows if r["attack"] != "none"))
    attack_metric = {a: success_metric(r, row_family(r, families)) for a in attacks
                     for r in rows if r["attack"] == a}
    head = ["victim", "defense", *(f"clean {short_name(m)} change" for m in clean_metrics),
            *(f"{a}: {short_name(attack_metric[a])} (change)" for a in attacks if attack_metric[a])]
    table = []
    pairs = list(dict.fromkeys((r["victim"], r["defense"]) for r in rows))
    by_key = {(r["victim"], r["attack"], r["defense"]): r for r in rows}
    for victim, defense in pairs:
        clean = by_key.get((victim, "none", defense))
        line = [victim, defense, *(change_text(clean, m) for m in clean_metrics)]
        line[2] += declared_cost_text(clean)
        for attack in attacks:
            metric = attack_metric[attack]
            if metric:
                row = by_key.get((victim, attack, defense))
                value = row["metrics"].get(metric, {}).get("value") if row else None
                line.append("-" if value is None else f"{value:.3f} ({change_text(row, metric)})" + detection_text(row))
        table.append(line)
    return head, table


def detection_text(row: dict[str, Any] | None) -> str:
    """What a detecting defense found on this attack's row: the stream detector's AUC over keys,
    or how often a watermark was found in the stolen surrogate (and in its clean-endpoint twin)."""
    metrics = (row or {}).get("metrics", {})
    text = ""
    if "detector_auc" in metrics:
        text += f"; detector AUC {metrics['detector_auc']['value']:.3f}"
    if "watermark_detected" in metrics:
        text += f"; watermark found {metrics['watermark_detected']['value']:.0%}"
        if "watermark_false_alarm" in metrics:
            text += f" (clean twin {metrics['watermark_false_alarm']['value']:.0%})"
    return text


def declared_cost_text(clean: dict[str, Any] | None) -> str:
    """A quota's declared clean cost: the share of replayed benign queries it refuses."""
    metrics = (clean or {}).get("metrics", {})
    if "benign_queries_refused" not in metrics:
        return ""
    return f"; benign queries refused {metrics['benign_queries_refused']['value']:.1%}"


def ablation_effects(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) as text: each attack row with ``vs`` against the attack it names, on its
    success metric, paired over the same users and randomness; no rows when none is paired."""
    rows = [r for r in results.get("rows", []) if r.get("paired_attack")]
    families = attack_families(results)
    table = []
    for row in rows:
        metric = success_metric(row, row_family(row, families))
        if not metric or metric not in row["paired_attack"]["metrics"]:
            continue
        value = row["metrics"].get(metric, {}).get("value")
        table.append([row["victim"], row["attack"], row["paired_attack"]["vs"], row["defense"], short_name(metric),
                      "-" if value is None else f"{value:.3f}", change_text(row, metric, field="paired_attack")])
    if not table:
        return [], []
    return ["victim", "attack", "vs", "defense", "metric", "value", "change [CI]"], table


def change_text(row: dict[str, Any] | None, metric: str, *, field: str = "paired") -> str:
    """``+0.012 [-0.003, +0.027]``: the paired change and its interval, or ``-``; with several
    seeds the t-interval over the seeds' own changes follows (``seeds t [-0.010, +0.034]``)."""
    paired = (row or {}).get(field, {}).get("metrics", {}).get(metric)
    if paired is None:
        return "-"
    text = f"{paired['diff']:+.3f} [{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}]"
    low, high = paired.get("seed_t_ci") or (None, None)
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
        text += f", seeds t [{low:+.3f}, {high:+.3f}]"
    return text
