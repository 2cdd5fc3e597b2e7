"""The unit plan, and the Ray executor on a real two-node Ray cluster on loopback.

The cluster (two raylets with one CPU each, ``ray.cluster_utils.Cluster``) is started by the
module fixture and always torn down. A small attacks x defenses scenario (extraction with a
serving defense, random and surrogate-guided poisoning under a detector, two attacker seeds) is
run serially with one thread and on the cluster; the rows, curves and sections must be the same.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from results_json import results_of, without_timings

TINY = {
    "name": "units-tiny",
    "seed": 11,
    "dataset": {"name": "synthetic", "users": 300, "items": 120},
    "victim": {"name": "sasrec", "hidden": 16, "epochs": 3, "batch_size": 64, "patience": 2},
    "api": {"topk": 20, "budget": 600, "expose_scores": False},
    "attacker": {"few_shot_ratio": 0.1, "knows_architecture": True, "seeds": [1, 2]},
    "attacks": [
        {"name": "extraction.fewshot", "distill_epochs": 2, "sampler_epochs": 1, "curve": [0.5]},
        {"name": "poisoning.random"},
        {"name": "poisoning.surrogate", "surrogate": {"from": "extraction.fewshot"}},
    ],
    "poisoning": {"targets": 3, "fake_share": 0.05},
    "defenses": [{"name": "none"}, {"name": "random_replacement", "share": 0.1},
                 {"name": "isolation_forest", "flag_share": 0.05}],
    "eval": {"k": [10], "bootstrap": 200},
    "runtime": {"threads": 1},
    "output": {"dir": "runs", "formats": ["json"]},
}


def test_plan_keeps_linked_attacks_together_and_numbers_every_serial_step() -> None:
    from redteam.executors.units import plan_units
    from redteam.scenario import build_scenario

    plan = plan_units(build_scenario(TINY))
    titles = [u.title for u in plan.units]
    assert titles == [
        "train sasrec (seed 11)",
        "sasrec (seed 11), attacker seed 1: extraction.fewshot + poisoning.surrogate",
        "sasrec (seed 11), attacker seed 2: extraction.fewshot + poisoning.surrogate",
        "sasrec (seed 11), attacker seed 1: poisoning.random",
        "sasrec (seed 11), attacker seed 2: poisoning.random",
        # the detector retrains each poisoned training set in a unit of its own
        "sasrec (seed 11), attacker seed 1: poisoning.random under isolation_forest",
        "sasrec (seed 11), attacker seed 2: poisoning.random under isolation_forest",
        "sasrec (seed 11), attacker seed 1: poisoning.surrogate under isolation_forest",
        "sasrec (seed 11), attacker seed 2: poisoning.surrogate under isolation_forest",
    ]
    # 1 victim step + 3 attacks x 2 attacker seeds, each numbered once, in the serial loop's order:
    # extraction (seeds 1, 2), then poisoning.random (1, 2), then poisoning.surrogate (1, 2)
    steps = [s for u in plan.units for s in u.steps]
    assert sorted({s.index for s in steps}) == list(range(7))
    assert sorted(s.order for s in steps if s.defense >= 0) == [(3, 1), (4, 1), (5, 1), (6, 1)]
    chain = plan.units[1]
    assert [(s.index, s.attack, s.attack_seed, s.core_only) for s in chain.steps] == [(1, 0, 1, False), (5, 2, 1, True)]
    assert all(u.needs == ("victim-0-seed11",) for u in plan.units[1:5]) and plan.units[0].needs == ()
    assert plan.units[7].needs == ("victim-0-seed11", chain.id) and plan.units[7].steps[0].defense == 2


def test_ray_refuses_text_scenarios_and_a_disabled_cache(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    result = run_cli("run", path, "-q", "--executor", "ray", "--no-cache", "--out", tmp_path / "runs")
    assert result.code == 2 and "runtime.executor: ray needs the cache" in result.stderr
    assert not (tmp_path / "runs").exists()
    result = run_cli("run", path, "-q", "--executor", "dask")
    assert result.code == 2 and "runtime.executor" in result.stderr


@pytest.fixture(scope="module")
def two_node_cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'redteam[ray]')")
    from ray.cluster_utils import Cluster

    # the nodes start without the driver's data and cache folders, as on a cluster of other machines
    hidden = {name: os.environ.pop(name) for name in ("REDTEAM_DATA_DIR", "REDTEAM_CACHE_DIR") if name in os.environ}
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    finally:
        os.environ.update(hidden)
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def test_ray_run_on_two_nodes_equals_the_serial_run_and_resumes(run_cli, tmp_path: Path, two_node_cluster) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    assert run_cli("run", path, "-q", "--out", tmp_path / "serial").code == 0
    serial = results_of(tmp_path / "serial")
    shutil.rmtree(tmp_path / "cache")  # the Ray run trains its own victim

    assert run_cli("run", path, "-q", "--executor", "ray", "--address", two_node_cluster,
                   "--out", tmp_path / "ray").code == 0
    on_ray = results_of(tmp_path / "ray")
    assert on_ray["fingerprint"] == serial["fingerprint"]
    assert [(r["attack"], r["defense"]) for r in on_ray["rows"]] == [(r["attack"], r["defense"]) for r in serial["rows"]]
    assert without_timings(on_ray) == without_timings(serial)
    units = on_ray["timings"]["units"]
    assert len(units) == 9 and len({u["node"] for u in units.values()}) == 2  # both nodes ran units

    # interrupted sweep: one unit's record lost; a rerun runs that unit only and merges the same rows
    (record,) = (tmp_path / "cache" / "units").glob("*/attacks-0-seed11-attacker2-group1-*/record.json")
    record.unlink()
    assert run_cli("run", path, "-q", "--executor", "ray", "--address", two_node_cluster,
                   "--out", tmp_path / "rerun").code == 0
    (run_dir,) = (tmp_path / "rerun").iterdir()
    planned = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()
               if '"units_planned"' in line]
    assert planned[0]["submitted"] == 1 and planned[0]["resumed"] == 8
    assert without_timings(results_of(tmp_path / "rerun")) == without_timings(serial)


def _write_sports(folder: Path, sequences: list[list[int]]) -> None:
    with gzip.open(folder / "Sports_and_Outdoors.txt.gz", "wt") as fh:
        fh.writelines(f"{u + 1} {' '.join(map(str, seq))}\n" for u, seq in enumerate(sequences))


def _write_ml100k(folder: Path, sequences: list[list[int]]) -> None:
    rows = [f"{u + 1}\t{item}\t4\t{1000 + 10 * t}" for u, seq in enumerate(sequences) for t, item in enumerate(seq)]
    (folder / "u.data").write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("dataset, env, where, write", [
    ("amazon-sports", "REDTEAM_DATA_DIR", "data/amazon-sports", _write_sports),
    ("ml-100k", "REDTEAM_CACHE_DIR", "cache/data/ml-100k", _write_ml100k),  # as `redteam data download` leaves it
])
def test_ray_workers_find_the_drivers_data(run_cli, tmp_path: Path, monkeypatch, two_node_cluster,
                                            dataset, env, where, write) -> None:
    """The nodes never had the driver's data or cache folder; each task carries them, absolute."""
    folder = tmp_path / where
    folder.mkdir(parents=True)
    write(folder, [[1 + (u * 7 + j * 3) % 40 for j in range(6 + u % 5)] for u in range(80)])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(env, where.split("/")[0])  # relative: made absolute for the workers
    scenario = {"name": "units-data", "seed": 3, "dataset": {"name": dataset},
                "victim": {"name": "popularity"}, "attacks": [{"name": "poisoning.random"}],
                "poisoning": {"targets": 2, "fake_share": 0.05}, "eval": {"k": [10], "bootstrap": 50},
                "runtime": {"threads": 1, "cache_dir": str(tmp_path / "units")}, "output": {"dir": "runs", "formats": ["json"]}}
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(scenario))
    assert run_cli("run", path, "-q", "--out", tmp_path / "serial").code == 0
    shutil.rmtree(tmp_path / "units")
    result = run_cli("run", path, "-q", "--executor", "ray", "--address", two_node_cluster, "--out", tmp_path / "ray")
    assert result.code == 0, result.stderr
    assert without_timings(results_of(tmp_path / "ray")) == without_timings(results_of(tmp_path / "serial"))
