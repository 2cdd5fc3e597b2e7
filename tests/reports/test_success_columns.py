"""A stage's attack-success metric is a report column even when it is no built-in headline metric
(a new attack family's success metric shows up without touching the reports)."""

from __future__ import annotations

from redteam.reports.summary import metric_columns


def test_success_metric_of_a_new_family_is_a_column() -> None:
    rows = [{"metrics": {"ndcg@10": {}, "mrr@10": {}}}, {"metrics": {"target_hr@10": {}, "mrr@10": {}}}]
    assert metric_columns(rows) == ["ndcg@10"]
    assert metric_columns(rows, success=["target_hr@10", "agreement@10"]) == ["ndcg@10", "target_hr@10"]
    assert metric_columns(rows, all_metrics=True, success=["target_hr@10"]) == ["ndcg@10", "target_hr@10", "mrr@10"]
