"""Keyword stuffing of a listing: append the words of the items the API favours, no search.

The zero-search baseline of the listing family (the "keyword stuffing" of product-visibility
studies, e.g. Kumar & Lakkaraju 2024): one round of probe queries to learn which items the API
recommends to the attacker's users, then the ``max_edits`` heaviest words of those items' texts
(:mod:`attacks.listing.vocabulary`) appended to the listing in one edit. Threat model: see
:mod:`attacks.listing.base`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from attacks.listing.base import KNOWLEDGE_USED, Listing, ListingAttack, ListingParams
from attacks.listing.probe import ProbeBudget
from attacks.listing.vocabulary import recommended_counts, winner_vocabulary
from redteam.errors import ConfigError
from redteam.knowledge import Knowledge


class KeywordStuffing(ListingAttack):
    """Append the favoured items' most frequent words (one edit of ``max_edits`` words)."""

    alias: ClassVar[str] = "listing.stuffing"
    Params: ClassVar[type[ListingParams]] = ListingParams

    def rewrite(self, knowledge: Knowledge, listing: Listing) -> None:
        require_item_text(self, knowledge)
        if not ProbeBudget.of(knowledge.api, listing.budget).allows(len(self.probes(knowledge))):
            self.diagnostics = {"knowledge": KNOWLEDGE_USED, "added": [],
                                "accepted": False, "budget_exhausted": True,
                                "note": f"budget exhausted: {listing.budget} queries, under one probe round"}
            return
        vocabulary = favoured_words(self, knowledge, listing)
        added = [word for word, _ in vocabulary[: self.params.max_edits]]
        accepted = listing.edit(" ".join([listing.original, *added]))
        self.diagnostics = {"knowledge": KNOWLEDGE_USED,
                            "added": added, "accepted": accepted}


def require_item_text(attack: ListingAttack, knowledge: Knowledge) -> None:
    if knowledge.item_text is None:
        raise ConfigError(f"attacks.{attack.alias}: needs the public item texts (attacker.item_text: true)")


def favoured_words(attack: ListingAttack, knowledge: Knowledge, listing: Listing) -> list[tuple[str, float]]:
    """The vocabulary of the items the API recommends to the attacker's probes (one query each)."""
    require_item_text(attack, knowledge)
    answers = np.asarray(knowledge.api.topk(attack.probes(knowledge)))
    counts = recommended_counts(answers, knowledge.n_items)
    return winner_vocabulary(counts, knowledge.item_text, size=attack.params.vocabulary, exclude=listing.original)
