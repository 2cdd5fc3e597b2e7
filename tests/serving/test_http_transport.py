"""``api: {transport: http}``: the runner serves each victim with `redteam serve` in a child process
and every attack crosses the process boundary; the numbers are those of the in-process run. A run
cut off mid-extraction (its server killed) resumes from its transcript without buying answers twice."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import yaml

SCENARIO = {
    "name": "http-transport", "seed": 5, "dataset": {"name": "synthetic", "users": 300, "items": 150},
    "victim": {"name": "sasrec", "epochs": 2, "hidden": 16, "max_len": 20},
    "api": {"topk": 20, "budget": 1200, "http_batch_size": 50},
    "attacker": {"few_shot_ratio": 0.1},
    "attacks": [{"name": "extraction.fewshot", "distill_epochs": 2, "curve": []},
                {"name": "extraction.random", "distill_epochs": 2, "curve": [], "length": 20}],
    "eval": {"k": [10], "bootstrap": 0}, "runtime": {"threads": 1},
}


def run(run_cli, tmp_path: Path, name: str, **api) -> tuple[int, dict | None, str]:
    scenario = {**SCENARIO, "name": name, "api": {**SCENARIO["api"], **api}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = run_cli("run", path, "-q", "--out", tmp_path / "runs")
    runs = sorted((tmp_path / "runs").glob(f"{name}-*/results.json"))
    return result.code, (json.loads(runs[-1].read_text()) if runs else None), result.stderr


def metrics(results: dict) -> dict:
    return {(r["victim"], r["attack"], r["defense"]): {m: v["value"] for m, v in r["metrics"].items() if m != "seconds"}
            for r in results["rows"]}


def extraction_info(results: dict) -> dict:
    return {r["attack"]: r["info"]["extraction"][0] for r in results["rows"] if r["attack"] != "none"}


def test_http_transport_gives_the_in_process_numbers(run_cli, tmp_path) -> None:
    code_local, local, _ = run(run_cli, tmp_path, "local")
    code_http, remote, err = run(run_cli, tmp_path, "remote", transport="http")
    assert code_local == code_http == 0, err
    assert metrics(remote) == metrics(local)  # the same answers for the same histories: the same surrogates
    for attack, info in extraction_info(remote).items():
        assert info["transport"] == "http" and info["queries_sent_live"] == info["queries"] > 0
        assert info["queries_replayed"] == 0 and info["http_requests"] >= info["queries"] / 50
        assert "transport" not in extraction_info(local)[attack]


def test_a_run_whose_server_dies_resumes_from_its_transcript(run_cli, tmp_path, monkeypatch) -> None:
    """The first run's server is SIGKILLed after a few requests and stays dead: the run ends with a
    one-line error (exit 2). The same command again finishes, replaying the answers bought before,
    and the server's books hold each query once."""
    from redteam.serving import launcher
    from redteam.serving.ledger import Ledger

    started: list = []
    real_start = launcher.ServerProcess.start

    def recording_start(self):
        started.append(self)
        return real_start(self)

    monkeypatch.setattr(launcher.ServerProcess, "start", recording_start)

    def kill_after(requests: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if started and started[0].settings.ledger.exists():
                counts = Ledger(started[0].settings.ledger).counts().get("runner", {"requests": 0})
                if counts["requests"] >= requests:
                    started[0].kill()
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_after, args=(5,), daemon=True)
    killer.start()
    code, results, err = run(run_cli, tmp_path, "resume", transport="http")
    killer.join(timeout=5)
    assert code == 2 and results is None, err
    assert "http://127.0.0.1:" in err and len(err.strip().splitlines()) == 1
    ledger = started[0].settings.ledger
    assert started[0].settings.port == 0  # each served victim on a free port, never a fixed one
    bought = Ledger(ledger).counts()["runner"]["used"]
    assert 0 < bought < SCENARIO["api"]["budget"]

    started.clear()
    code, resumed, err = run(run_cli, tmp_path, "resume", transport="http")
    assert code == 0, err
    first = extraction_info(resumed)["extraction.fewshot"]
    # a request charged by the server whose answer was lost in the kill is replayed by the server, not charged again
    assert 0 < first["queries_replayed"] <= bought
    assert first["queries_from_journal"] > 0  # answers the client had journaled cost no request at all
    assert first["queries_replayed"] + first["queries_sent_live"] == first["queries"]
    books = Ledger(ledger).counts()["runner"]
    assert books["used"] == books["logged"] == first["queries"]  # each query charged and logged once
    _, local, _ = run(run_cli, tmp_path, "resume-local")
    assert metrics(resumed) == metrics(local)


def test_serving_defenses_answer_alike_in_process_and_over_http(run_cli, tmp_path) -> None:
    """Keyed perturbation and truncation live in the server over HTTP: the same numbers as in process
    (the truncated lists cross the wire shorter than the API's top-k)."""
    extra = {"attacks": [SCENARIO["attacks"][1]],
             "defenses": [{"name": "none"}, {"name": "topk_truncation", "keep": 10},
                          {"name": "random_replacement", "share": 0.3}]}
    scenario = {**SCENARIO, **extra}
    outcomes = {}
    for name, transport in (("def-local", "inprocess"), ("def-http", "http")):
        body = {**scenario, "name": name, "api": {**scenario["api"], "transport": transport}}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(body))
        result = run_cli("run", path, "-q", "--out", tmp_path / "runs")
        assert result.code == 0, result.stderr
        outcomes[name] = json.loads(next((tmp_path / "runs").glob(f"{name}-*/results.json")).read_text())
    assert metrics(outcomes["def-http"]) == metrics(outcomes["def-local"])
    defended = {r["defense"] for r in outcomes["def-http"]["rows"] if r["attack"] != "none"}
    assert defended == {"none", "topk_truncation", "random_replacement"}
