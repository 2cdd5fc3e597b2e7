"""Greedy black-box rewriting of a listing: word edits kept only when the API ranks the item higher.

A query-based search in the spirit of ATR (CIKM 2024, which rewrites item text to raise its rank)
with the black-box constraint of the ACL 2024 "Stealthy Attack on LLM-based Recommendation": no
gradients, no surrogate, only top-k answers. Each step proposes ``candidates`` edits of the current
text (insert a favoured word at a random place, or replace one of its words by a favoured word;
favoured words drawn in proportion to their weight, :mod:`attacks.listing.vocabulary`), publishes
each in turn, measures the item's exposure on the attacker's probe histories
(:mod:`attacks.listing.probe`: hits in the top-k, then mean reciprocal rank) and keeps the best if
it beats the current text. It stops after ``max_edits`` word edits, ``patience`` steps without a
gain, or before a probe round its query budget cannot pay, and publishes the best text found (the
original if no edit beat it). A candidate the platform rejects (moderation) scores nothing and is
not proposed again.
Threat model: see :mod:`attacks.listing.base`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from attacks.listing.base import KNOWLEDGE_USED, Listing, ListingAttack, ListingParams, word_edits
from attacks.listing.probe import ProbeBudget, ProbeScore, probe_exposure
from attacks.listing.stuffing import favoured_words, require_item_text
from redteam.knowledge import Knowledge
from redteam.seeding import numpy_rng


class GreedyParams(ListingParams):
    candidates: int = Field(16, ge=1, description="edits proposed and measured per step")
    patience: int = Field(2, ge=1, description="steps without a gain before stopping")


def propose(text: str, words: list[str], weights: np.ndarray, rng: np.random.Generator) -> str:
    """One edit of ``text``: a favoured word inserted at a random place or replacing a random word."""
    tokens = text.split()
    word = words[int(rng.choice(len(words), p=weights))]
    if tokens and rng.random() < 0.5:
        tokens[int(rng.integers(len(tokens)))] = word
    else:
        tokens.insert(int(rng.integers(len(tokens) + 1)), word)
    return " ".join(tokens)


class GreedyRewrite(ListingAttack):
    """Greedy word edits accepted on measured exposure gains (black-box, query-based)."""

    alias: ClassVar[str] = "listing.greedy"
    Params: ClassVar[type[GreedyParams]] = GreedyParams

    def rewrite(self, knowledge: Knowledge, listing: Listing) -> None:
        p = self.params
        rng = numpy_rng(knowledge.seed, "listing-greedy", listing.item)
        require_item_text(self, knowledge)
        budget, probes = ProbeBudget.of(knowledge.api, listing.budget), self.probes(knowledge)
        if not budget.allows(2 * len(probes)):  # the vocabulary round and the starting exposure
            self.diagnostics = {"knowledge": KNOWLEDGE_USED, "edits": 0, "budget_exhausted": True,
                                "note": f"budget exhausted: {listing.budget} queries, under two probe rounds"}
            return
        vocabulary = favoured_words(self, knowledge, listing)
        if not vocabulary:
            self.diagnostics = {"knowledge": KNOWLEDGE_USED, "edits": 0, "note": "no candidate words in the recommended items' texts"}
            return
        words = [w for w, _ in vocabulary]
        weights = np.array([w for _, w in vocabulary], dtype=np.float64)
        weights /= weights.sum()
        best_text, best = listing.original, probe_exposure(knowledge.api, probes, listing.item)
        start, steps, stale, rejected, tried, exhausted = best, 0, 0, 0, {listing.original}, False
        while not exhausted and stale < p.patience and word_edits(listing.original, best_text) < p.max_edits:
            steps += 1
            step_best: tuple[ProbeScore, str] | None = None
            for _ in range(p.candidates):
                text = propose(best_text, words, weights, rng)
                if text in tried or word_edits(listing.original, text) > p.max_edits:
                    continue
                if not budget.allows(len(probes)):
                    exhausted = True
                    break
                tried.add(text)
                if not listing.edit(text):
                    rejected += 1
                    continue
                score = probe_exposure(knowledge.api, probes, listing.item)
                if step_best is None or score > step_best[0]:
                    step_best = (score, text)
            if step_best is not None and step_best[0] > best:
                best, best_text, stale = step_best[0], step_best[1], 0
            else:
                stale += 1
        published = listing.edit(best_text)  # the best text found (the original if none beat it)
        self.diagnostics = {
            "knowledge": KNOWLEDGE_USED, "steps": steps, "edits": word_edits(listing.original, best_text),
            "candidates_tried": len(tried) - 1, "rejected": rejected, "budget_exhausted": exhausted,
            "final_published": published, "probe_hits_before": start.hits, "probe_hits_after": best.hits,
            "probe_mrr_before": round(start.mrr, 5), "probe_mrr_after": round(best.mrr, 5),
        }
