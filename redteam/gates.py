"""Gates: pass/fail bounds on result rows that decide a run's exit code."""

from __future__ import annotations

from typing import Any

from redteam.scenario import Gate


def _matches(gate: Gate, row: dict[str, Any]) -> bool:
    return all(getattr(gate, key) in (None, row[key]) for key in ("victim", "attack", "defense"))


def gate_label(gate: Gate) -> str:
    scope = ", ".join(f"{k}={getattr(gate, k)}" for k in ("victim", "attack", "defense") if getattr(gate, k))
    bounds = []
    if gate.min is not None:
        bounds.append(f">= {gate.min}")
    if gate.max is not None:
        bounds.append(f"<= {gate.max}")
    if gate.max_drop is not None:
        bounds.append(f"drop vs {gate.max_drop_vs} <= {gate.max_drop:.0%}")
    if gate.min_drop is not None:
        bounds.append(f"drop vs {gate.min_drop_vs} >= {gate.min_drop:.0%}")
    return f"{gate.metric} {' and '.join(bounds)}" + (f" [{scope}]" if scope else "")


def evaluate_gates(gates: list[Gate], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One outcome per (gate, matching row); a gate that matches no row fails."""
    outcomes = []
    for gate in gates:
        matched = [r for r in rows if _matches(gate, r)]
        if not matched:
            outcomes.append({"gate": gate_label(gate), "held": False, "reason": "no result row matches this gate"})
            continue
        for row in matched:
            outcomes.append(_check(gate, row, rows))
    return outcomes


def _check(gate: Gate, row: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    where = {k: row[k] for k in ("dataset", "victim", "attack", "defense")}
    base = {"gate": gate_label(gate), "metric": gate.metric, **where}
    metric = row["metrics"].get(gate.metric)
    if metric is None:
        return {**base, "held": False, "reason": f"row has no metric '{gate.metric}'"}
    value = metric["value"]
    reasons = []
    if gate.min is not None and not value >= gate.min:
        reasons.append(f"{value:.4g} < min {gate.min}")
    if gate.max is not None and not value <= gate.max:
        reasons.append(f"{value:.4g} > max {gate.max}")
    drop = None
    for reference, bound, holds, word in (
        (gate.max_drop_vs, gate.max_drop, lambda d, b: d <= b, ">"),
        (gate.min_drop_vs, gate.min_drop, lambda d, b: d >= b, "<"),
    ):
        if bound is None:
            continue
        drop = _relative_drop(gate.metric, row, rows, reference)
        if drop is None:
            reasons.append(f"no reference row with defense={reference} and a non-zero {gate.metric}")
        elif not holds(drop, bound):  # a NaN value or reference fails too
            reasons.append(f"drop {drop:.1%} {word} {bound:.0%} vs {reference}")
    return {**base, "value": value, "relative_drop": drop, "held": not reasons, "reason": "; ".join(reasons)}


def _relative_drop(metric: str, row: dict[str, Any], rows: list[dict[str, Any]], reference: str) -> float | None:
    """(reference - value) / reference, against the row of defense ``reference`` with the same
    dataset, victim and attack; None when there is no such row or its value is zero."""
    ref = next((r for r in rows if r["defense"] == reference and all(
        r[k] == row[k] for k in ("dataset", "victim", "attack"))), None)
    ref_value = ref["metrics"].get(metric, {}).get("value") if ref else None
    if not ref_value:
        return None
    return (ref_value - row["metrics"][metric]["value"]) / ref_value
