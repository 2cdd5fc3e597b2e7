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
