"""Defended rows against their undefended twins, ablations against their full attack, paired over
users (and seeds), and the tables that read them."""

from __future__ import annotations

import numpy as np

from redteam.paired import paired_rows
from redteam.reports.defense_effects import ablation_effects
from redteam.reports.defense_effects import defense_effects
from redteam.results import RowTable


def table_of(values: dict[tuple[str, str], dict[str, list]]) -> RowTable:
    rows = RowTable()
    for (attack, defense), metrics in values.items():
        row = rows.row("shop", "sasrec", attack, defense)
        for metric, per_seed in metrics.items():
            for arr in per_seed:
                row.add(metric, np.asarray(arr, dtype=float))
    return rows


def test_the_paired_change_is_the_mean_per_user_difference() -> None:
    rows = table_of({
        ("none", "none"): {"ndcg@10": [[0.5, 0.2, 0.0, 1.0]]},
        ("none", "noise"): {"ndcg@10": [[0.4, 0.2, 0.1, 0.7]]},
        ("steal", "none"): {"agreement@10": [[0.6, 0.8, 0.7, 0.5], [0.4, 0.8, 0.5, 0.5]], "queries": [100.0, 100.0]},
        ("steal", "noise"): {"agreement@10": [[0.3, 0.6, 0.7, 0.4], [0.3, 0.6, 0.5, 0.4]], "queries": [100.0, 100.0]},
        ("other", "noise"): {"agreement@10": [[0.1, 0.1, 0.1, 0.1]]},  # no undefended twin: not paired
    })
    exact = {k: v["paired"] for k, v in paired_rows(rows, seed=0, n_resamples=0, confidence=0.95).items()}
    assert set(exact) == {("shop", "sasrec", "none", "noise"), ("shop", "sasrec", "steal", "noise")}
    # by hand: (-0.1 + 0 + 0.1 - 0.3) / 4 = -0.075; seed means 0.5,0.8,0.6,0.5 vs 0.3,0.6,0.6,0.4 -> -0.125
    assert np.isclose(exact[("shop", "sasrec", "none", "noise")]["metrics"]["ndcg@10"]["diff"], -0.075)
    steal = exact[("shop", "sasrec", "steal", "noise")]["metrics"]
    assert np.isclose(steal["agreement@10"]["diff"], -0.125) and "queries" not in steal
    boot = paired_rows(rows, seed=0, n_resamples=2000, confidence=0.95)
    ci = boot[("shop", "sasrec", "steal", "noise")]["paired"]["metrics"]["agreement@10"]
    assert ci["ci_low"] <= -0.125 <= ci["ci_high"] < 0  # every user lost agreement or kept it


def test_two_seeds_widen_the_paired_interval_by_the_seed_variance() -> None:
    """The same per-user differences, once repeated identically over two seeds and once with a
    seed that flips the effect: the second interval must reach the flipped seed's side."""
    base = [0.6, 0.8, 0.7, 0.5, 0.6, 0.7, 0.8, 0.6]
    steady = table_of({("steal", "none"): {"agreement@10": [base, base]},
                       ("steal", "noise"): {"agreement@10": [[v - 0.1 for v in base]] * 2}})
    shaky = table_of({("steal", "none"): {"agreement@10": [base, base]},
                      ("steal", "noise"): {"agreement@10": [[v - 0.3 for v in base], [v + 0.1 for v in base]]}})
    key = ("shop", "sasrec", "steal", "noise")
    a = paired_rows(steady, seed=0, n_resamples=2000, confidence=0.95)[key]["paired"]["metrics"]["agreement@10"]
    b = paired_rows(shaky, seed=0, n_resamples=2000, confidence=0.95)[key]["paired"]["metrics"]["agreement@10"]
    assert np.isclose(a["diff"], -0.1) and np.isclose(b["diff"], -0.1)
    assert np.isclose(a["ci_low"], -0.1) and np.isclose(a["ci_high"], -0.1)  # no user or seed noise
    assert b["ci_low"] <= -0.3 + 1e-9 and b["ci_high"] >= 0.1 - 1e-9  # a resample of one seed twice
    assert b["p"] > 0.05 and a["p"] == 0.0  # p read from the same resamples as the interval
    # Each seed's own change and the t-interval over them, by hand: changes -0.3 and +0.1, mean
    # -0.1, sd 0.2828, se 0.2, t(.975, 1 df) = 12.7062 -> -0.1 -+ 2.5412.
    assert np.allclose(b["seed_diffs"], [-0.3, 0.1]) and np.allclose(b["seed_t_ci"], [-2.64124, 2.44124], atol=1e-4)
    assert np.allclose(a["seed_diffs"], [-0.1, -0.1]) and np.allclose(a["seed_t_ci"], [-0.1, -0.1])


def test_the_seed_changes_of_a_target_metric_are_macro_means_over_targets() -> None:
    """(target, user) values: each seed's change is the mean over targets of each target's mean
    change, as the row's own per-seed value is, not the mean over all (target, user) units."""
    rows = RowTable()
    undefended, defended = rows.row("shop", "sasrec", "random", "none"), rows.row("shop", "sasrec", "random", "lorec")
    targets, users = np.array([0, 0, 0, 1]), np.array([0, 1, 2, 0])  # target 1 reached by one user only
    for seed, (before, after) in enumerate((([1, 1, 1, 1], [0, 1, 1, 0]), ([1, 0, 0, 1], [1, 0, 0, 1]), ([1, 1, 0, 0], [0, 0, 0, 0]))):
        undefended.add("target_hr@50", np.asarray(before, float), groups=targets, clusters=users, repetition=(0, seed))
        defended.add("target_hr@50", np.asarray(after, float), groups=targets, clusters=users, repetition=(0, seed))
    change = paired_rows(rows, seed=0, n_resamples=200, confidence=0.95)[defended.key]["paired"]["metrics"]["target_hr@50"]
    # by hand: seed 0: target 0 -1/3, target 1 -1 -> -2/3; seed 1: 0; seed 2: target 0 -2/3, target 1 0 -> -1/3
    assert np.allclose(change["seed_diffs"], [-2 / 3, 0.0, -1 / 3])
    mean, half = -1 / 3, 4.302653 * (1 / 3) / np.sqrt(3)  # sd of (-2/3, 0, -1/3) is 1/3; t(.975, 2 df)
    assert np.isclose(change["diff"], mean) and np.allclose(change["seed_t_ci"], [mean - half, mean + half], atol=1e-5)


def test_a_defense_run_on_fewer_attacker_seeds_pairs_with_those_seeds_only() -> None:
    """A defense limited by ``attacker_seeds`` to seed 2 of (0, 1, 2) against the undefended row:
    the change is taken against seed 2's arrays, not skipped and not mixed with seeds 0 and 1."""
    rows = RowTable()
    undefended, defended = rows.row("shop", "sasrec", "random", "none"), rows.row("shop", "sasrec", "random", "lorec")
    for attack_seed, values in ((0, [0.9, 0.9, 0.9]), (1, [0.7, 0.7, 0.7]), (2, [0.5, 0.2, 0.3])):
        undefended.add("target_hr@50", np.asarray(values), repetition=(0, attack_seed))
    defended.add("target_hr@50", np.asarray([0.1, 0.2, 0.0]), repetition=(0, 2))
    changes = paired_rows(rows, seed=0, n_resamples=0, confidence=0.95)[defended.key]["paired"]["metrics"]
    # by hand, against seed 2 only: (-0.4 + 0 - 0.3) / 3
    assert np.isclose(changes["target_hr@50"]["diff"], -0.7 / 3) and changes["target_hr@50"]["repetitions"] == 1
    other = rows.row("shop", "sasrec", "random", "apr")
    other.add("target_hr@50", np.asarray([0.1, 0.2, 0.0]), repetition=(0, 7))  # a seed the twin never ran
    assert other.key not in paired_rows(rows, seed=0, n_resamples=0, confidence=0.95)


def test_an_ablation_is_paired_with_the_attack_its_vs_names_and_is_listed() -> None:
    rows = table_of({
        ("fewshot", "none"): {"agreement@10": [[0.5, 0.6, 0.7, 0.8]]},
        ("no-sampler", "none"): {"agreement@10": [[0.4, 0.6, 0.6, 0.8]]},
    })
    out = paired_rows(rows, attack_refs={"no-sampler": "fewshot"}, seed=0, n_resamples=500, confidence=0.95)
    pair = out[("shop", "sasrec", "no-sampler", "none")]["paired_attack"]
    assert pair["vs"] == "fewshot" and np.isclose(pair["metrics"]["agreement@10"]["diff"], -0.05)
    adding = table_of({("fewshot", "none"): {"agreement@10": [[0.5, 0.6, 0.7, 0.8]]},
                       ("no-sampler", "none"): {"agreement@10": [[0.4, 0.6, 0.6, 0.8]]},
                       ("other", "none"): {"agreement@10": [[0.1, 0.2, 0.3, 0.4]]}})
    again = paired_rows(adding, attack_refs={"no-sampler": "fewshot"}, seed=0, n_resamples=500, confidence=0.95)
    assert again[("shop", "sasrec", "no-sampler", "none")] == out[("shop", "sasrec", "no-sampler", "none")]  # per-row draws
    results = {"attack_success": {"extraction": "agreement@10"}, "rows": [
        {"victim": "sasrec", "attack": "no-sampler", "defense": "none", "info": {"family": "extraction"},
         "metrics": {"agreement@10": {"value": 0.6}}, **out[("shop", "sasrec", "no-sampler", "none")]}]}
    head, table = ablation_effects(results)
    assert head[:3] == ["victim", "attack", "vs"] and table[0][1:3] == ["no-sampler", "fewshot"]
    assert table[0][-1].startswith("-0.050 [")


def test_the_defense_table_reads_the_paired_changes() -> None:
    pair = lambda d, lo, hi: {"diff": d, "ci_low": lo, "ci_high": hi, "p": 0.01}  # noqa: E731
    results = {
        "scenario": {"eval": {"k": [10]}}, "attack_success": {"extraction": "agreement@10"},
        "rows": [
            {"victim": "v", "attack": "none", "defense": "none", "metrics": {"ndcg@10": {"value": 0.2}}},
            {"victim": "v", "attack": "none", "defense": "noise", "metrics": {"ndcg@10": {"value": 0.19}},
             "paired": {"vs": "none", "metrics": {"ndcg@10": pair(-0.01, -0.02, 0.0)}}},
            {"victim": "v", "attack": "steal", "defense": "none", "metrics": {"agreement@10": {"value": 0.6}}},
            {"victim": "v", "attack": "steal", "defense": "noise", "metrics": {"agreement@10": {"value": 0.45}},
             "paired": {"vs": "none", "metrics": {"agreement@10": pair(-0.15, -0.17, -0.13)}}},
        ]}
    head, rows = defense_effects(results)
    assert head == ["victim", "defense", "clean ndcg@10 change", "clean hr@10 change", "steal: agr@10 (change)"]
    assert rows == [["v", "noise", "-0.010 [-0.020, +0.000]", "-", "0.450 (-0.150 [-0.170, -0.130])"]]
    results["rows"][3]["paired"]["metrics"]["agreement@10"]["seed_t_ci"] = [-0.31, 0.01]  # several seeds
    assert defense_effects(results)[1][0][-1] == "0.450 (-0.150 [-0.170, -0.130], seeds t [-0.310, +0.010])"


def test_every_report_format_shows_the_defense_table() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "reports"))
    from hand_built import defense_comparison

    from redteam.reports.html import render_html
    from redteam.reports.markdown import render_markdown

    results = defense_comparison()
    poisoned = next(r for r in results["rows"] if r["attack"] == "poisoning.bandwagon" and r["defense"] == "lorec")
    poisoned["paired"] = {"vs": "none", "metrics": {"target_hr@50": {"diff": -0.3, "ci_low": -0.35, "ci_high": -0.25, "p": 0.0}}}
    md, html = render_markdown(results), render_html(results)
    assert "**Defenses against none**" in md and "0.100 (-0.300 [-0.350, -0.250])" in md
    assert 'id="defenses"' in html and "0.100 (-0.300 [-0.350, -0.250])" in html
