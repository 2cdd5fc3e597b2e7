"""The ``redteam`` command end to end: exit codes, one-line errors, run directory, cache, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

SCENARIO = {
    "name": "tiny",
    "seed": 3,
    "dataset": {"name": "synthetic", "users": 300, "items": 150},
    "victims": [{"name": "popularity"}, {"name": "sasrec", "epochs": 2, "hidden": 16}],
    "api": {"topk": 20},
    "eval": {"k": [10], "bootstrap": 50},
    "gates": [{"metric": "ndcg@10", "victim": "sasrec", "min": 0.0}],
    "runtime": {"threads": 1},
}


def write(tmp_path: Path, scenario: dict | str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(scenario if isinstance(scenario, str) else yaml.safe_dump(scenario, sort_keys=False))
    return path


def with_change(**change) -> dict:
    scenario = json.loads(json.dumps(SCENARIO))
    scenario.update(change)
    return scenario


def metrics_of(results: dict) -> dict:
    return {(r["victim"], r["defense"]): r["metrics"] for r in results["rows"]}


# --------------------------------------------------------------------------------------------
# Bad input: exit 2, one line on stderr, nothing written.

BAD = {
    "unknown-key": (with_change(victimz=[]), "victimz: unknown key (did you mean 'victims'?)"),
    "nested-key": (with_change(api={"topkk": 5}), "api.topkk: unknown key (did you mean 'topk'?)"),
    "wrong-type": (with_change(api={"topk": "many"}), "api.topk: Input should be a valid integer"),
    "budget": (with_change(api={"budget": -1}), "api.budget: Input should be greater than or equal to 0"),
    "victim-name": (with_change(victims=[{"name": "sasrek"}]),
                    "victims[0].name: unknown victim 'sasrek' (did you mean 'sasrec'?)"),
    "victim-param": (with_change(victims=[{"name": "sasrec", "hiden": 8}]),
                     "victims[0]: hiden: unknown key (did you mean 'hidden'?)"),
    "yaml": ("name: t\nvictims: [{name: sasrec}\n", "invalid YAML"),
    "csv-no-path": (with_change(dataset={"name": "csv"}), "dataset.path: required for dataset 'csv'"),
    "path-missing": (with_change(dataset={"name": "sequence-file", "path": "/nonexistent/seq.txt"}),
                     "path does not exist: /nonexistent/seq.txt"),
    "no-data-folder": (with_change(dataset={"name": "amazon-beauty"}), "dataset 'amazon-beauty': no data folder"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_scenario_exits_2_with_one_line(case, run_cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("REDTEAM_DATA_DIR", str(tmp_path / "no-data"))
    scenario, expected = BAD[case]
    result = run_cli("run", write(tmp_path, scenario), "--out", tmp_path / "runs", "-q")
    assert result.code == 2, result
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["missing.yaml"], "error: scenario file not found: missing.yaml"),
        (["s.yaml", "--set", "victims.9.epochs=1"], "error: --set victims.9.epochs: '9' is not an index"),
        (["s.yaml", "--set", "victim.epoch=1"],
         "error: --set victim.epoch: no victim takes 'epoch' (did you mean 'epochs'?)"),
        (["s.yaml", "--set", "api.topk=many"], "api.topk: Input should be a valid integer"),
        (["s.yaml", "--threads", "0"], "runtime.threads: Input should be greater than or equal to 1"),
    ],
)
def test_bad_command_line_exits_2(args, expected, run_cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, SCENARIO)
    result = run_cli("run", *args, "--out", tmp_path / "runs", "-q")
    assert result.code == 2, result
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


def test_list_victims_shows_aliases_and_parameters(run_cli) -> None:
    from redteam.registry import REGISTRY, resolve

    result = run_cli("list", "victims")
    assert result.code == 0, result
    params: dict[str, list[str]] = {}  # alias -> the lines of its parameter cell
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 3:
            if cells[0]:
                params[cells[0]] = []
            params[list(params)[-1]].append(cells[2])
    assert sorted(params) == sorted(REGISTRY["victims"])
    for alias, lines in params.items():
        fields = resolve("victims", alias).Params.model_fields
        assert [line.split(":")[0] for line in lines if line] == (list(fields) or ["-"])
    assert "epochs: int = 200" in params["sasrec"] and "mask_prob: float = 0.2" in params["bert4rec"]
    assert "heads: int = 1" in params["sasrec"] and "heads: int = 2" in params["bert4rec"]
    assert run_cli("list", "things").code == 2


# --------------------------------------------------------------------------------------------
# Runs


def test_run_end_to_end_cache_and_determinism(run_cli, tmp_path: Path) -> None:
    path = write(tmp_path, SCENARIO)
    out = tmp_path / "runs"
    first = run_cli("run", path, "--out", out, "-q")
    assert first.code == 0, first
    [run_dir] = out.iterdir()
    assert run_dir.name.startswith("tiny-")
    assert {"events.jsonl", "results.json", "scenario.resolved.yaml"} <= {p.name for p in run_dir.iterdir()}
    results = json.loads((run_dir / "results.json").read_text())
    assert run_dir.name == f"tiny-{results['fingerprint']}"
    assert [(r["victim"], r["attack"], r["defense"]) for r in results["rows"]] == [
        ("popularity", "none", "none"), ("sasrec", "none", "none")]
    ndcg = results["rows"][1]["metrics"]["ndcg@10"]
    assert 0.0 < ndcg["value"] < 1.0 and ndcg["ci_low"] <= ndcg["value"] <= ndcg["ci_high"]
    assert ndcg["n"] == results["protocol"]["test_users"] == 300
    per_user = np.load(run_dir / "per_user.npz", allow_pickle=False)
    assert per_user["sasrec|none|none|ndcg@10"].shape == (1, 300)
    assert per_user["sasrec|none|none|ndcg@10"].mean() == pytest.approx(ndcg["value"], rel=1e-5)
    assert results["protocol"]["ranking"] == "full ranking over all 150 items (no sampled negatives)"
    assert results["environment"]["threads"] == 1
    assert [g["held"] for g in results["gates"]] == [True]
    assert [f["cached"] for r in results["rows"] for f in r["info"]["fit"]] == [False, False]
    assert results["rows"][1]["info"]["fit"][0]["epochs_run"] == 2
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished" and kinds.count("epoch") == 2
    assert [(e["victim"], e["cached"]) for e in events if e["event"] == "victim_ready"] == [
        ("popularity", False), ("sasrec", False)]
    # The resolved scenario is a complete, loadable scenario with the same fingerprint.
    from redteam.scenario import load_scenario

    resolved = load_scenario(run_dir / "scenario.resolved.yaml")
    assert resolved.fingerprint() == results["fingerprint"]
    assert resolved.victims[1].options == {"epochs": 2, "hidden": 16}

    second = run_cli("run", path, "--out", out, "-q")
    assert second.code == 0, second
    assert [p.name for p in out.iterdir()] == [run_dir.name]  # same scenario, same directory
    again = json.loads((run_dir / "results.json").read_text())
    assert [f["cached"] for r in again["rows"] for f in r["info"]["fit"]] == [True, True]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["cached"] for e in events if e["event"] == "victim_ready"] == [True, True]
    assert "epoch" not in [e["event"] for e in events]  # nothing was trained
    assert metrics_of(again) == metrics_of(results)

    fresh = run_cli("run", path, "--out", out, "--no-cache", "--json")
    assert fresh.code == 0, fresh
    retrained = json.loads(fresh.stdout)  # --json: the whole of stdout is the results document
    assert [f["cached"] for r in retrained["rows"] for f in r["info"]["fit"]] == [False, False]
    assert metrics_of(retrained) == metrics_of(results)  # retrained from scratch: same numbers
    assert retrained == json.loads((run_dir / "results.json").read_text())


def test_gate_outcome_sets_the_exit_code(run_cli, tmp_path: Path) -> None:
    scenario = with_change(victims=[{"name": "popularity"}], eval={"k": [10], "bootstrap": 0})
    path = write(tmp_path, scenario)
    out = tmp_path / "runs"
    held = run_cli("run", path, "--out", out, "--set", "gates=[{metric: ndcg@10, victim: popularity, max: 0.9}]", "--json")
    assert held.code == 0, held
    assert [g["held"] for g in json.loads(held.stdout)["gates"]] == [True]
    failing = "gates=[{metric: ndcg@10, victim: popularity, min: 0.9}, {metric: ndcg@10, victim: popularity, max: 0.9}]"
    failed = run_cli("run", path, "--out", out, "--set", failing, "--json")
    assert failed.code == 1, failed
    gates = json.loads(failed.stdout)["gates"]
    assert [g["held"] for g in gates] == [False, True] and "< min 0.9" in gates[0]["reason"]
    unmatched = run_cli("run", path, "--out", out, "--set", "gates=[{metric: ndcg@10, victim: sasrec, min: 0}]", "-q")
    assert unmatched.code == 1, unmatched
    # Failed gates still write the run directory (the report is the point of the run).
    assert sum(1 for p in out.iterdir() if (p / "results.json").exists()) == 3


def test_report_on_stdout(run_cli, tmp_path: Path) -> None:
    scenario = with_change(victims=[{"name": "popularity"}], eval={"k": [10], "bootstrap": 0}, gates=[])
    result = run_cli("run", write(tmp_path, scenario), "--out", tmp_path / "runs")
    assert result.code == 0, result
    for text in ("protocol", "full ranking over all 150 items", "popularity", "ndcg@10", "run directory:"):
        assert text in result.stdout
