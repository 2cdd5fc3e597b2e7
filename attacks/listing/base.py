"""The listing family: ``rewrite(knowledge, listing)`` edits the attacker's own item text.

Threat model: the attacker is a seller on the platform. It owns one item (its listing) and may
replace that item's text as often as the platform lets it, within ``max_edits`` word edits of the
original text (an edit inserts, deletes or replaces one word); every other item's text, which is
public, it may read (``Knowledge.item_text``). It never touches training data or model weights;
a recommender that reads item text (``text_sasrec``) sees the edit at once, without retraining.
It observes the effect only through the black-box top-k API (``Knowledge.api``), queried with its
own users' histories (``Knowledge.few_shot``). The platform may moderate edits with a text filter
(a ``text`` defense): a rejected edit leaves the listing unchanged, and the attacker learns that it
was rejected. Restoring the original text is always accepted. Queries count against the API's
budget; each listing may spend its ``budget`` and a recipe stops before a probe round that does not
fit (``budget exhausted`` in its diagnostics).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Protocol

from pydantic import Field

from attacks.base import Attack
from redteam.knowledge import Knowledge
from redteam.params import Params


class Listing(Protocol):
    """The attacker's handle on its own listing (the platform implements it)."""

    item: int  # the item id the attacker owns
    original: str  # its text before the attack
    budget: int | None  # API queries this listing may spend (None: unlimited)

    @property
    def text(self) -> str: ...

    def edit(self, text: str) -> bool:
        """Publish ``text``: False when the platform rejects it (moderation), else True."""
        ...


class ListingParams(Params):
    max_edits: int = Field(5, ge=1, description="word edits (insert, delete, replace) allowed from the original text")
    probes: int = Field(200, ge=1, description="the attacker's own histories whose top-k answers measure exposure")
    vocabulary: int = Field(200, ge=1, description="candidate words: the most frequent words of the items the API "
                            "recommends to the probes")


KNOWLEDGE_USED = "item texts, own users' histories, top-k answers"  # what a listing recipe reads (diagnostics)


def word_edits(original: str, text: str) -> int:
    """Word-level Levenshtein distance (insertions, deletions, replacements of whole words)."""
    a, b = original.split(), text.split()
    previous = list(range(len(b) + 1))
    for i, word in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1]


class ListingAttack(Attack):
    """Base of the listing recipes: ``rewrite`` publishes edits through ``listing.edit`` and
    records what it did in ``self.diagnostics``."""

    family: ClassVar[str] = "listing"
    Params: ClassVar[type[ListingParams]] = ListingParams

    @abstractmethod
    def rewrite(self, knowledge: Knowledge, listing: Listing) -> None:
        """Edit ``listing`` (at most ``max_edits`` word edits from its original text)."""

    def probes(self, knowledge: Knowledge) -> list[Any]:
        """The attacker's histories that measure exposure (its first ``probes`` few-shot users)."""
        from redteam.errors import ConfigError

        histories = [h for h in knowledge.few_shot if len(h)][: self.params.probes]
        if not histories:
            raise ConfigError(f"attacks.{self.alias}: needs the attacker's own users (attacker.few_shot_ratio > 0)")
        return histories
