"""Keyword stuffing: the naive baseline an STS must beat (Kumar & Lakkaraju, 2024, compare
plain-text manipulations).

Threat model: the same vendor and the same text budget as the STS, no model access. The text is
the optimisation requests' most frequent content words (stopwords dropped), cycled until it holds
``n_tokens`` tokens of the ranker's tokenizer (or words, without one): what a shopper asks about,
written into the product.
"""

from __future__ import annotations

from pydantic import Field

from attacks.sts.base import STSKnowledge, TextAttack, requests_words
from redteam.params import Params


class KeywordStuffingParams(Params):
    n_tokens: int = Field(30, ge=1, description="text length in the ranker's tokens (match the STS's)")
    keywords: int = Field(12, ge=1, description="distinct words taken from the requests, most frequent first")


class KeywordStuffing(TextAttack):
    """The requests' most frequent content words, repeated to the STS's token length."""

    alias = "sts.keyword_stuffing"
    Params = KeywordStuffingParams

    def craft(self, knowledge: STSKnowledge) -> str:
        words = requests_words(knowledge.requests)[: self.params.keywords]
        if not words:
            raise ValueError("keyword stuffing: the optimisation requests hold no content word")
        count = knowledge.count_tokens or (lambda text: len(text.split()))
        picked: list[str] = []
        while True:
            trial = " ".join(picked + [words[len(picked) % len(words)]])
            if picked and count(trial) > self.params.n_tokens:
                break
            picked = trial.split()
            if count(trial) == self.params.n_tokens:
                break
        text = " ".join(picked)
        self.diagnostics = {"text": text, "tokens": count(text), "keywords": words}
        return text
