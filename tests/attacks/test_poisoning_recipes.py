"""Poisoning recipes, plans, target selection and the grouped bootstrap, without retraining.

Every recipe fills the same plan: the tests check the profiles' shape (count, lengths, target
kept, ids in range, no padding, no other target) and what each recipe claims about its fillers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attacks.poisoning.bandwagon import Bandwagon
from attacks.poisoning.base import FakePlan, make_plan, target_slots
from attacks.poisoning.random_profiles import RandomProfiles
from attacks.poisoning.segment import Segment
from attacks.poisoning.surrogate_guided import SurrogateGuided
from redteam.api import BlackBoxAPI
from redteam.errors import ConfigError
from redteam.knowledge import Knowledge
from redteam.metrics import bootstrap_ci_grouped, mean_over_targets, target_exposure
from redteam.stages.exposure import target_exposure_values
from redteam.stages.poisoning_plan import check_profiles
from redteam.stages.poisoning_targets import Targets, select_targets
from redteam.results import Row
from redteam.scenario import PoisoningConfig, build_scenario
from redteam.seeding import derive_seed, numpy_rng

N_ITEMS = 150
TARGETS = [11, 42, 97]


def plan(n_fakes: int = 60, *, placement: str = "random", share: float = 0.2, seed: int = 0) -> FakePlan:
    rng = numpy_rng(seed, "test-plan")
    lengths = rng.integers(2, 25, size=n_fakes)
    return make_plan(TARGETS, n_fakes=n_fakes, lengths=lengths, placement=placement, target_share=share, rng=rng)


def knowledge(**grants) -> Knowledge:
    def scorer(histories):  # a fixed scorer: item i's score is its id, whatever the history
        return torch.arange(N_ITEMS + 1, dtype=torch.float32).expand(len(histories), -1).clone()

    api = BlackBoxAPI(scorer, n_items=N_ITEMS, topk=20, budget=grants.pop("budget", None))
    return Knowledge(api=api, n_items=N_ITEMS, seed=derive_seed(1, "attack", "test"), **grants)


def assert_valid(profiles: list[np.ndarray], p: FakePlan) -> None:
    check_profiles(profiles, p, N_ITEMS, "test")  # count, length, target held, ids in 1..N
    assert [len(x) for x in profiles] == p.lengths().tolist()
    for i, (profile, template) in enumerate(zip(profiles, p.templates)):
        assert profile.dtype == np.int64 and profile.min() >= 1 and 0 not in profile
        slots = template != 0
        assert (profile[slots] == p.target_of[i]).all()  # the plan's target slots are kept
        assert not np.isin(profile[~slots], TARGETS).any()  # fillers never promote a target


# ------------------------------------------------------------------------------------------------
# Plans


def test_plan_splits_fakes_evenly_and_places_targets() -> None:
    p = plan(61)
    counts = np.bincount(p.target_of)[TARGETS]
    assert counts.sum() == 61 and counts.max() - counts.min() <= 1
    for template, target in zip(p.templates, p.target_of):
        slots = np.flatnonzero(template)
        assert (template[slots] == target).all()
        assert len(slots) == max(1, min(round(0.2 * len(template)), (len(template) + 1) // 2))
        assert np.all(np.diff(slots) >= 2)  # never two target copies in a row
    rng = np.random.default_rng(0)
    assert target_slots(10, 5, "alternate", rng).tolist() == [1, 3, 5, 7, 9]
    assert target_slots(10, 2, "alternate", rng).tolist() == [4, 9]
    assert target_slots(9, 1, "end", rng).tolist() == [8]
    assert target_slots(2, 3, "random", rng).size == 1
    again = plan(61)
    assert all(np.array_equal(a, b) for a, b in zip(p.templates, again.templates))  # seeded


# ------------------------------------------------------------------------------------------------
# Recipes


def test_random_fills_uniformly_with_distinct_non_target_items() -> None:
    p = plan(300)
    profiles = RandomProfiles().craft(knowledge(), p)
    assert_valid(profiles, p)
    fillers = np.concatenate([x[t == 0] for x, t in zip(profiles, p.templates)])
    assert all(len(set(x[t == 0].tolist())) == int((t == 0).sum()) for x, t in zip(profiles, p.templates))
    counts = np.bincount(fillers, minlength=N_ITEMS + 1)[1:]
    assert (counts > 0).sum() >= N_ITEMS - len(TARGETS) - 2  # spread over the catalog
    again = RandomProfiles().craft(knowledge(), p)
    assert all(np.array_equal(a, b) for a, b in zip(profiles, again))


def test_bandwagon_draws_its_popular_share_from_the_most_popular_items() -> None:
    p = plan(400)
    popularity = np.zeros(N_ITEMS + 1)
    popularity[1:] = np.arange(N_ITEMS, 0, -1)  # item 1 most popular
    attack = Bandwagon(popular_share=0.3, popular_items=0.1)
    profiles = attack.craft(knowledge(item_popularity=popularity), p)
    assert_valid(profiles, p)
    popular = set(range(1, 17)) - set(TARGETS)  # the 15 most popular items (10% of 150) that are not targets
    assert set(attack.diagnostics["popular_items"]) <= popular and attack.diagnostics["knowledge"] == "granted item popularity"
    fillers = np.concatenate([x[t == 0] for x, t in zip(profiles, p.templates)])
    share = np.isin(fillers, list(popular)).mean()
    chance = 15 / (N_ITEMS - len(TARGETS))
    # popular_share of the fillers, plus the random rest landing on popular items by chance
    assert share == pytest.approx(0.3 + 0.7 * chance, abs=0.03), share
    random_share = np.isin(np.concatenate([x[t == 0] for x, t in zip(RandomProfiles().craft(knowledge(), p), p.templates)]),
                           list(popular)).mean()
    assert random_share == pytest.approx(chance, abs=0.03)


def test_bandwagon_falls_back_to_few_shot_counts_and_needs_some_popularity() -> None:
    p = plan(30)
    few = tuple(np.array([5, 5, 6, 5, 7, 6]) for _ in range(10))
    attack = Bandwagon(popular_share=1.0, popular_items=0.01)
    profiles = attack.craft(knowledge(few_shot=few), p)
    assert_valid(profiles, p)
    assert attack.diagnostics["knowledge"] == "counts in the few-shot sequences"
    assert attack.diagnostics["popular_items"][:3] == [5, 6, 7]
    with pytest.raises(ConfigError, match="item popularity"):
        Bandwagon().craft(knowledge(), p)


def test_segment_by_text_uses_items_of_the_targets_category(tiny_dataset) -> None:
    texts = tuple(tiny_dataset.item_text)
    category = np.array([""] + [t.split(". ")[1] for t in texts[1:]])
    p = plan(90)
    attack = Segment(relation="auto", segment_size=10, segment_share=1.0)
    profiles = attack.craft(knowledge(item_text=texts), p)
    assert_valid(profiles, p)
    for t in TARGETS:
        segment = attack.diagnostics["segments"][str(t)]
        assert segment["source"] == "item text (TF-IDF)" and len(segment["items"]) == 10
        assert np.mean(category[segment["items"]] == category[t]) >= 0.8, (t, category[segment["items"]])
    # segment_share 1: every filler comes from the profile's own target's segment
    for profile, template, target in zip(profiles, p.templates, p.target_of):
        fillers = profile[template == 0]
        seg = attack.diagnostics["segments"][str(target)]["items"]
        assert np.isin(fillers, seg).sum() == min(len(fillers), len(seg))


def test_segment_by_cooccurrence_tops_up_from_the_api() -> None:
    p = plan(30)
    few = (np.array([1, 2, 11, 3, 4]), np.array([11, 5]), np.array([8, 9, 10]))
    k = knowledge(few_shot=few, budget=10)
    attack = Segment(relation="auto", segment_size=4, segment_share=1.0, window=1)
    profiles = attack.craft(k, p)
    assert_valid(profiles, p)
    seg = attack.diagnostics["segments"]
    # target 11: 2, 3 and 5 sit next to it; one more from the API (ranks by id: 150, 149, ...)
    assert seg["11"]["items"][:3] == [2, 3, 5] and seg["11"]["items"][3] == N_ITEMS
    assert seg["11"]["source"].startswith("few-shot co-occurrence (3 items)")
    # 42 and 97 never occur: their segment is the API's list for [target], one query each
    assert seg["42"]["items"] == [150, 149, 148, 147] and seg["42"]["source"].endswith("black-box API")
    assert k.api.queries_used == 3
    with pytest.raises(ConfigError, match="attacker.item_text"):
        Segment(relation="text").craft(knowledge(), p)


@pytest.fixture(scope="module")
def surrogate(tiny_split):
    from victims.sasrec import SASRec

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    model = SASRec(SASRec.Params(hidden=16, epochs=5, batch_size=64))
    model.fit(tiny_split.train, None, n_items=tiny_split.dataset.n_items, seed=3)
    yield model
    torch.set_num_threads(before)


def test_surrogate_guided_raises_the_surrogates_target_probability(surrogate, tiny_split) -> None:
    n_items = tiny_split.dataset.n_items
    rng = numpy_rng(0, "plan")
    p = make_plan(TARGETS, n_fakes=30, lengths=rng.integers(4, 12, size=30), placement="random", target_share=0.2, rng=rng)
    k = Knowledge(api=BlackBoxAPI(surrogate.score, n_items=n_items), n_items=n_items, seed=1, surrogate=surrogate,
                  surrogate_source="white-box")

    def target_log_prob(profiles) -> float:
        """The surrogate's mean log-probability of each fake's target after each filler."""
        histories, targets = [], []
        for profile, template, t in zip(profiles, p.templates, p.target_of):
            for pos in np.flatnonzero(template == 0):
                histories.append(profile[: pos + 1])
                targets.append(t)
        log_p = torch.log_softmax(surrogate.score(histories)[:, 1:], 1)
        return float(log_p.gather(1, torch.as_tensor(np.array(targets) - 1).unsqueeze(1)).mean())

    crafted = {objective: SurrogateGuided(surrogate="whitebox", objective=objective).craft(k, p)
               for objective in ("influence", "joint", "promote", "hard")}
    for profiles in crafted.values():
        assert_valid(profiles, p)
        assert all(len(set(x[t == 0].tolist())) == int((t == 0).sum()) for x, t in zip(profiles, p.templates))  # distinct fillers
    lp = {name: target_log_prob(profiles) for name, profiles in {**crafted, "random": RandomProfiles().craft(k, p)}.items()}
    print({name: round(v, 2) for name, v in lp.items()})
    assert lp["promote"] > lp["joint"] > lp["random"] + 0.5 > lp["hard"] + 1.0, lp
    # influence: fillers whose histories point where the attacker's real users' hidden states point
    few = tuple(tiny_split.train[:30])
    k_few = Knowledge(api=k.api, n_items=n_items, seed=1, surrogate=surrogate, few_shot=few)
    attack = SurrogateGuided(surrogate="whitebox", objective="influence")
    influenced = attack.craft(k_few, p)
    assert attack.diagnostics["real_histories"] == "30 few-shot sequences"

    def alignment(profiles) -> float:
        from victims.batching import left_pad

        with torch.no_grad():
            users = surrogate.model.final_hidden(left_pad(list(few), 50)).mean(0)
            hist = [x[: pos + 1] for x, t in zip(profiles, p.templates) for pos in np.flatnonzero(t == 0)]
            return float((surrogate.model.final_hidden(left_pad(hist, 50)) @ users).mean())

    assert alignment(influenced) > alignment(crafted["joint"]) and alignment(influenced) > alignment(RandomProfiles().craft(k, p))
    assert k.api.queries_used == 0  # the surrogate, never the victim's API


def test_surrogate_guided_caps_how_often_a_filler_is_used(surrogate, tiny_split) -> None:
    n_items = tiny_split.dataset.n_items
    rng = numpy_rng(0, "plan")
    p = make_plan(TARGETS, n_fakes=30, lengths=rng.integers(4, 12, size=30), placement="random", target_share=0.2, rng=rng)
    k = Knowledge(api=BlackBoxAPI(surrogate.score, n_items=n_items), n_items=n_items, seed=1, surrogate=surrogate)

    def most_used(max_uses: int | None) -> int:
        profiles = SurrogateGuided(surrogate="whitebox", objective="promote", max_uses=max_uses).craft(k, p)
        assert_valid(profiles, p)
        fillers = np.concatenate([x[t == 0] for x, t in zip(profiles, p.templates)])
        return int(np.bincount(fillers).max())

    assert most_used(None) > 4  # uncapped, the fakes pile onto the surrogate's favourites
    assert most_used(2) == 2 and most_used(3) == 3


def test_surrogate_guided_needs_a_named_surrogate() -> None:
    base = {"name": "t", "dataset": {"name": "synthetic", "users": 50, "items": 30}, "victim": {"name": "sasrec"}}
    with pytest.raises(ConfigError, match=r"attacks\[0\].surrogate: required"):
        build_scenario({**base, "attacks": [{"name": "poisoning.surrogate"}]})
    with pytest.raises(ConfigError, match=r"surrogate.from: 'stolen' is not the label of an extraction attack.*extraction.random"):
        build_scenario({**base, "attacks": [{"name": "extraction.random"},
                                            {"name": "poisoning.surrogate", "surrogate": {"from": "stolen"}}]})
    with pytest.raises(ConfigError, match="not the label of an extraction attack"):
        build_scenario({**base, "attacks": [{"name": "poisoning.random"},
                                            {"name": "poisoning.surrogate", "surrogate": {"from": "poisoning.random"}}]})
    ok = build_scenario({**base, "attacks": [{"name": "poisoning.surrogate", "surrogate": {"from": "x"}},
                                             {"name": "extraction.random", "label": "x"}]})
    assert ok.attacks[0].options["surrogate"] == {"from": "x"}
    with pytest.raises(ConfigError, match="already the label"):
        build_scenario({**base, "attacks": [{"name": "poisoning.random"}, {"name": "poisoning.random"}]})
    with pytest.raises(ConfigError, match="poisoning: profile_length must be"):
        build_scenario({**base, "poisoning": {"profile_length": 1}})
    with pytest.raises(ConfigError, match="poisoning.fake_share"):
        build_scenario({**base, "poisoning": {"fake_share": 0}})
    with pytest.raises(ConfigError, match="poisoning.target_selectio"):
        build_scenario({**base, "poisoning": {"target_selectio": "x"}})
    with pytest.raises(ConfigError, match="no surrogate was handed over"):
        SurrogateGuided(surrogate="whitebox").craft(knowledge(), plan(3))


# ------------------------------------------------------------------------------------------------
# Target selection


def test_unpopular_targets_are_below_the_median_and_seeded(tiny_dataset, tiny_split) -> None:
    popularity = tiny_dataset.item_popularity(tiny_split.train)
    median = np.median(popularity[1:][popularity[1:] >= 1])  # of the items seen in training only
    picks = [select_targets(tiny_dataset, tiny_split, PoisoningConfig(), seed).items for seed in range(6)]
    for items in picks:
        assert len(items) == 5 and len(set(items)) == 5
        assert all(1 <= popularity[i] < median for i in items)
    assert picks[0] == select_targets(tiny_dataset, tiny_split, PoisoningConfig(), 0).items
    assert select_targets(tiny_dataset, tiny_split, PoisoningConfig(), 0).median_popularity == median
    assert len(set(picks)) >= 5  # the seed matters
    t = select_targets(tiny_dataset, tiny_split, PoisoningConfig(), 0)
    assert t.raw == tuple(tiny_dataset.item_ids[i] for i in t.items) and t.popularity == tuple(int(popularity[i]) for i in t.items)


def test_bucket_targets_spread_over_popularity(tiny_dataset, tiny_split) -> None:
    popularity = tiny_dataset.item_popularity(tiny_split.train)
    t = select_targets(tiny_dataset, tiny_split, PoisoningConfig(targets=4, target_selection="buckets"), 0)
    pops = [popularity[i] for i in t.items]
    seen = np.sort(popularity[1:][popularity[1:] >= 1])
    quartiles = np.array_split(seen, 4)
    for pop, bucket in zip(pops, quartiles):
        assert bucket.min() <= pop <= bucket.max()
    assert pops[-1] > np.median(seen) > pops[0]


def test_explicit_target_ids_are_the_datasets_raw_ids(tiny_dataset, tiny_split) -> None:
    t = select_targets(tiny_dataset, tiny_split, PoisoningConfig(target_ids=["syn00012", "syn00140"]), 0)
    assert t.items == (12, 140) and t.raw == ("syn00012", "syn00140") and t.selection == "explicit"
    with pytest.raises(ConfigError, match=r"poisoning.target_ids: '12' is not an item id of synthetic \(ids look like 'syn00001'"):
        select_targets(tiny_dataset, tiny_split, PoisoningConfig(target_ids=[12]), 0)
    with pytest.raises(ConfigError, match="named twice"):
        select_targets(tiny_dataset, tiny_split, PoisoningConfig(target_ids=["syn00012", "syn00012"]), 0)


# ------------------------------------------------------------------------------------------------
# Scoring: exposure in chunks and the macro-averaged, user-resampled interval


def test_chunked_exposure_matches_target_exposure(tiny_split) -> None:
    histories = tiny_split.test_histories()
    users = tiny_split.eval_users
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(N_ITEMS + 1, 8, generator=gen)

    def score(chunk):
        return torch.stack([table[torch.as_tensor(h)].mean(0) for h in chunk]) @ table.T

    got = target_exposure_values(score, histories, users, tuple(TARGETS), [10, 50], exclude_history=False, batch=37)
    full = target_exposure(score(histories), histories, TARGETS, k=50)
    for t in TARGETS:
        hr, nd = full[t]
        assert np.array_equal(got.values["target_hr@50"][got.groups == t], hr)
        assert np.allclose(got.values["target_ndcg@50"][got.groups == t], nd)
        eligible = [u for u, h in zip(users, histories) if t not in h]
        assert got.eligible[t] == len(eligible) and got.clusters[got.groups == t].tolist() == eligible
    per_target = {t: got.values["target_hr@50"][got.groups == t] for t in TARGETS}
    row = Row("d", "v")
    got.add_to(row)
    agg = row.aggregate(seed=0, n_resamples=200, confidence=0.95)
    assert agg["target_hr@50"]["value"] == pytest.approx(mean_over_targets(per_target))
    assert agg["target_hr@50"]["groups"] == 3 and agg["target_hr@10"]["n"] == got.groups.size


def test_grouped_bootstrap_is_a_macro_mean_resampling_users() -> None:
    rng = np.random.default_rng(0)
    # Target A: 100 users, all hits; target B: 1,000 users, 10% hits. Macro mean 0.55, pooled mean 0.18.
    values = np.r_[np.ones(100), (rng.random(1000) < 0.1).astype(float)]
    groups = np.r_[np.zeros(100), np.ones(1000)]
    users = np.r_[np.arange(100), np.arange(1000)]
    mean, low, high = bootstrap_ci_grouped(values, groups, users, rng=np.random.default_rng(1), n_resamples=2000)
    b_mean = values[100:].mean()
    assert mean == pytest.approx((1 + b_mean) / 2)
    half_width_b = 1.96 * np.sqrt(b_mean * (1 - b_mean) / 1000) / 2  # only B varies, with weight 1/2
    assert low < mean < high and (high - low) / 2 == pytest.approx(half_width_b, rel=0.2)
    # Users shared between targets move together: perfectly correlated targets give a wider interval
    # than the same values on disjoint users.
    v = (rng.random(500) < 0.3).astype(float)
    both, shared = np.r_[v, v], np.r_[np.arange(500), np.arange(500)]
    _, lo_s, hi_s = bootstrap_ci_grouped(both, np.r_[np.zeros(500), np.ones(500)], shared, rng=np.random.default_rng(2))
    _, lo_d, hi_d = bootstrap_ci_grouped(both, np.r_[np.zeros(500), np.ones(500)], None, rng=np.random.default_rng(2))
    assert (hi_s - lo_s) > 1.25 * (hi_d - lo_d)
    assert bootstrap_ci_grouped(values, groups, users, rng=rng, n_resamples=0) == (mean, mean, mean)
    assert all(np.isnan(bootstrap_ci_grouped(np.zeros(0), np.zeros(0), rng=rng)))


def test_targets_describe() -> None:
    t = Targets((3, 4), ("a", "b"), (1, 2), "unpopular", 5.0)
    assert t.describe() == [{"item": 3, "raw_id": "a", "popularity": 1}, {"item": 4, "raw_id": "b", "popularity": 2}]
