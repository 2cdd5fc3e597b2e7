"""The record of an extraction attack's queries: histories and the victim's answers, in order.

Sequence ``s`` of length ``T`` stands for ``T`` queries: prefix ``s[:t + 1]`` was asked and
``lists[t]`` holds the ids the API returned, best first. ``next_real[t]`` is the real next item
for the attacker's few-shot sequences (0 where unknown, e.g. synthetic sequences).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Transcript:
    sequences: list[np.ndarray] = field(default_factory=list)
    lists: list[np.ndarray] = field(default_factory=list)  # [T, k] int32 per sequence
    next_real: list[np.ndarray] = field(default_factory=list)  # [T] int64 per sequence
    real: list[bool] = field(default_factory=list)  # a few-shot (real) sequence?

    def add(self, sequence: np.ndarray, lists: np.ndarray, *, next_real: np.ndarray | None = None, real: bool = False) -> None:
        sequence = np.asarray(sequence, dtype=np.int64)
        if len(sequence) != len(lists):
            raise ValueError(f"one answer per prefix: {len(sequence)} items, {len(lists)} answers")
        self.sequences.append(sequence)
        self.lists.append(np.asarray(lists, dtype=np.int32))
        self.next_real.append(np.zeros(len(sequence), dtype=np.int64) if next_real is None else np.asarray(next_real, dtype=np.int64))
        self.real.append(real)

    def extend(self, other: "Transcript") -> None:
        self.sequences += other.sequences
        self.lists += other.lists
        self.next_real += other.next_real
        self.real += other.real

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def queries(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def distinct_prefixes(self) -> int:
        """Different histories asked: the queries this stream cost when repeats were answered
        from memory (see ``generation.AnswerMemo``)."""
        return len({seq[: t + 1].tobytes() for seq in self.sequences for t in range(len(seq))})

    def prefix(self, queries: int) -> "Transcript":
        """The first ``queries`` queries of the stream (the last sequence cut short if needed)."""
        out, left = Transcript(), queries
        for seq, lst, nxt, real in zip(self.sequences, self.lists, self.next_real, self.real):
            if left <= 0:
                break
            n = min(len(seq), left)
            out.add(seq[:n], lst[:n], next_real=nxt[:n], real=real)
            left -= n
        return out

    def restricted(self, asked: set[bytes]) -> "Transcript":
        """Each sequence cut before its first prefix not in ``asked`` (histories as int64 bytes): what
        the attacker holds when the API stopped answering everything else (a blocked key)."""
        out = Transcript()
        for seq, lst, nxt, real in zip(self.sequences, self.lists, self.next_real, self.real):
            seq64 = np.asarray(seq, dtype=np.int64)
            n = 0
            while n < len(seq64) and seq64[: n + 1].tobytes() in asked:
                n += 1
            if n:
                out.add(seq[:n], lst[:n], next_real=nxt[:n], real=real)
        return out

    def split(self, holdout: float, rng: np.random.Generator) -> tuple["Transcript", "Transcript"]:
        """(train, held-out) by whole sequences; the held-out part is for model selection."""
        n_hold = int(round(holdout * len(self))) if len(self) > 1 else 0
        order = rng.permutation(len(self))
        held = set(order[:n_hold].tolist())
        train, valid = Transcript(), Transcript()
        for i in range(len(self)):
            (valid if i in held else train).add(self.sequences[i], self.lists[i], next_real=self.next_real[i], real=self.real[i])
        return train, valid

    def few_shot_count(self) -> int:
        return int(sum(self.real))
