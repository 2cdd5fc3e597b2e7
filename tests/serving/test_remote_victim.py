"""`victims: [{name: http, ...}]`: a recommender the testbed does not own, attacked at its endpoint.
A platform team's path: `redteam serve` (here a real child process) stands in for its staging
service; the scenario knows only the URL and a key read from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from fault_server import N_ITEMS, fault_server

KEY = "platform-staging-key-0123456789"


def scenario(tmp_path: Path, name: str, victim: dict, *, items: int, **extra) -> Path:
    body = {"name": name, "seed": 3, "dataset": {"name": "synthetic", "users": 300, "items": items},
            "victim": victim, "api": {"topk": 20, "budget": 600}, "attacker": {"few_shot_ratio": 0.1},
            "attacks": [{"name": "extraction.fewshot", "distill_epochs": 2, "curve": []}],
            "eval": {"k": [10], "bootstrap": 0}, "runtime": {"threads": 1}, **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_attack_your_own_recommender_at_its_endpoint(run_cli, tmp_path, monkeypatch, model_dir) -> None:
    from redteam.serving.launcher import ServerProcess
    from redteam.serving.ledger import Ledger
    from redteam.serving.serve_settings import ServeSettings

    ledger = tmp_path / "books.sqlite"
    monkeypatch.setenv("STAGING_API_KEY", KEY)
    victim = {"name": "http", "headers": {"Authorization": "Bearer {{env.STAGING_API_KEY}}"}, "concurrency": 2}
    with ServerProcess(model_dir, ServeSettings(topk=20, budget=5000, ledger=ledger), keys={"red-team": KEY}) as server:
        path = scenario(tmp_path, "staging", {**victim, "url": f"{server.url}/v1/recommend"}, items=150)
        result = run_cli("run", path, "-q", "--out", tmp_path / "runs")
        server_log = (server._dir / "server.log").read_text()
    assert result.code == 0, result.stderr
    run_dir = next((tmp_path / "runs").glob("staging-*"))
    results = json.loads((run_dir / "results.json").read_text())
    clean = next(r for r in results["rows"] if r["attack"] == "none")
    stolen = next(r for r in results["rows"] if r["attack"] == "extraction.fewshot")
    assert "full-catalog metrics were not available" in clean["info"]["evaluation"]
    assert 0 < clean["metrics"]["ndcg@10"]["value"] <= 1
    assert stolen["metrics"]["agreement@10"]["value"] > 0.05  # better than chance (10/150 of the list's members)
    assert stolen["info"]["extraction"][0]["queries"] <= 600
    books = Ledger(ledger).counts()["red-team"]
    assert books["used"] == books["logged"] >= stolen["info"]["extraction"][0]["queries"]
    # the evaluation users are bought once (clean row and agreement reference share the answers)
    assert books["used"] == stolen["info"]["extraction"][0]["queries"] + clean["metrics"]["ndcg@10"]["n"]
    assert run_cli("report", run_dir, "--format", "md", "-o", tmp_path / "report.md").code == 0
    assert "full-catalog metrics were not available" in (tmp_path / "report.md").read_text()
    assert KEY not in json.dumps(results) and KEY not in server_log


def test_a_failing_endpoint_stops_the_run_with_one_line_and_exit_2(run_cli, tmp_path) -> None:
    with fault_server(["503"] * 10) as server:
        victim = {"name": "http", "url": f"{server.url}/recs", "n_items": N_ITEMS, "max_k": 10, "max_retries": 1,
                  "backoff_s": 0.01}
        result = run_cli("run", scenario(tmp_path, "down", victim, items=N_ITEMS, api={"topk": 10, "budget": 100}),
                         "-q", "--out", tmp_path / "runs")
    assert result.code == 2
    line = result.stderr.strip()
    assert "\n" not in line and f"POST {server.url}/recs: HTTP 503" in line, line
    assert not list((tmp_path / "runs").glob("down-*/results.json"))


def test_a_remote_victim_refuses_attacks_that_retrain_it(run_cli, tmp_path) -> None:
    victim = {"name": "http", "n_items": 150, "max_k": 20}
    path = scenario(tmp_path, "poison", victim, items=150)
    body = yaml.safe_load(path.read_text())
    body["attacks"] = [{"name": "poisoning.random"}]
    path.write_text(yaml.safe_dump(body))
    result = run_cli("run", path, "-q", "--out", tmp_path / "runs")
    assert result.code == 2 and "retrains the victim" in result.stderr
