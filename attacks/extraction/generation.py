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
from redteam.api import BlackBoxAPI

# (current prefixes of the active sequences, their answers [B, k], rng) -> next item per sequence
Chooser = Callable[[list[np.ndarray], np.ndarray, np.random.Generator], np.ndarray]
ProgressFn = Callable[[int], None]  # queries used so far by this stream

QUERY_CHUNK = 4096


def query_all_prefixes(
    api: BlackBoxAPI,
    sequences: Sequence[np.ndarray],
    *,
    max_queries: int,
    next_real: bool = False,
    progress: ProgressFn | None = None,
) -> Transcript:
    """Ask for every prefix of each sequence, in order, stopping at ``max_queries``.

    With ``next_real`` the sequences are the attacker's real ones and the item after each
    prefix is recorded as the real next interaction.
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
    prefixes = [s[: t + 1] for s in kept for t in range(len(s))]
    answers: list[list[int]] = []
    for start in range(0, len(prefixes), QUERY_CHUNK):
        answers += api.topk(prefixes[start : start + QUERY_CHUNK])
        if progress is not None:
            progress(len(answers))
    offset = 0
    for seq, full in zip(kept, fulls):
        lists = np.asarray(answers[offset : offset + len(seq)], dtype=np.int32)
        offset += len(seq)
        after = np.append(np.asarray(full, dtype=np.int64)[1:], 0)[: len(seq)] if next_real else None
        transcript.add(seq, lists, next_real=after, real=next_real)
    return transcript


def generate(
    api: BlackBoxAPI,
    *,
    starts: Sequence[np.ndarray],
    lengths: np.ndarray,
    choose: Chooser,
    rng: np.random.Generator,
    max_queries: int,
    wave: int = 512,
    progress: ProgressFn | None = None,
) -> Transcript:
    """Grow each sequence from its start items to its length, one API call per step per wave.

    The start items are followed as given (each of their prefixes is queried too); after them,
    ``choose`` picks the next item. Stops when ``max_queries`` are used: sequences still growing
    then end at their last queried prefix.
    """
    transcript = Transcript()
    used = 0
    for first in range(0, len(starts), wave):
        if used >= max_queries:
            break
        block = range(first, min(first + wave, len(starts)))
        seqs = [[int(np.asarray(starts[i])[0])] for i in block]
        answers: list[list[np.ndarray]] = [[] for _ in block]
        target = [max(1, int(lengths[i])) for i in block]
        active = list(range(len(block)))
        while active and used < max_queries:
            active = active[: max_queries - used]
            prefixes = [np.asarray(seqs[j], dtype=np.int64) for j in active]
            got = np.asarray(api.topk(prefixes), dtype=np.int32)
            used += len(active)
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


def uniform_from_list(histories: list[np.ndarray], lists: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Yue et al.'s choice: an item drawn uniformly from the returned list."""
    cols = rng.integers(0, lists.shape[1], size=len(lists))
    return lists[np.arange(len(lists)), cols].astype(np.int64)
