"""Gates on hand-built result rows: min/max/max_drop, unmatched gates, relative drops."""

from __future__ import annotations

import pytest

from redteam.gates import evaluate_gates
from redteam.scenario import Gate


def row(victim: str, defense: str, value: float, metric: str = "ndcg@10", attack: str = "none") -> dict:
    return {"dataset": "d", "victim": victim, "attack": attack, "defense": defense,
            "metrics": {metric: {"value": value, "ci_low": value, "ci_high": value}}}


ROWS = [
    row("sasrec", "none", 0.20),
    row("sasrec", "lorec", 0.18),  # 10% below the undefended row
    row("gru4rec", "none", 0.10),
    row("gru4rec", "lorec", 0.11),  # better than undefended: a negative drop
]


def outcomes(**gate) -> list[dict]:
    return evaluate_gates([Gate(**gate)], ROWS)


def test_min_and_max() -> None:
    [held] = outcomes(metric="ndcg@10", victim="sasrec", defense="none", min=0.15)
    assert held["held"] and held["value"] == 0.20 and held["reason"] == ""
    [failed] = outcomes(metric="ndcg@10", victim="sasrec", defense="none", min=0.25)
    assert not failed["held"] and "0.2 < min 0.25" in failed["reason"]
    [failed] = outcomes(metric="ndcg@10", victim="sasrec", defense="none", max=0.1)
    assert not failed["held"] and "0.2 > max 0.1" in failed["reason"]
    [held] = outcomes(metric="ndcg@10", victim="gru4rec", defense="lorec", min=0.05, max=0.2)
    assert held["held"]


def test_one_outcome_per_matching_row() -> None:
    results = outcomes(metric="ndcg@10", min=0.15)  # no scope: every row
    assert [(r["victim"], r["defense"], r["held"]) for r in results] == [
        ("sasrec", "none", True), ("sasrec", "lorec", True), ("gru4rec", "none", False), ("gru4rec", "lorec", False),
    ]


def test_gate_matching_no_row_fails() -> None:
    [result] = outcomes(metric="ndcg@10", victim="bert4rec", min=0.0)
    assert not result["held"] and result["reason"] == "no result row matches this gate"
    [result] = outcomes(metric="hr@99", victim="sasrec", defense="none", min=0.0)
    assert not result["held"] and "no metric 'hr@99'" in result["reason"]


def test_relative_drop() -> None:
    [held] = outcomes(metric="ndcg@10", victim="sasrec", defense="lorec", max_drop_vs="none", max_drop=0.15)
    assert held["held"] and held["relative_drop"] == pytest.approx(0.10)  # (0.20 - 0.18) / 0.20
    [failed] = outcomes(metric="ndcg@10", victim="sasrec", defense="lorec", max_drop_vs="none", max_drop=0.05)
    assert not failed["held"] and "drop 10.0% > 5% vs none" in failed["reason"]
    [better] = outcomes(metric="ndcg@10", victim="gru4rec", defense="lorec", max_drop_vs="none", max_drop=0.0)
    assert better["held"] and better["relative_drop"] == pytest.approx(-0.10)


def test_required_drop() -> None:
    """min_drop: a defense must cut the metric (an attack's success) by at least this share."""
    [held] = outcomes(metric="ndcg@10", victim="sasrec", defense="lorec", min_drop_vs="none", min_drop=0.05)
    assert held["held"] and held["relative_drop"] == pytest.approx(0.10)
    [failed] = outcomes(metric="ndcg@10", victim="sasrec", defense="lorec", min_drop_vs="none", min_drop=0.15)
    assert not failed["held"] and "drop 10.0% < 15% vs none" in failed["reason"]
    [rose] = outcomes(metric="ndcg@10", victim="gru4rec", defense="lorec", min_drop_vs="none", min_drop=0.0)
    assert not rose["held"] and "drop -10.0% < 0% vs none" in rose["reason"]
    [both] = outcomes(metric="ndcg@10", victim="sasrec", defense="lorec",
                      min_drop_vs="none", min_drop=0.05, max_drop_vs="none", max_drop=0.08)
    assert not both["held"] and both["reason"] == "drop 10.0% > 8% vs none"


def test_drop_needs_a_non_zero_reference() -> None:
    [result] = outcomes(metric="ndcg@10", victim="sasrec", defense="lorec", max_drop_vs="apr", max_drop=0.5)
    assert not result["held"] and "no reference row with defense=apr" in result["reason"]
    rows = [row("sasrec", "none", 0.0), row("sasrec", "lorec", 0.0)]
    [_, result] = evaluate_gates([Gate(metric="ndcg@10", max_drop_vs="none", max_drop=0.5)], rows)
    assert not result["held"] and "non-zero ndcg@10" in result["reason"]


def test_nan_never_holds() -> None:
    rows = [row("sasrec", "none", 0.2), row("sasrec", "lorec", float("nan"))]
    gates = [
        Gate(metric="ndcg@10", defense="lorec", min=0.0),
        Gate(metric="ndcg@10", defense="lorec", max=1.0),
        Gate(metric="ndcg@10", defense="lorec", max_drop_vs="none", max_drop=0.5),
        Gate(metric="ndcg@10", defense="lorec", min_drop_vs="none", min_drop=-1.0),
    ]
    assert [r["held"] for r in evaluate_gates(gates, rows)] == [False, False, False, False]
    nan_reference = [row("sasrec", "none", float("nan")), row("sasrec", "lorec", 0.2)]
    [result] = evaluate_gates([gates[2]], nan_reference)
    assert not result["held"]


def test_several_gates_keep_their_order() -> None:
    results = evaluate_gates(
        [Gate(metric="ndcg@10", victim="gru4rec", defense="none", min=0.05),
         Gate(metric="ndcg@10", victim="nobody", min=0.0)], ROWS)
    assert [r["held"] for r in results] == [True, False]
    assert results[0]["gate"] == "ndcg@10 >= 0.05 [victim=gru4rec, defense=none]"
