"""What a metric means to a report: which one is an attack's success, which direction is worse.

Read-only views of a ``results.json`` document; nothing here imports torch or the components.
"""

from __future__ import annotations

from typing import Any, Literal

Direction = Literal["higher", "lower"]

# Each attack family's one attack-success metric: the y-axis of every trade-off table and plot.
ATTACK_SUCCESS: dict[str, str] = {"extraction": "agreement@10", "poisoning": "target_hr@50", "sts": "top1_rate"}
CLEAN_ACCURACY = "ndcg@10"

# The one table of metric roles: name before '@' -> (role, the direction that is worse for the
# defender). ``None``: neither direction is a regression (a cost, not a security property).
METRICS: dict[str, tuple[str, Direction | None]] = {
    "hr": ("clean accuracy", "lower"),
    "ndcg": ("clean accuracy", "lower"),
    "mrr": ("clean accuracy", "lower"),
    "agreement": ("attack success", "higher"),
    "target_hr": ("attack success", "higher"),
    "target_ndcg": ("attack success", "higher"),
    "top1_rate": ("attack success", "higher"),
    "top1_rate_seen": ("attack success", "higher"),
    "mean_rank": ("attack success", "lower"),
    "detection_rate": ("detection", "lower"),
    "advantage": ("attack success", "higher"),
    "disadvantage": ("attack success", "lower"),
    "attack_success_rate": ("attack success", "higher"),
    "detector_auc": ("detection", "lower"),
    "precision": ("detection", "lower"),
    "recall": ("detection", "lower"),
    "fpr": ("detection", "higher"),
    "benign_queries_refused": ("clean cost", "higher"),
    "benign_app_keys_limited": ("clean cost", "higher"),
    "benign_user_keys_limited": ("clean cost", "higher"),
    "queries": ("cost", None),
    "seconds": ("cost", None),
}

# Rows of an extraction attack score the stolen surrogate: its own HR/NDCG/MRR measure how well
# the attack did, so there a higher value is worse for the defender.
SURROGATE_FAMILIES = {"extraction"}


def metric_role(metric: str, family: str | None = None) -> tuple[str, Direction | None]:
    role, worse = METRICS.get(metric.split("@")[0], ("other", None))
    if role == "clean accuracy" and family in SURROGATE_FAMILIES:
        return "attack success (surrogate accuracy)", "higher"
    return role, worse


def worse_direction(metric: str, family: str | None = None) -> Direction | None:
    """``"higher"`` or ``"lower"``: which way ``metric`` moves when the defender is worse off."""
    return metric_role(metric, family)[1]


def attack_families(results: dict[str, Any]) -> dict[str, str]:
    """Attack label -> family (``extraction.fewshot`` -> ``extraction``), from the scenario."""
    out = {}
    for spec in results.get("scenario", {}).get("attacks", []) or []:
        name = str(spec.get("name", ""))
        out[str(spec.get("label", name))] = name.split(".")[0]
    return out


def row_family(row: dict[str, Any], families: dict[str, str]) -> str | None:
    attack = row.get("attack", "none")
    if attack == "none":
        return None
    return families.get(attack, attack.split(".")[0] if "." in attack else None)


def success_metric(row: dict[str, Any], family: str | None) -> str | None:
    """The row's attack-success metric (:func:`pick_success_metric` over the row's metrics)."""
    return pick_success_metric(family, row.get("metrics", {}))


def pick_success_metric(family: str | None, metrics: Any) -> str | None:
    """The family's attack-success metric among ``metrics``: at the family's usual cut-off or else
    the largest one there (``target_hr@10`` when the scenario scored K = 10 only); else the first
    success metric of any family there."""
    for wanted in ([ATTACK_SUCCESS[family]] if family in ATTACK_SUCCESS else []) + list(ATTACK_SUCCESS.values()):
        if wanted in metrics:
            return wanted
        same_kind = [m for m in metrics if m.split("@")[0] == wanted.split("@")[0] and "@" in wanted]
        if same_kind:
            return max(same_kind, key=success_order)
    return None


def success_order(metric: str) -> tuple[int, int]:
    """Sort key of attack-success metrics: the family order of ``ATTACK_SUCCESS``, then K."""
    kinds = [m.split("@")[0] for m in ATTACK_SUCCESS.values()]
    kind, _, k = metric.partition("@")
    return (kinds.index(kind) if kind in kinds else len(kinds), int(k) if k.isdigit() else 0)


def clean_reference(row: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row without the attack: same dataset and victim, attack ``none``, the same defense
    (falling back to defense ``none``)."""
    def find(defense: str) -> dict[str, Any] | None:
        return next((r for r in rows if r.get("attack") == "none" and r.get("defense") == defense
                     and r.get("victim") == row.get("victim") and r.get("dataset") == row.get("dataset")), None)

    return find(row.get("defense", "none")) or find("none")


def clean_metric(rows: list[dict[str, Any]]) -> str:
    """``ndcg@10``, or the run's smallest ``ndcg@K`` when it did not score K = 10."""
    present = {m for r in rows for m in r.get("metrics", {})}
    if CLEAN_ACCURACY in present:
        return CLEAN_ACCURACY
    ks = sorted(int(m.split("@")[1]) for m in present if m.startswith("ndcg@") and m.split("@")[1].isdigit())
    return f"ndcg@{ks[0]}" if ks else CLEAN_ACCURACY


def clean_accuracy(row: dict[str, Any], rows: list[dict[str, Any]], family: str | None,
                   metric: str = CLEAN_ACCURACY) -> dict[str, Any] | None:
    """The clean accuracy the defender keeps next to this attack row.

    Poisoning and text attacks score the attacked (and defended) system itself, so the row's own
    ``ndcg@10``. Extraction rows score the stolen surrogate; there the victim's own row (same
    defense) is the defender's clean accuracy.
    """
    if family not in SURROGATE_FAMILIES and metric in row.get("metrics", {}):
        return row["metrics"][metric]
    ref = clean_reference(row, rows)
    return ref["metrics"].get(metric) if ref else None
