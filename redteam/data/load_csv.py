"""Loader for a CSV interaction table with a header row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from redteam.data.dataset import SequenceDataset
from redteam.data.load_common import from_interactions, one_line, parse_times, require
from redteam.errors import DataError

__all__ = ["load_csv"]


def load_csv(
    path: str | Path,
    *,
    name: str | None = None,
    user_col: str = "user",
    item_col: str = "item",
    time_col: str | None = "timestamp",
    text_col: str | None = "text",
) -> SequenceDataset:
    """A CSV interaction table with a header row: ``user, item[, timestamp][, text]``.

    Sequences are sorted per user by ``time_col`` (numbers or dates), ties by row order. With
    ``time_col=None``, or when the default ``"timestamp"`` column is absent, row order is used.

    ``text_col`` gives item text; with ``text_col=None``, or when the default ``"text"`` column is
    absent, the dataset has no texts (``item_text`` None). An item's text is its first non-empty
    value in file order (whitespace stripped), so rows of one item that disagree resolve to the
    earliest row with text; items with no non-empty value get ``""``, as in the other loaders.
    A text column with no non-empty value at all is a :class:`DataError`.
    """
    import pandas as pd

    path = require(Path(path))
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot parse: {one_line(exc)}") from None
    if time_col == "timestamp" and time_col not in frame.columns:
        time_col = None
    if text_col == "text" and text_col not in frame.columns:
        text_col = None
    for column in (user_col, item_col, time_col, text_col):
        if column is not None and column not in frame.columns:
            raise DataError(f"{path}: no column {column!r} (columns: {', '.join(map(str, frame.columns))})")
    for column in (user_col, item_col):
        empty = (frame[column].str.strip() == "").to_numpy()
        if empty.any():
            raise DataError(f"{path} row {int(np.flatnonzero(empty)[0]) + 1}: empty {column!r}")
    times = parse_times(frame[time_col], path=path, column=time_col) if time_col else None
    text = None
    if text_col is not None:
        nonempty = frame[frame[text_col].str.strip() != ""]
        if nonempty.empty:
            raise DataError(f"{path}: column {text_col!r} has no non-empty value (drop it for a dataset without texts)")
        first = nonempty.drop_duplicates(subset=item_col, keep="first")
        text = dict(zip(first[item_col].astype(str), first[text_col].str.strip()))
    return from_interactions(
        name or path.stem,
        frame[user_col].to_numpy(dtype=object),
        frame[item_col].to_numpy(dtype=object),
        times,
        ties="order",
        item_text=text,
        meta={"source": str(path)},
    )
