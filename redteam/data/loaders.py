"""File loaders: each returns a :class:`SequenceDataset` with items re-indexed to 1..N.

This module gathers the loaders; each source has its own module:
:mod:`~redteam.data.load_sequences` (one line per user), :mod:`~redteam.data.load_amazon`
(Beauty, Sports, Scientific), :mod:`~redteam.data.load_movielens` (100K, 1M),
:mod:`~redteam.data.load_recbole` (atomic files) and :mod:`~redteam.data.load_csv`, on the shared
helpers of :mod:`~redteam.data.load_common`.

Item ids are assigned by sorted raw id (numerically when every raw id is an integer, else as
strings), so the integer ids of already-compact files (Beauty.txt, u.data) are kept as they are.
Users are kept in file order for one-line-per-user files and sorted by raw id (same rule) for
interaction tables. Raw ids are kept in ``item_ids`` / ``user_ids``; ``item_text`` is aligned by
item id, with ``""`` at index 0 and for items without text.

Every missing or malformed file raises :class:`DataError` with a one-line message naming it.
pandas is imported inside the functions that need it.
"""

from __future__ import annotations

from redteam.data.load_amazon import load_amazon_beauty, load_amazon_scientific, load_amazon_sports
from redteam.data.load_csv import load_csv
from redteam.data.load_movielens import ML100K_GENRES, load_movielens
from redteam.data.load_recbole import load_recbole
from redteam.data.load_sequences import load_sequence_file

__all__ = [
    "ML100K_GENRES",
    "load_amazon_beauty",
    "load_amazon_scientific",
    "load_amazon_sports",
    "load_csv",
    "load_movielens",
    "load_recbole",
    "load_sequence_file",
]
