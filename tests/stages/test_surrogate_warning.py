"""A stolen surrogate that ranks worse than a bestseller list is flagged in results.json and in
every report, not left to look like a finished attack."""

from __future__ import annotations

import yaml
from results_json import results_of

STARVED = {
    "name": "starved", "seed": 1,
    "dataset": {"name": "synthetic", "users": 300, "items": 120},
    "victim": {"name": "popularity"},
    "api": {"topk": 10, "budget": 15},  # fifteen queries: nothing to learn from
    "attacks": [{"name": "extraction.random", "distill_epochs": 1, "distill_min_epochs": 0, "curve": [],
                 "surrogate": "sasrec", "surrogate_params": {"hidden": 16}}],
    "eval": {"k": [10], "bootstrap": 0},
    "runtime": {"threads": 1},
}


def test_a_surrogate_below_popularity_gets_a_warning_in_results_and_reports(run_cli, tmp_path) -> None:
    from redteam.reports.html import render_html
    from redteam.reports.markdown import render_markdown

    path = tmp_path / "starved.yaml"
    path.write_text(yaml.safe_dump(STARVED))
    result = run_cli("run", path, "--out", tmp_path / "out")
    assert result.code == 0, result.stderr
    results = results_of(tmp_path / "out")
    (row,) = [r for r in results["rows"] if r["attack"] == "extraction.random"]
    (warning,) = row["info"]["warnings"]
    assert "below the popularity ranking's" in warning and "NDCG@10" in warning
    assert "warning" in result.stdout and "below the popularity ranking" in result.stdout
    assert "below the popularity ranking" in render_markdown(results)
    assert 'id="warnings"' in render_html(results)
