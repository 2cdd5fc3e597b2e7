"""The text-ranking stage: trial plans, paired metrics by hand, scenario checks, one real run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from redteam.errors import ConfigError
from redteam.results import Row
from redteam.scenario import build_scenario
from defenses.base import TextDefense
from redteam.stages.text_trials import Trial, add_trial_metrics, plan_trials, split_requests


def test_split_requests_is_disjoint_seeded_and_keeps_one_on_each_side():
    requests = tuple(f"request {i}" for i in range(10))
    opt, held = split_requests(requests, 0.5, np.random.default_rng(0))
    assert len(held) == 5 and not set(opt) & set(held) and set(opt) | set(held) == set(requests)
    assert (opt, held) == split_requests(requests, 0.5, np.random.default_rng(0))
    opt, held = split_requests(requests[:2], 0.99, np.random.default_rng(0))
    assert len(opt) == 1 and len(held) == 1


def test_trials_hold_the_target_and_cycle_through_every_request():
    requests = ["a", "b", "c"]
    trials = plan_trials(8, 3, requests, 9, 4, np.random.default_rng(1), seen=False)
    assert all(3 in t.shown and len(t.shown) == 5 and len(set(t.shown)) == 5 for t in trials)
    for start in (0, 3, 6):  # every request once per round
        assert sorted(t.request for t in trials[start:start + 3]) == requests
    whole = plan_trials(8, 3, requests, 4, None, np.random.default_rng(1), seen=False)
    assert all(sorted(t.shown) == list(range(8)) for t in whole)
    assert len({t.shown for t in whole}) > 1  # the order changes between trials


def test_trial_metrics_by_hand():
    """Two targets, three held-out trials each plus one seen trial: macro averages over targets."""
    trials = {t: [Trial("q", (0, 1), False)] * 3 + [Trial("q", (0, 1), True)] for t in (0, 1)}
    clean = {0: np.array([3.0, 1, 2, 4]), 1: np.array([2.0, 2, 2, 2])}
    attacked = {0: np.array([1.0, 1, 3, 1]), 1: np.array([1.0, 3, 2, 2])}
    row = Row("cat", "ranker", "sts.gcg")
    add_trial_metrics(row, [0, 1], trials, attacked, clean)
    m = row.aggregate(seed=0, n_resamples=50, confidence=0.95)
    assert m["top1_rate"]["value"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["advantage"]["value"] == pytest.approx((1 / 3 + 1 / 3) / 2)  # 3->1 ; 2->1
    assert m["disadvantage"]["value"] == pytest.approx((1 / 3 + 1 / 3) / 2)  # 2->3 ; 2->3
    assert m["mean_rank"]["value"] == pytest.approx((5 / 3 + 2) / 2)
    assert m["top1_rate_seen"]["value"] == pytest.approx(0.5)
    assert m["top1_rate"]["groups"] == 2


def _raw(**changes):
    raw = {"name": "t", "catalog": {"name": "coffee_machines"}, "victims": [{"name": "ranker.embedding"}],
           "attacks": [{"name": "sts.keyword_stuffing"}]}
    raw.update(changes)
    return raw


def test_text_attacks_only_against_text_rankers():
    with pytest.raises(ConfigError, match=r"attacks\[0\]\.name: 'sts.gcg' does not attack sequential recommenders"):
        build_scenario({"name": "t", "victims": [{"name": "sasrec"}], "attacks": [{"name": "sts.gcg"}]})
    with pytest.raises(ConfigError, match=r"attacks\[0\]\.name: 'poisoning.random' does not attack text rankers"):
        build_scenario(_raw(attacks=[{"name": "poisoning.random"}]))
    with pytest.raises(ConfigError, match=r"defenses\[0\]\.name: 'lorec' does not defend text rankers"):
        build_scenario(_raw(defenses=[{"name": "lorec"}]))
    with pytest.raises(ConfigError, match="cannot share a scenario"):
        build_scenario(_raw(victims=[{"name": "ranker.embedding"}, {"name": "sasrec"}]))


def test_unknown_target_and_ranker_fail_with_the_key(run_cli, tmp_path):
    import yaml

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_raw(sts={"targets": ["Velluto Super Automatc"]})))
    result = run_cli("run", str(bad), "--out", str(tmp_path / "runs"))
    assert result.code == 2
    assert "sts.targets: no product named 'Velluto Super Automatc'" in result.stderr
    assert "did you mean 'Velluto Super Automatic'" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_real_run_pairs_clean_and_attacked_rows(run_cli, tmp_path):
    """Keyword stuffing and a 2-step GCG against MiniLM on the built-in catalog, end to end."""
    import yaml

    scenario = _raw(
        sts={"targets": ["Trailhead Go Press"], "trials": 8, "seen_trials": 4, "competitors": 4},
        attacks=[{"name": "sts.gcg", "n_tokens": 8, "steps": 2, "candidates": 16, "topk": 32},
                 {"name": "sts.keyword_stuffing", "n_tokens": 8}],
        defenses=[{"name": "none"}, {"name": "nonword_filter"}],
    )
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = run_cli("run", str(path), "--quiet", "--out", str(tmp_path / "runs"))
    assert result.code == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    rows = {(r["attack"], r["defense"]): r for r in results["rows"]}
    assert set(rows) == {(a, d) for a in ("none", "sts.gcg", "sts.keyword_stuffing") for d in ("none", "nonword_filter")}
    assert {"detection_rate", "fpr"} <= set(rows[("sts.gcg", "nonword_filter")]["metrics"])
    assert "fpr" in rows[("none", "nonword_filter")]["metrics"]
    assert {"top1_rate", "mean_rank"} <= set(rows[("none", "none")]["metrics"])
    gcg = rows[("sts.gcg", "none")]["metrics"]
    assert {"advantage", "disadvantage", "top1_rate_seen", "seconds"} <= set(gcg)
    assert gcg["top1_rate"]["n"] == 8
    crafted = results["sts"]["crafted"]
    assert len(crafted) == 2 and all(c["text"] for c in crafted)
    assert results["curves"][0]["metric"] == "gcg_loss" and len(results["curves"][0]["points"]) == 3  # the initial STS + 2 steps
    assert results["protocol"]["family"] == "sts" and results["protocol"]["trial_plan"]
    # Paired: advantage recomputed from the per-trial ranks of the attacked and the clean row.
    per_trial = np.load(run_dir / "per_user.npz", allow_pickle=False)
    for attack in ("sts.gcg", "sts.keyword_stuffing"):
        after, before = per_trial[f"ranker.embedding|{attack}|none|mean_rank"][0], per_trial["ranker.embedding|none|none|mean_rank"][0]
        assert rows[(attack, "none")]["metrics"]["advantage"]["value"] == pytest.approx(np.mean(after < before))


def test_order_averaging_averages_positions_over_shuffled_orders():
    """A ranker that always puts the first shown product first: averaging over orders spreads it."""
    from defenses.order_averaging import OrderAveraging
    from redteam.catalog import Product

    class FirstShown:
        def rank(self, products, request):
            return list(range(len(products)))

    products = [Product.of(f"p{i}", description="x") for i in range(4)]
    wrapped = OrderAveraging(orders=2).wrap(FirstShown(), np.random.default_rng(0))
    firsts = {wrapped.rank(products, "q")[0] for _ in range(30)}
    assert len(firsts) > 1  # the served order no longer follows the display order alone
    assert sorted(wrapped.rank(products, "q")) == [0, 1, 2, 3]


def test_gcg_loss_curves_become_a_figure_with_its_data():
    from redteam.reports.figures import figures

    results = {"rows": [], "curves": [{"metric": "gcg_loss", "victim": "minilm", "attack": "sts.gcg", "seed": 1,
                                       "target": "Moka", "points": [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 1.5}]}]}
    (fig,) = [f for f in figures(results) if f.key == "gcg-loss"]
    assert "<svg" in fig.svg
    assert fig.table[1] == [["sts.gcg on minilm: Moka (seed 1)", "3.000", "1.500", "2"]]


class _FlagWord(TextDefense):
    """A stub text filter: flags texts containing a word (the guard picks filters by their kind)."""

    alias = "flag_word"

    def __init__(self, word: str) -> None:
        super().__init__()
        self.word = word

    def score(self, texts):
        return np.array([float(self.word in t) for t in texts])

    def flag(self, texts):
        return [self.word in t for t in texts]


class _ByName:
    """A stub ranker: alphabetical by name."""

    def rank(self, products, request):
        return sorted(range(len(products)), key=lambda i: products[i].name)


def test_a_filtered_target_ranks_last_and_filtered_rivals_drop_out():
    from redteam.catalog import Product
    from redteam.stages.text_guard import TextGuard

    products = [Product.of("b", description="fine"), Product.of("a", description="spam"), Product.of("c", description="fine")]
    guard = TextGuard("stub", _FlagWord("spam"))
    assert guard.position(_ByName(), products, 0, "q") == 1  # 'a' (first by name) is filtered out
    assert guard.position(_ByName(), products, 1, "q") == 4  # the flagged target: N + 1
    assert TextGuard("none", None).position(_ByName(), products, 0, "q") == 2


def test_order_averaging_leaves_out_products_never_named():
    from defenses.order_averaging import OrderAveraging
    from redteam.catalog import Product

    class NamesOnlyA:
        def rank(self, products, request):
            return [i for i, p in enumerate(products) if p.name == "a"]

    products = [Product.of(n, description="x") for n in ("b", "a", "c")]
    assert OrderAveraging(orders=3).wrap(NamesOnlyA(), np.random.default_rng(0)).rank(products, "q") == [1]


def test_list_catalogs(run_cli, monkeypatch):
    monkeypatch.delenv("REDTEAM_DATA_DIR", raising=False)
    result = run_cli("list", "catalogs")
    assert result.code == 0
    line = next(l for l in result.stdout.splitlines() if "coffee_machines" in l)
    assert [c.strip() for c in line.split("│")[1:4]] == ["coffee_machines", "10", "28"]
    assert "needs catalog.data_dir" in next(l for l in result.stdout.splitlines() if "scientific_ph_meters" in l)
