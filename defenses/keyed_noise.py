"""Randomness a serving defense draws per history, from a secret key: the same history always gets
the same perturbed answer.

A defense that re-drew its noise on every call could be averaged away by an attacker who asks the
same history several times (each repeat costs budget, but a few repeats undo rank noise). Keyed
noise also makes the answers independent of how queries are batched or ordered, so the same
defense gives the same answers in process and over HTTP.
"""

from __future__ import annotations

import hashlib

import numpy as np


def secret_key(rng: np.random.Generator) -> int:
    """The defense's key, drawn once when it is put in front of a victim."""
    return int(rng.integers(0, 2**63 - 1))


def history_rng(key: int, history: np.ndarray) -> np.random.Generator:
    """A generator seeded by the key and the history's ids."""
    digest = hashlib.blake2b(np.ascontiguousarray(history, dtype=np.int64).tobytes(), digest_size=16,
                             key=key.to_bytes(8, "little")).digest()
    return np.random.default_rng(np.frombuffer(digest, dtype=np.uint64))
