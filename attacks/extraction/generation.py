"""Querying the black-box API for whole transcripts, batched across sequences.

Every prefix of every sequence is one query. Generation runs waves of sequences in parallel:
at each step the active sequences' current prefixes go to the API in one call, and a
``Chooser`` picks each sequence's next item from the answers. This is what makes extraction
cost minutes, not hours (the reference code asked one prefix at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from attacks.extraction.transcript import Transcript
from redteam.serving.metered import MeteredEndpoint

# (current prefixes of the active sequences, their answers [B, k], rng) -> next item per sequence
Chooser = Callable[[list[np.ndarray], np.ndarray, np.random.Generator], np.ndarray]
ProgressFn = Callable[[int], None]  # queries used so far by this stream

QUERY_CHUNK = 4096


class AnswerMemo:
    """The answers already bought, by history: an attacker never pays twice for one history.

    Synthetic sequences grown from shared real starts repeat their first prefixes; asking those
    again would spend budget on nothing new (the API is deterministic), so they are answered from
    here and cost no query. They still enter the transcript as training pairs.
    """

    def __init__(self) -> None:
        self._answers: dict[bytes, np.ndarray] = {}

    def ask(self, api: MeteredEndpoint, prefixes: list[np.ndarray]) -> tuple[np.ndarray, int]:
        """(answers [B, k], queries spent): only histories not seen before go to the API."""
        keys = [p.tobytes() for p in prefixes]
        new: dict[bytes, np.ndarray] = {}
        for key, prefix in zip(keys, prefixes):
            if key not in self._answers:
                new.setdefault(key, prefix)
        if new:
            got = np.asarray(api.topk(list(new.values())), dtype=np.int32)
            self._answers.update(zip(new.keys(), got))
        return np.stack([self._answers[key] for key in keys]), len(new)


def query_all_prefixes(
    api: MeteredEndpoint,
    sequences: Sequence[np.ndarray],
    *,
    max_queries: int,
    next_real: bool = False,
    progress: ProgressFn | None = None,
    memo: AnswerMemo | None = None,
) -> Transcript:
    """Ask for every prefix of each sequence, in order, stopping at ``max_queries``.

    With ``next_real`` the sequences are the attacker's real ones and the item after each
    prefix is recorded as the real next interaction. Histories already in ``memo`` (or repeated
    here) cost no query.
    """
    transcript = Transcript()
    kept, fulls = [], []
    left = max_queries
    for seq in sequences:
        if left <= 0:
            break
        n = min(len(seq), left)
        if n == 0:
            continue
        kept.append(np.asarray(seq[:n], dtype=np.int64))
        fulls.append(seq)
        left -= n
    memo = memo if memo is not None else AnswerMemo()
    prefixes = [s[: t + 1] for s in kept for t in range(len(s))]
    parts, spent = [], 0
    for start in range(0, len(prefixes), QUERY_CHUNK):
        got, cost = memo.ask(api, prefixes[start : start + QUERY_CHUNK])
        parts.append(got)
        spent += cost
        if progress is not None:
            progress(spent)
    answers = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.int32)
    offset = 0
    for seq, full in zip(kept, fulls):
        lists = answers[offset : offset + len(seq)]
        offset += len(seq)
        after = np.append(np.asarray(full, dtype=np.int64)[1:], 0)[: len(seq)] if next_real else None
        transcript.add(seq, lists, next_real=after, real=next_real)
    return transcript


def generate(
    api: MeteredEndpoint,
    *,
    starts: Sequence[np.ndarray],
    lengths: np.ndarray,
    choose: Chooser,
    rng: np.random.Generator,
    max_queries: int,
    wave: int = 512,
    progress: ProgressFn | None = None,
    memo: AnswerMemo | None = None,
) -> Transcript:
    """Grow each sequence from its start items to its length, one API call per step per wave.

    The start items are followed as given (each of their prefixes is queried too); after them,
    ``choose`` picks the next item. Stops when ``max_queries`` are used: sequences still growing
    then end at their last queried prefix. Histories already in ``memo`` cost no query.
    """
    transcript = Transcript()
    memo = memo if memo is not None else AnswerMemo()
    used = 0
    first = 0
    while first < len(starts) and used < max_queries:
        # Start only as many sequences as the budget left can finish (at least one), so the
        # last wave is not cut short across the board; free (memo) answers leave budget for
        # another wave.
        planned = np.cumsum(np.maximum(1, np.asarray(lengths[first : first + wave])))
        block = range(first, first + max(1, int(np.searchsorted(planned, max_queries - used, side="right"))))
        first = block.stop
        seqs = [[int(np.asarray(starts[i])[0])] for i in block]
        answers: list[list[np.ndarray]] = [[] for _ in block]
        target = [max(1, int(lengths[i])) for i in block]
        active = list(range(len(block)))
        while active and used < max_queries:
            active = active[: max_queries - used]
            prefixes = [np.asarray(seqs[j], dtype=np.int64) for j in active]
            got, spent = memo.ask(api, prefixes)
            used += spent
            if progress is not None:
                progress(used)
            growing, grow_rows = [], []
            for row, j in enumerate(active):
                answers[j].append(got[row])
                if len(seqs[j]) < target[j]:
                    growing.append(j)
                    grow_rows.append(row)
            if not growing:
                break
            chosen = choose([prefixes[r] for r in grow_rows], got[grow_rows], rng)
            for j, item in zip(growing, chosen):
                start = np.asarray(starts[block[j]])
                position = len(seqs[j])
                seqs[j].append(int(start[position]) if position < len(start) else int(item))
            active = growing
        for j in range(len(block)):
            if answers[j]:
                n = len(answers[j])
                transcript.add(np.asarray(seqs[j][:n]), np.stack(answers[j]))
    return transcript


def spare_starts(max_queries: int, mean_length: float) -> int:
    """How many sequences to prepare so that the budget is spent even when repeated prefixes
    are answered for free (``generate`` stops at the budget; unused starts cost nothing)."""
    return int(np.ceil(max_queries / max(1.0, mean_length) * 1.5)) + 1


def uniform_from_catalog(n_items: int) -> Chooser:
    """The random baseline's choice: any item, uniformly, whatever the answer was."""
    return lambda histories, lists, rng: rng.integers(1, n_items + 1, size=len(lists))


def uniform_from_list(histories: list[np.ndarray], lists: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Yue et al.'s choice: an item drawn uniformly from the returned list."""
    cols = rng.integers(0, lists.shape[1], size=len(lists))
    return lists[np.arange(len(lists)), cols].astype(np.int64)
