"""bench/compare_rows.py: paired row comparisons, users as clusters, ambiguous names refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from redteam.results import RowTable, write_per_user

ROOT = Path(__file__).resolve().parents[1]


def run_dir(tmp_path: Path) -> Path:
    rows, rng = RowTable(), np.random.default_rng(0)
    users = np.arange(400)
    groups, clusters = np.repeat([5, 9], 400), np.tile(users, 2)
    for victim, attack, defense, p in [("sasrec", "none", "none", 0.02), ("sasrec", "poisoning.random", "none", 0.10),
                                       ("sasrec", "poisoning.random", "lorec", 0.04)]:
        row = rows.row("d", victim, attack, defense)
        for _ in range(2):
            row.add("target_hr@50", (rng.random(800) < p).astype(float), groups=groups, clusters=clusters)
            row.add("ndcg@10", rng.random(400) * p)
    write_per_user(rows, tmp_path / "per_user.npz")
    (tmp_path / "results.json").write_text(json.dumps({"scenario": {"name": "t"}}))
    return tmp_path


def compare(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "compare_rows.py"), str(folder), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_target_metrics_are_compared_with_users_as_clusters(tmp_path):
    folder = run_dir(tmp_path)
    arrays = np.load(folder / "per_user.npz", allow_pickle=False)
    assert arrays["sasrec|none|none|target_hr@50#clusters"].tolist() == list(range(400)) * 2
    out = compare(folder, "--metric", "target_hr@50", "--reference", "sasrec|poisoning.random|none", "--resamples", "300")
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("sasrec|poisoning.random|lorec"))
    diff = float(line.split()[2])
    low, high = (float(v) for v in line.split("[")[1].split("]")[0].split(","))
    assert 0.03 < diff < 0.09 and 0 < low < diff < high  # ~.10 - .04, two seeds then users as clusters
    assert float(line.split()[-1]) < 0.05


def test_a_label_that_names_several_rows_is_refused(tmp_path):
    out = compare(run_dir(tmp_path), "--metric", "ndcg@10", "--reference", "poisoning.random")
    assert out.returncode != 0 and "names 2 rows" in out.stderr and "sasrec|poisoning.random|lorec" in out.stderr
    ok = compare(tmp_path, "--metric", "ndcg@10", "--reference", "lorec", "--by", "defense", "--resamples", "200")
    assert ok.returncode == 0 and "sasrec|none|none" in ok.stdout
