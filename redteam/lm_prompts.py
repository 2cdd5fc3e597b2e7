"""Prompts built for a language model's window: LoRec's user text (most recent items that fit)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from redteam.errors import ConfigError

if TYPE_CHECKING:
    from redteam.lm_model import LanguageModel

__all__ = ["lorec_user_prompt"]

_LOREC_HEAD = "In {domain} recommendation, a user's interaction sequence is as follows: "
_LOREC_TAIL = ". Please assess the likelihood of this user being a fraudster."


def _lorec_text(titles: Sequence[str], domain: str) -> str:
    items = "; ".join(f"(Item title: {t})" for t in titles)
    return _LOREC_HEAD.format(domain=domain) + items + _LOREC_TAIL


def lorec_user_prompt(titles: Sequence[str], *, domain: str, lm: LanguageModel) -> tuple[str, int]:
    """LoRec's user text for a history (oldest first) and the number of items it holds.

    "In <domain> recommendation, a user's interaction sequence is as follows: (Item title: t1);
    (Item title: t2). Please assess the likelihood of this user being a fraudster."
    When the full text exceeds ``lm.window`` tokens the most recent items that fit are kept.
    Each item piece is tokenised once to estimate the fit; the final text is checked and items
    are dropped from the front until it fits.
    """
    titles = [str(t) for t in titles]
    full = _lorec_text(titles, domain)
    if lm.count_tokens([full])[0] <= lm.window:
        return full, len(titles)
    fixed = lm.count_tokens([_lorec_text([], domain)])[0]
    if fixed > lm.window:
        raise ConfigError(
            f"lm.max_length: a window of {lm.window} tokens cannot hold the LoRec prompt's fixed text ({fixed} tokens)"
        )
    costs = lm._token_counts([f"(Item title: {t});" for t in titles], special=False)
    budget, keep = lm.window - fixed, 0
    for cost in reversed(costs):
        if budget - cost < 0:
            break
        budget -= cost
        keep += 1
    while keep > 0:
        text = _lorec_text(titles[len(titles) - keep:], domain)
        excess = lm.count_tokens([text])[0] - lm.window
        if excess <= 0:
            return text, keep
        # Drop the oldest kept items until their estimated cost covers the excess (at least one).
        start, saved = len(titles) - keep, 0
        while keep > 0 and saved < excess:
            saved += costs[start]
            start += 1
            keep -= 1
    return _lorec_text([], domain), 0
