"""bench/seed_table.py: runs that differ only in the attacker seed, merged per (victim, attack,
defense), with the defense and the ``vs`` changes over seeds checked against hand-computed t-intervals."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

SPEC = importlib.util.spec_from_file_location("seed_table", Path(__file__).parents[1] / "bench" / "seed_table.py")
seed_table = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(seed_table)


def change(diff: float, low: float, high: float) -> dict:
    return {"diff": diff, "ci_low": low, "ci_high": high, "p": 0.5, "repetitions": 1}


def row(victim: str, attack: str, defense: str, metric: str, value: float, *, paired: dict | None = None,
        vs: tuple[str, dict] | None = None) -> dict:
    out = {"dataset": "toy", "victim": victim, "attack": attack, "defense": defense,
           "metrics": {metric: {"value": value}}, "info": {}}
    if paired is not None:
        out["paired"] = {"vs": "none", "metrics": {metric: paired}}
    if vs is not None:
        out["paired_attack"] = {"vs": vs[0], "metrics": {metric: vs[1]}}
    return out


# per seed: (sasrec autoregressive vs few-shot, hstu autoregressive vs few-shot,
#            sasrec lorec vs none, hstu lorec vs none, sasrec surrogate vs random)
DIFFS = {0: (0.10, -0.01, -0.05, -0.04, 0.02),
         1: (0.20, -0.03, -0.07, -0.02, 0.04),
         2: (0.30, -0.02, -0.06, None, 0.09)}  # hstu's lorec row is absent from the seed-2 run


def write_run(folder: Path, seed: int) -> Path:
    ar_s, ar_h, lorec_s, lorec_h, sur = DIFFS[seed]
    rows = []
    for victim, ar in (("sasrec", ar_s), ("hstu", ar_h)):
        rows += [row(victim, "extraction.fewshot", "none", "agreement@10", 0.5),
                 row(victim, "extraction.autoregressive", "none", "agreement@10", 0.5 + ar,
                     vs=("extraction.fewshot", change(ar, ar - 0.05, ar + 0.05)))]
    for victim, lorec in (("sasrec", lorec_s), ("hstu", lorec_h)):
        rows.append(row(victim, "poisoning.random", "none", "target_hr@50", 0.1))
        if lorec is not None:  # the interval clears 0 for sasrec on seeds 1 and 2, never for hstu
            rows.append(row(victim, "poisoning.random", "lorec", "target_hr@50", 0.1 + lorec,
                            paired=change(lorec, lorec - 0.03, lorec + 0.055)))
    rows.append(row("sasrec", "poisoning.surrogate", "none", "target_hr@50", 0.1 + sur,
                    vs=("poisoning.random", change(sur, sur - 0.03, sur + 0.03))))
    scenario = {"name": "toy", "victims": [{"name": "sasrec"}, {"name": "hstu"}],
                "attacker": {"seeds": [seed]}, "output": {"dir": f"runs/{seed}"}}
    path = folder / f"s{seed}" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"scenario": scenario, "rows": rows}))
    return path


def tables(text: str) -> dict[str, list[list[str]]]:
    """``### heading`` -> the table's body rows as lists of cells."""
    out, heading = {}, None
    for line in text.splitlines():
        if line.startswith("### "):
            heading = line[4:]
            out[heading] = []
        elif line.startswith("|") and not line.startswith("|---"):
            out[heading].append([cell.strip() for cell in line.strip("|").split("|")])
    return {k: v[1:] for k, v in out.items()}


def run_main(monkeypatch, capsys, *args: str) -> dict[str, list[list[str]]]:
    monkeypatch.setattr(sys, "argv", ["seed_table.py", *args])
    seed_table.main()
    return tables(capsys.readouterr().out)


def t95(mean: float, sd: float, n: int, sign: str = "+") -> str:
    half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    return f"{mean:{sign}.4f} [{mean - half:{sign}.4f}, {mean + half:{sign}.4f}]"


@pytest.fixture
def paths(tmp_path: Path) -> list[str]:
    return [str(write_run(tmp_path, seed)) for seed in (0, 1, 2)]


def test_hand_computed_t_bounds() -> None:
    # t(0.975, 2) = 4.302653; sd of (0.1, 0.2, 0.3) is 0.1: half width 4.302653 * 0.1 / sqrt(3) = 0.248414
    assert t95(0.2, 0.1, 3) == "+0.2000 [-0.0484, +0.4484]"
    mean, low, high = seed_table.t_interval([0.1, 0.2, 0.3])
    assert (mean, low, high) == pytest.approx((0.2, 0.2 - 0.248414, 0.2 + 0.248414), abs=1e-6)


def test_rows_of_two_victims_stay_apart_and_vs_changes_get_their_table(paths, monkeypatch, capsys) -> None:
    out = run_main(monkeypatch, capsys, *paths, "--metric", "agreement@10", "--metric", "target_hr@50")
    assert set(out) == {"agreement@10", "agreement@10: attack vs the attack its `vs` names (paired_attack)",
                        "target_hr@50", "target_hr@50: attack vs the attack its `vs` names (paired_attack)"}

    # main table: victim, attack, defense, one cell per seed, mean value [t], mean change [t], clear count
    main = {tuple(r[:3]): r[3:] for r in out["target_hr@50"]}
    assert list(main) == [("sasrec", "poisoning.random", "none"), ("sasrec", "poisoning.random", "lorec"),
                          ("hstu", "poisoning.random", "none"), ("hstu", "poisoning.random", "lorec"),
                          ("sasrec", "poisoning.surrogate", "none")]
    # sasrec lorec: -0.05, -0.07, -0.06 -> mean -0.06, sd 0.01; hstu lorec: -0.04, -0.02 -> mean -0.03, sd 0.01414
    # values .05, .03, .04 -> mean .04, sd .01 (the same spread as the changes)
    assert main[("sasrec", "poisoning.random", "lorec")][3:] == [t95(0.04, 0.01, 3, ""), t95(-0.06, 0.01, 3), "2 of 3"]
    assert main[("sasrec", "poisoning.random", "lorec")][3:] == ["0.0400 [0.0152, 0.0648]", "-0.0600 [-0.0848, -0.0352]", "2 of 3"]
    assert main[("hstu", "poisoning.random", "lorec")][3:] == [t95(0.07, 0.02 / np.sqrt(2), 2, ""),
                                                              t95(-0.03, 0.02 / np.sqrt(2), 2), "0 of 2"]
    assert main[("hstu", "poisoning.random", "lorec")][:3] == [
        "0.0600 (-0.0400 [-0.0700, +0.0150])", "0.0800 (-0.0200 [-0.0500, +0.0350])", "-"]
    assert main[("hstu", "poisoning.random", "none")] == ["0.1000"] * 3 + ["0.1000 [0.1000, 0.1000]", "-", "-"]

    # agreement@10: both victims' autoregressive rows, undefended, have no defense change
    agreement = {tuple(r[:3]): r[3:] for r in out["agreement@10"]}
    assert len(agreement) == 4 and agreement[("hstu", "extraction.autoregressive", "none")][4:] == ["-", "-"]
    # hstu autoregressive values .49, .47, .48 -> mean .48, sd .01
    assert agreement[("hstu", "extraction.autoregressive", "none")][3] == t95(0.48, 0.01, 3, "")

    # the vs table: victim, attack, vs, defense, seeds, mean value [t], mean change [t], clear count
    ablation = {tuple(r[:4]): r[4:] for r in out["agreement@10: attack vs the attack its `vs` names (paired_attack)"]}
    assert list(ablation) == [("sasrec", "extraction.autoregressive", "extraction.fewshot", "none"),
                              ("hstu", "extraction.autoregressive", "extraction.fewshot", "none")]
    # sasrec: 0.1, 0.2, 0.3 -> +0.2 [-0.0484, +0.4484]; hstu: -0.01, -0.03, -0.02 -> -0.02, sd 0.01
    assert ablation[("sasrec", "extraction.autoregressive", "extraction.fewshot", "none")] == [
        "0.6000 (+0.1000 [+0.0500, +0.1500])", "0.7000 (+0.2000 [+0.1500, +0.2500])",
        "0.8000 (+0.3000 [+0.2500, +0.3500])", "0.7000 [0.4516, 0.9484]", "+0.2000 [-0.0484, +0.4484]", "3 of 3"]
    assert ablation[("hstu", "extraction.autoregressive", "extraction.fewshot", "none")][4:] == [
        "-0.0200 [-0.0448, +0.0048]", "0 of 3"]
    surrogate = out["target_hr@50: attack vs the attack its `vs` names (paired_attack)"]
    # 0.02, 0.04, 0.09 -> mean 0.05, sd sqrt(((-0.03)^2 + (-0.01)^2 + 0.04^2) / 2) = sqrt(0.0013)
    assert surrogate == [["sasrec", "poisoning.surrogate", "poisoning.random", "none",
                          "0.1200 (+0.0200 [-0.0100, +0.0500])", "0.1400 (+0.0400 [+0.0100, +0.0700])",
                          "0.1900 (+0.0900 [+0.0600, +0.1200])", t95(0.15, np.sqrt(0.0013), 3, ""),
                          t95(0.05, np.sqrt(0.0013), 3), "2 of 3"]]


def test_no_vs_table_without_paired_attack_and_scenarios_must_match(paths, tmp_path, monkeypatch, capsys) -> None:
    out = run_main(monkeypatch, capsys, *paths, "--metric", "ndcg@10")
    assert out == {"ndcg@10": []}
    other = json.loads(Path(paths[0]).read_text())
    other["scenario"]["name"] = "other"
    (tmp_path / "other.json").write_text(json.dumps(other))
    monkeypatch.setattr(sys, "argv", ["seed_table.py", paths[0], str(tmp_path / "other.json")])
    with pytest.raises(SystemExit, match="not the same scenario"):
        seed_table.main()
