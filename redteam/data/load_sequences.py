"""Loader for one-line-per-user sequence files (``user item item ...``, e.g. Beauty.txt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from redteam.data.dataset import SequenceDataset
from redteam.data.load_common import int_array, lines
from redteam.errors import DataError

__all__ = ["load_sequence_file"]


def _reindex_sequences(raw: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Map raw integer item ids to 1..N by sorted raw id; returns sequences and the raw ids."""
    flat = np.concatenate(raw)
    unique = np.unique(flat)
    codes = np.searchsorted(unique, flat) + 1
    bounds = np.cumsum([len(s) for s in raw])[:-1]
    return np.split(codes.astype(np.int64), bounds), unique


def _parse_sequence_lines(path: Path) -> tuple[list[str], list[np.ndarray]]:
    users: list[str] = []
    seqs: list[np.ndarray] = []
    seen: set[str] = set()
    for lineno, line in lines(path):
        parts = line.split()
        if len(parts) < 2:
            raise DataError(f"{path} line {lineno}: expected 'user item [item ...]'")
        if parts[0] in seen:
            raise DataError(f"{path} line {lineno}: user {parts[0]!r} appears twice")
        seen.add(parts[0])
        users.append(parts[0])
        seqs.append(int_array(parts[1:], path=path, lineno=lineno, what="item ids"))
    if not seqs:
        raise DataError(f"{path}: no sequences")
    return users, seqs


def load_sequence_file(path: str | Path, *, name: str) -> SequenceDataset:
    """Whitespace-separated lines ``user item item ...`` in chronological order (``.gz`` ok).

    Item ids must be integers; they are re-indexed to 1..N by sorted raw id (a file whose ids are
    already 1..N keeps them). Users keep file order.
    """
    path = Path(path)
    users, raw = _parse_sequence_lines(path)
    seqs, unique = _reindex_sequences(raw)
    return SequenceDataset(
        name=name,
        sequences=seqs,
        n_items=len(unique),
        item_ids=[""] + [str(int(v)) for v in unique],
        user_ids=users,
        meta={"source": str(path)},
    )
