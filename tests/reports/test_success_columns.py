"""A stage's attack-success metric is a report column even when it is no built-in headline metric
(a new attack family's success metric shows up without touching the reports)."""

from __future__ import annotations

from redteam.reports.summary import metric_columns


def test_success_metric_of_a_new_family_is_a_column() -> None:
    rows = [{"metrics": {"ndcg@10": {}, "mrr@10": {}}}, {"metrics": {"target_hr@10": {}, "mrr@10": {}}}]
    assert metric_columns(rows) == ["ndcg@10"]
    assert metric_columns(rows, success=["target_hr@10", "agreement@10"]) == ["ndcg@10", "target_hr@10"]
    assert metric_columns(rows, all_metrics=True, success=["target_hr@10"]) == ["ndcg@10", "target_hr@10", "mrr@10"]


def test_a_poisoning_or_listing_run_scored_at_another_k_has_that_success_metric() -> None:
    from redteam.reports.roles import success_metric, success_order
    from redteam.scenario import build_scenario
    from redteam.stages.extraction import ExtractionStage
    from redteam.stages.listing import ListingStage
    from redteam.stages.poisoning import PoisoningStage

    scenario = build_scenario({"name": "t", "dataset": {"name": "synthetic", "users": 50, "items": 30},
                               "victims": [{"name": "sasrec"}], "attacks": [{"name": "poisoning.random"}],
                               "poisoning": {"k": [5, 10]}})
    assert PoisoningStage.success_metric_for(scenario) == ListingStage.success_metric_for(scenario) == "target_hr@10"
    for ks, expected in (([50, 100], "target_hr@50"), ([20, 10], "target_hr@20")):  # as the reports pick it below
        other = scenario.model_copy(update={"poisoning": scenario.poisoning.model_copy(update={"k": ks})})
        assert PoisoningStage.success_metric_for(other) == expected
        assert success_metric({"metrics": {f"target_hr@{k}": {} for k in ks}}, "poisoning") == expected
    assert ExtractionStage.success_metric_for(scenario) == "agreement@10"
    row = {"metrics": {"target_hr@5": {}, "target_hr@10": {}, "target_ndcg@10": {}, "ndcg@10": {}}}
    assert success_metric(row, "poisoning") == success_metric(row, "listing") == "target_hr@10"
    assert success_metric({"metrics": {"target_hr@50": {}, "target_hr@10": {}}}, "poisoning") == "target_hr@50"
    assert success_metric({"metrics": {"ndcg@10": {}}}, "poisoning") is None
    assert sorted(["top1_rate", "target_hr@10", "agreement@5"], key=success_order) == ["agreement@5", "target_hr@10", "top1_rate"]
