"""``redteam compare``: deltas with bootstrap CIs, significance, regressions and exit codes.

No defense exists yet, so the "weakened defense" is played two ways: hand-built run directories
whose defended row lets more attack success through (per-user arrays drawn here), and two real
tiny runs where the second victim is trained for 1 epoch instead of 20 (a weakened system whose
clean accuracy drops).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from redteam.metrics import unpaired_bootstrap_diff
from redteam.reports.compare import Run, compare_runs, same_users
from redteam.reports.roles import worse_direction
from redteam.seeding import numpy_rng

from hand_built import defense_comparison

USERS = 1000


def write_run(folder: Path, results: dict, per_user: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    np.savez_compressed(folder / "per_user.npz", **per_user)
    return folder


def summarise(values: np.ndarray) -> dict:
    mean = float(values.mean())
    return {"value": mean, "ci_low": mean - 0.01, "ci_high": mean + 0.01, "per_seed": [mean], "n": int(values.size)}


def defended_run(folder: Path, *, leak: float, seed: int = 0, checksum: str = "0123456789abcdef") -> Path:
    """A run whose lorec row lets ``leak`` of the users' target exposure through (per-user 0/1 hits).

    Users are the same in every run (same arrays); a larger ``leak`` adds hits on top of the same
    base hits, as a weakened defense would.
    """
    rng = numpy_rng(0, "users")
    base = rng.random(USERS)
    ndcg = rng.random(USERS) * 0.5
    hits = {"none": (base < 0.40).astype(float), "lorec": (base < leak).astype(float)}
    results = defense_comparison()
    results["dataset"]["checksum"] = checksum
    results["scenario"]["seed"] = seed
    results["protocol"]["test_users"] = USERS
    per_user = {}
    for row in results["rows"]:
        key = f"{row['victim']}|{row['attack']}|{row['defense']}"
        if row["attack"] == "poisoning.bandwagon":
            row["metrics"]["target_hr@50"] = summarise(hits[row["defense"]])
            per_user[f"{key}|target_hr@50"] = hits[row["defense"]][None, :]
        if "ndcg@10" in row["metrics"]:
            row["metrics"]["ndcg@10"] = summarise(ndcg)
            per_user[f"{key}|ndcg@10"] = ndcg[None, :]
    return write_run(folder, results, per_user)


def delta(cmp, key: str, metric: str):
    (d,) = [d for d in cmp.deltas if "/".join((d.victim, d.attack, d.defense)) == key and d.metric == metric]
    return d


def test_weakened_defense_is_a_significant_regression_of_attack_success(tmp_path: Path) -> None:
    a = Run.load(defended_run(tmp_path / "a", leak=0.10))
    b = Run.load(defended_run(tmp_path / "b", leak=0.16))
    cmp = compare_runs(a, b, n_resamples=500)
    assert cmp.paired and "same data" in cmp.pairing
    d = delta(cmp, "sasrec/poisoning.bandwagon/lorec", "target_hr@50")
    assert d.test == "paired" and d.delta == pytest.approx(0.06, abs=0.01)
    assert d.low > 0 and d.significant and d.change == "worse" and d.worse_when == "higher"
    assert [(x.defense, x.metric) for x in cmp.regressions()] == [("lorec", "target_hr@50")]
    # Everything else is unchanged (same arrays): no test flags it.
    others = [x for x in cmp.deltas if x is not d]
    assert others and not any(x.significant for x in others)
    assert {x.test for x in others} == {"paired", "none"}  # queries/seconds have no per-user values
    # The other direction is an improvement, not a regression.
    back = compare_runs(b, a, n_resamples=500)
    assert delta(back, "sasrec/poisoning.bandwagon/lorec", "target_hr@50").change == "better" and not back.regressions()


def test_unpaired_when_the_runs_scored_different_users(tmp_path: Path) -> None:
    a = Run.load(defended_run(tmp_path / "a", leak=0.10))
    b = Run.load(defended_run(tmp_path / "b", leak=0.25, checksum="ffffffffffffffff"))
    cmp = compare_runs(a, b, n_resamples=500)
    assert not cmp.paired and cmp.pairing.startswith("different data")
    d = delta(cmp, "sasrec/poisoning.bandwagon/lorec", "target_hr@50")
    assert d.test == "unpaired" and d.change == "worse"


def test_same_users_needs_data_users_and_the_seed_that_drew_them() -> None:
    a = defense_comparison()
    assert same_users(a, copy.deepcopy(a))[0]
    for change, why in (
        (lambda r: r["dataset"].update(checksum="x"), "different data"),
        (lambda r: r["protocol"].update(test_users=1), "different numbers of test users"),
        (lambda r: r["scenario"].update(seed=99), "different root seeds"),  # the attacker's users differ
    ):
        b = copy.deepcopy(a)
        change(b)
        paired, reason = same_users(a, b)
        assert not paired and why in reason
    a["protocol"]["attacker_users"] = 0
    b = copy.deepcopy(a)
    b["scenario"]["seed"] = 99
    assert same_users(a, b)[0]  # no attacker users, no sample: every test user is scored


def test_direction_table() -> None:
    assert worse_direction("agreement@10") == worse_direction("target_hr@50") == worse_direction("top1_rate") == "higher"
    assert worse_direction("ndcg@10") == worse_direction("hr@50") == worse_direction("detector_auc") == "lower"
    assert worse_direction("fpr") == "higher"
    assert worse_direction("ndcg@10", "extraction") == "higher"  # the stolen surrogate's own accuracy
    assert worse_direction("ndcg@10", "poisoning") == "lower"
    assert worse_direction("queries") is None and worse_direction("seconds") is None


def test_unpaired_bootstrap_diff() -> None:
    rng = np.random.default_rng(0)
    diff, low, high, p = unpaired_bootstrap_diff(np.ones(50), np.zeros(80), rng=rng, n_resamples=200)
    assert (diff, low, high, p) == (1.0, 1.0, 1.0, 0.0)
    diff, low, high, p = unpaired_bootstrap_diff(np.array([0.0, 1.0] * 50), np.array([0.0, 1.0] * 40), rng=rng, n_resamples=200)
    assert diff == 0.0 and low < 0 < high and p == 1.0
    assert np.isnan(unpaired_bootstrap_diff(np.array([]), np.ones(3), rng=rng)[0])


# --------------------------------------------------------------------------------------------
# CLI on hand-built runs


def test_compare_cli_flags_the_weakened_defense(run_cli, tmp_path: Path) -> None:
    a = defended_run(tmp_path / "a", leak=0.10)
    b = defended_run(tmp_path / "b", leak=0.16)
    result = run_cli("compare", a, b, "--bootstrap", "300", "--fail-on-regression", "target_hr@50")
    assert result.code == 1, result
    line = next(x for x in result.stdout.splitlines() if "target_hr@50" in x and "worse" in x)
    assert "0.1090" in line and "0.1690" in line and "+0.0600" in line  # 10.9% -> 16.9% of users exposed
    assert "REGRESSION target_hr@50 significantly worse in 1 row(s): sasrec/poisoning.bandwagon/lorec" in result.stdout

    ok = run_cli("compare", a, b, "--bootstrap", "300", "--fail-on-regression", "ndcg@10", "--json")
    assert ok.code == 0, ok
    doc = json.loads(ok.stdout)
    assert doc["paired"] and not doc["failed"] and doc["regressions"] == []
    (flagged,) = [d for d in doc["deltas"] if d["significant"]]
    assert (flagged["defense"], flagged["metric"], flagged["change"]) == ("lorec", "target_hr@50", "worse")

    quiet = run_cli("compare", a, b, "--bootstrap", "300", "--fail-on-regression", "target_hr@50", "-q")
    assert quiet.code == 1 and quiet.stdout == ""
    only = run_cli("compare", a, b, "--bootstrap", "300", "--metric", "ndcg@10", "--json")
    assert {d["metric"] for d in json.loads(only.stdout)["deltas"]} == {"ndcg@10"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["{missing}", "{a}"], "error: run directory not found: "),
        (["{a}", "{empty}"], "no results.json (not a run directory)"),
        (["{a}", "{broken}"], "results.json: not valid JSON (line 1"),
        (["{a}", "{notresults}"], "not a redteam results file (missing 'scenario', 'rows')"),
        (["{a}", "{a}", "--fail-on-regression", "agreement@100"],
         "error: --fail-on-regression agreement@100: no row of both runs has this metric (did you mean 'agreement@10'?)"),
        (["{a}", "{a}", "--fail-on-regression", "queries"],
         "error: --fail-on-regression queries: neither direction of 'queries' is a regression"),
        (["{a}", "{a}", "--metric", "ndcg@100"], "error: --metric ndcg@100: no row of both runs has this metric"),
    ],
)
def test_compare_bad_input_exits_2_with_one_line(args, expected, run_cli, tmp_path: Path) -> None:
    paths = {"a": defended_run(tmp_path / "a", leak=0.1), "missing": tmp_path / "missing",
             "empty": tmp_path / "empty", "broken": tmp_path / "broken", "notresults": tmp_path / "notresults"}
    for name in ("empty", "broken", "notresults"):
        paths[name].mkdir()
    (paths["broken"] / "results.json").write_text("{not json")
    (paths["notresults"] / "results.json").write_text("[1, 2]")
    result = run_cli("compare", *[a.format(**paths) for a in args])
    assert result.code == 2, result
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------------------------
# Two real tiny runs: a victim trained 20 epochs, the same victim trained 1 epoch.

TINY = {
    "name": "cmp",
    "seed": 3,
    "dataset": {"name": "synthetic", "users": 400, "items": 150},
    "victim": {"name": "sasrec", "hidden": 32, "epochs": 20, "batch_size": 64},
    "api": {"topk": 20, "budget": 200},
    "attacks": [{"name": "extraction.random", "distill_epochs": 2, "curve": [], "surrogate_params": {"hidden": 16}}],
    "eval": {"k": [10], "bootstrap": 20},
    "runtime": {"threads": 1},
}


def test_compare_real_runs_weakened_victim_exits_1_identical_runs_exit_0(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(TINY))
    for out, extra in (("a", []), ("again", ["--no-cache"]), ("weak", ["--set", "victim.epochs=1"])):
        result = run_cli("run", path, "--out", tmp_path / out, "-q", *extra)
        assert result.code == 0, result
    (a,), (again,), (weak,) = [list((tmp_path / out).iterdir()) for out in ("a", "again", "weak")]

    same = run_cli("compare", a, again, "--fail-on-regression", "ndcg@10", "--fail-on-regression", "agreement@10", "--json")
    assert same.code == 0, same
    doc = json.loads(same.stdout)
    assert doc["paired"] and not doc["failed"] and doc["deltas"]
    assert not any(d["significant"] for d in doc["deltas"])
    assert all(d["delta"] == 0 for d in doc["deltas"] if d["metric"] != "seconds")  # retrained: same numbers

    worse = run_cli("compare", a, weak, "--fail-on-regression", "ndcg@10")
    assert worse.code == 1, worse
    doc = json.loads(run_cli("compare", a, weak, "--json").stdout)
    clean = [d for d in doc["deltas"] if (d["attack"], d["metric"]) == ("none", "ndcg@10")]
    assert len(clean) == 1 and clean[0]["significant"] and clean[0]["change"] == "worse" and clean[0]["high"] < 0
    assert doc["paired"] and clean[0]["test"] == "paired"
    assert "REGRESSION ndcg@10 significantly worse in 1 row(s): sasrec/none/none ndcg@10" in worse.stdout
