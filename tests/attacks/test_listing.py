"""Listing rewriting (attacks/listing, redteam/stages/listing.py): the parts by hand, then a run
on the synthetic shop with a text-based victim and the ID-only SASRec control."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attacks.listing.base import word_edits
from attacks.listing.probe import probe_exposure
from attacks.listing.vocabulary import recommended_counts, winner_vocabulary, words_of
from defenses.text_filters import NonWordFilter
from redteam.errors import BudgetExceeded
from redteam.stages.listing import DeskListing, ListingDesk, SealedListing


def test_word_edits_count_whole_word_insertions_deletions_and_replacements():
    assert word_edits("red cotton shirt", "red cotton shirt") == 0
    assert word_edits("red cotton shirt", "red linen shirt") == 1
    assert word_edits("red cotton shirt", "bright red cotton shirt sale") == 2
    assert word_edits("red cotton shirt", "shirt") == 2
    assert word_edits("", "a b c") == 3


def test_the_vocabulary_weighs_words_by_how_often_their_items_are_recommended():
    texts = ["", "Vitamin Serum", "Vitamin Cream for Face", "Face Mask", "Tea"]
    counts = recommended_counts(np.array([[1, 2], [2, 3], [2, 1]]), 4)
    assert counts.tolist() == [0, 2, 3, 1, 0]
    vocabulary = winner_vocabulary(counts, texts, size=10, exclude="Green Serum")
    # vitamin: items 1 + 2 = 5; face: 2 + 3 = 4; cream: 3; mask: 1; "serum" is in the listing; "for" is a stop word
    assert vocabulary == [("vitamin", 5.0), ("face", 4.0), ("cream", 3.0), ("mask", 1.0)]
    assert words_of("Anti-Aging 50ml O'Neil") == ["anti-aging", "ml", "o'neil"]


class Recorder:
    """Stands in for a text-reading victim: records the texts the desk applies."""

    def __init__(self) -> None:
        self.applied: list[tuple[int, str]] = []

    def set_item_text(self, item: int, text: str) -> None:
        self.applied.append((item, text))


def test_the_desk_applies_accepted_edits_and_moderation_rejects_flagged_ones():
    texts = ["", "Rose Face Cream", "Steel Water Bottle 1L", "Cotton Socks"]
    moderation = NonWordFilter(quantile=1.0).calibrate(texts[2:])
    model = Recorder()
    listing = ListingDesk(model, texts, moderation).listing(1)
    assert listing.edit("Rose Face Cream organic") and listing.text == "Rose Face Cream organic"
    assert not listing.edit("Rose Face Cream }{#@ xq!!~") and listing.text == "Rose Face Cream organic"
    assert model.applied == [(1, "Rose Face Cream organic")] and (listing.accepted, listing.rejected) == (1, 1)


def test_the_attacker_holds_its_listing_not_the_desk_or_the_model():
    model = Recorder()
    desk = ListingDesk(model, ["", "Rose Face Cream"])
    handle = SealedListing.of(desk.listing(1))
    assert (handle.item, handle.original, handle.text) == (1, "Rose Face Cream", "Rose Face Cream")
    assert handle.edit("Rose Face Cream organic") and handle.text == "Rose Face Cream organic"
    assert model.applied == [(1, "Rose Face Cream organic")]
    assert not any(isinstance(v, (ListingDesk, Recorder, DeskListing)) for v in handle)
    assert not hasattr(handle.edit, "__self__") and not hasattr(handle.current, "__self__")  # closures, not bound methods


def test_the_desk_refuses_an_edit_past_the_attack_budget():
    model = Recorder()
    listing = ListingDesk(model, ["", "Rose Face Cream"], max_edits=2).listing(1)
    assert listing.edit("Rose Face Cream organic vegan")  # two insertions: within the budget
    with pytest.raises(BudgetExceeded, match="item 1: an edit 3 words from the original text, over max_edits 2"):
        listing.edit("Rose Face Cream organic vegan serum")
    assert listing.text == "Rose Face Cream organic vegan" and model.applied == [(1, "Rose Face Cream organic vegan")]


class Answers:
    topk_default = 3

    def topk(self, histories):
        return [[5, 1, 2], [2, 7, 1], [3, 4, 6]][: len(histories)]


def test_probe_exposure_counts_hits_then_reciprocal_ranks():
    score = probe_exposure(Answers(), [np.array([1])] * 3, 1)
    assert score.hits == 2 and score.mrr == pytest.approx((1 / 2 + 1 / 3) / 3)


SCENARIO = """
name: listing
seed: 0
dataset: {name: synthetic, users: 600, items: 200}
victims:
  - {name: text_sasrec, epochs: 8, hidden: 32}
  - {name: sasrec, epochs: 8, hidden: 32}
api: {topk: 20, budget: 200000}
attacker: {few_shot_ratio: 0.2, item_text: true}
poisoning: {targets: 3, k: [10]}
attacks:
  - {name: listing.stuffing, max_edits: 5}
  - {name: listing.greedy, max_edits: 5, candidates: 8}
defenses: [{name: none}, {name: nonword_filter}]
eval: {k: [10], bootstrap: 200}
"""


def test_greedy_rewriting_moves_the_text_victim_and_does_nothing_to_id_only_sasrec(run_cli, tmp_path):
    """The edits reach a text-reading victim (its item scores change, the attacker's own probe
    exposure never falls and rises for at least two listings) and never an ID-only one (lift
    exactly 0). Whether the lift reaches real users is seed-dependent on this shop: over attacker
    seeds 0-3 the greedy lift in target HR@10 was -.0001, +.0113 [.0014, .0196], +.0006 and -.0008
    (2026-12-06), so no sign is asserted for it here."""
    (tmp_path / "s.yaml").write_text(SCENARIO)
    result = run_cli("run", tmp_path / "s.yaml", "--out", tmp_path / "runs", "-q")
    assert result.code == 0, result
    [run_dir] = (tmp_path / "runs").iterdir()
    rows = {(r["victim"], r["attack"], r["defense"]): r for r in json.loads((run_dir / "results.json").read_text())["rows"]}
    greedy = rows[("text_sasrec", "listing.greedy", "none")]["info"]["listing"][0]
    assert greedy["victim_reads_text"] and greedy["lift"]["target_hr@10"]["ci_low"] < greedy["lift"]["target_hr@10"]["ci_high"]
    assert greedy["lift"]["target_ndcg@10"]["value"] != 0  # the text victim's scores for the items moved
    assert abs(greedy["clean_change"]["ndcg@10"]["value"]) < 0.01
    for listing in greedy["listings"]:
        assert word_edits(listing["original"], listing["final"]) <= 5
        assert listing["recipe"]["probe_hits_after"] >= listing["recipe"]["probe_hits_before"]
    assert sum(l["recipe"]["probe_hits_after"] > l["recipe"]["probe_hits_before"] for l in greedy["listings"]) >= 2
    for attack in ("listing.stuffing", "listing.greedy"):  # the control: edits do not reach an ID-only model
        control = rows[("sasrec", attack, "none")]["info"]["listing"][0]
        assert not control["victim_reads_text"]
        assert all(v["value"] == 0 for v in control["lift"].values())
    stuffed = rows[("sasrec", "listing.stuffing", "none")]["info"]["listing"][0]["listings"]
    assert all(l["final"] != l["original"] for l in stuffed)
    filtered = rows[("text_sasrec", "listing.greedy", "nonword_filter")]
    detection = filtered["info"]["listing"][0]["detection"]
    rewritten = sum(l["final"] != l["original"] for l in greedy["listings"])  # unchanged listings are no attack texts
    assert detection["n_attack"] == rewritten >= 2 and detection["detection_rate"] == 0.0 and 0 <= detection["fpr"] <= 0.1
    assert "detection_rate" in filtered["metrics"]


class FlagAllBut:
    """Moderation that flags every text without ``word`` (the catalog's own texts included)."""

    def __init__(self, word: str) -> None:
        self.word = word

    def flag(self, texts):
        return [self.word not in t.split() for t in texts]


def test_restoring_the_original_text_is_never_moderated():
    model = Recorder()
    listing = ListingDesk(model, ["", "Rose Face Cream"], FlagAllBut("ok")).listing(1)
    assert not listing.edit("Rose Face Cream vegan")  # flagged
    assert listing.edit("Rose Face Cream ok") and listing.edit("Rose Face Cream")  # flagged, but published before
    assert model.applied == [(1, "Rose Face Cream ok"), (1, "Rose Face Cream")] and listing.rejected == 1


def test_the_budget_share_splits_what_is_left_among_the_listings_to_go():
    from redteam.stages.listing import budget_share

    assert budget_share(None, 3) is None
    assert [budget_share(100, n) for n in (3, 2, 1)] == [33, 50, 100]
    assert budget_share(-5, 2) == 0 and budget_share(7, 0) == 7


class WordOverlap:
    """A tiny text-reading recommender: an item scores the words its text shares with the texts of
    the history's items (ties to the lower id); ``set_item_text`` changes the scores at once."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = list(texts)

    def set_item_text(self, item: int, text: str) -> None:
        self.texts[item] = text

    def score(self, histories):
        import torch

        words = [set(t.lower().split()) for t in self.texts]
        out = torch.zeros(len(histories), len(self.texts))
        for row, history in enumerate(histories):
            seen = set().union(*(words[int(i)] for i in history if int(i)))
            out[row] = torch.tensor([len(w & seen) - 1e-3 * j for j, w in enumerate(words)])
        out[:, 0] = -1e9
        return out


def test_greedy_stops_before_a_probe_round_its_budget_cannot_pay():
    from attacks.listing.greedy import GreedyRewrite
    from redteam.knowledge import Knowledge
    from redteam.serving.local import LocalRecommender
    from redteam.serving.metered import MeteredEndpoint

    texts = ["", "tea cup", "vitamin serum face", "vitamin cream face", "face mask vitamin", "steel cup", "plain box"]
    model = WordOverlap(texts)
    desk = ListingDesk(model, texts, max_edits=3)
    api = MeteredEndpoint(LocalRecommender(model.score, n_items=len(texts) - 1), topk=4, budget=1000)
    probes = (np.array([2, 3]), np.array([4]), np.array([3, 4]), np.array([2]))
    knowledge = Knowledge(api=api, n_items=len(texts) - 1, seed=0, few_shot=probes, item_text=tuple(texts))
    attack = GreedyRewrite(GreedyRewrite.Params(probes=4, candidates=4, max_edits=3, patience=3))

    attack.rewrite(knowledge, SealedListing.of(desk.listing(6), budget=20))  # 2 rounds to start, then 3 candidates
    assert api.queries_used <= 20 and api.queries_used % 4 == 0
    d = attack.diagnostics
    assert d["budget_exhausted"] and d["final_published"] and d["candidates_tried"] == (api.queries_used - 8) // 4
    assert d["probe_hits_after"] > d["probe_hits_before"] == 0  # "plain box" shares no word; an edit that does wins
    assert desk.listing(6).text != "plain box" and word_edits("plain box", desk.listing(6).text) <= 3

    used = api.queries_used
    attack.rewrite(knowledge, SealedListing.of(desk.listing(1), budget=7))  # under two probe rounds: no query at all
    assert api.queries_used == used and attack.diagnostics["budget_exhausted"] and desk.listing(1).text == "tea cup"


def test_the_undefended_row_runs_once_and_first_wherever_none_is_listed():
    from types import SimpleNamespace

    from redteam.scenario import build_scenario
    from redteam.stages.listing import ListingStage

    def order(defenses):
        scenario = build_scenario({"name": "t", "dataset": {"name": "synthetic", "users": 50, "items": 30},
                                   "victims": [{"name": "text_sasrec"}], "attacks": [{"name": "listing.stuffing"}],
                                   "attacker": {"few_shot_ratio": 0.1, "item_text": True}, "defenses": defenses})
        stage = object.__new__(ListingStage)
        stage.ctx = SimpleNamespace(scenario=scenario)
        return [d.label() for d in stage.defenses()]

    assert order([{"name": "nonword_filter"}, {"name": "none"}]) == ["none", "nonword_filter"]
    assert order([{"name": "nonword_filter"}]) == ["none", "nonword_filter"]
    assert order([{"name": "none"}, {"name": "perplexity_filter"}]) == ["none", "perplexity_filter"]


def test_without_item_texts_the_attack_says_so_before_checking_its_budget():
    from attacks.listing.greedy import GreedyRewrite
    from attacks.listing.stuffing import KeywordStuffing
    from redteam.errors import ConfigError
    from redteam.knowledge import Knowledge
    from redteam.serving.local import LocalRecommender
    from redteam.serving.metered import MeteredEndpoint

    texts = ["", "tea cup", "steel cup"]
    api = MeteredEndpoint(LocalRecommender(WordOverlap(texts).score, n_items=2), topk=2)
    knowledge = Knowledge(api=api, n_items=2, seed=0, few_shot=(np.array([1]),))
    handle = SealedListing.of(ListingDesk(Recorder(), texts).listing(1), budget=0)
    for attack in (GreedyRewrite(GreedyRewrite.Params()), KeywordStuffing(KeywordStuffing.Params())):
        with pytest.raises(ConfigError, match="attacker.item_text: true"):
            attack.rewrite(knowledge, handle)


BUDGET_SCENARIO = """
name: listing-budget
seed: 0
dataset: {name: synthetic, users: 300, items: 120}
victims: [{name: text_sasrec, epochs: 2, hidden: 16}]
api: {topk: 20, budget: 150}
attacker: {few_shot_ratio: 0.2, item_text: true}
poisoning: {targets: 2, k: [10]}
attacks: [{name: listing.greedy, probes: 40, candidates: 4}]
eval: {k: [10], bootstrap: 50}
"""


def test_a_budget_too_small_for_the_search_ends_the_row_with_a_warning_not_an_error(run_cli, tmp_path):
    """150 queries for 2 listings of 40 probes: the first gets 75 (under the 2 rounds greedy needs
    to start), the second 150 (2 rounds and 1 candidate); the row says which listing ran short."""
    (tmp_path / "s.yaml").write_text(BUDGET_SCENARIO)
    result = run_cli("run", tmp_path / "s.yaml", "--out", tmp_path / "runs", "-q")
    assert result.code == 0, result
    [run_dir] = (tmp_path / "runs").iterdir()
    row = next(r for r in json.loads((run_dir / "results.json").read_text())["rows"] if r["attack"] == "listing.greedy")
    entry = row["info"]["listing"][0]
    assert entry["queries"] <= 150 and [l["recipe"]["budget_exhausted"] for l in entry["listings"]] == [True, True]
    assert entry["listings"][0]["final"] == entry["listings"][0]["original"]  # no query at all for the first
    assert any("the query budget ran out for listing(s)" in w for w in row["info"]["warnings"])
