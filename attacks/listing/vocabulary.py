"""Candidate words for a listing: what the items the API favours are called.

The attacker asks the API for its probes' top-k lists, counts how often each item is recommended,
and ranks the words of those items' public texts by the recommendation counts of the items they
occur in (each word once per item). Words already in the listing, stop words, words shorter than
three letters and numbers are left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

STOP_WORDS = frozenset(
    "the and for with from that this your you our are was were has have had not but all any can its "
    "into out over per one two set pack new inch size each more most very also only than then them "
    "they their there these those which while who why how what when where will would should could".split()
)
WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


def words_of(text: str) -> list[str]:
    """Lower-cased words of ``text`` (letters, inner apostrophes and hyphens), in order."""
    return [w.lower() for w in WORD.findall(text)]


def recommended_counts(answers: np.ndarray, n_items: int) -> np.ndarray:
    """[n_items + 1] how often each item appears in the top-k ``answers`` ([B, k] ids)."""
    return np.bincount(np.asarray(answers).reshape(-1), minlength=n_items + 1)


def winner_vocabulary(counts: np.ndarray, item_text: Sequence[str], *, size: int, exclude: str = "") -> list[tuple[str, float]]:
    """The ``size`` best words with their weight (summed recommendation counts), best first."""
    skip = set(words_of(exclude))
    weight: Counter[str] = Counter()
    for item in np.flatnonzero(counts):
        if item == 0:
            continue
        for word in set(words_of(item_text[item])):
            if len(word) >= 3 and word not in STOP_WORDS and word not in skip:
                weight[word] += float(counts[item])
    return sorted(weight.items(), key=lambda pair: (-pair[1], pair[0]))[:size]
