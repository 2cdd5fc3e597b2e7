"""Helpers shared by the file loaders (``redteam.data.load_*``): reading files with one-line
:class:`DataError` messages, re-indexing raw ids to 1..N, and building a dataset from an
interaction table.

Item ids are assigned by sorted raw id (numerically when every raw id is an integer, else as
strings). pandas is imported inside the functions that need it.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from redteam.data.dataset import SequenceDataset
from redteam.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "from_interactions", "index", "int_array", "lines", "one_line", "parse_int", "parse_times",
    "read_text", "require",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# file helpers


def require(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"missing data file: {path}")
    return path


def read_text(path: Path, *, encoding: str = "utf-8") -> str:
    """The whole file as text; ``.gz`` files are decompressed."""
    require(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding=encoding) as fh:
                return fh.read()
        return path.read_text(encoding=encoding)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {one_line(exc)}") from None


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def lines(path: Path, *, encoding: str = "utf-8", skip_header: bool = False) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for the non-blank lines of ``path``."""
    for lineno, line in enumerate(read_text(path, encoding=encoding).splitlines(), start=1):
        if skip_header and lineno == 1:
            continue
        if line.strip():
            yield lineno, line


def parse_int(value: str, *, path: Path, lineno: int, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{path} line {lineno}: expected integer {what}, got {value!r}") from None


def int_array(values: Sequence[str], *, path: Path, lineno: int, what: str) -> np.ndarray:
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except (ValueError, OverflowError):
        raise DataError(f"{path} line {lineno}: expected integer {what}") from None


# --------------------------------------------------------------------------------------------
# indexing and assembly


def _sorted_label_order(labels: np.ndarray) -> np.ndarray:
    """Order of unique raw ids: numeric when all are integers, else lexicographic."""
    if labels.dtype.kind in "iu":
        return np.argsort(labels, kind="stable")
    strings = [str(v) for v in labels]
    try:
        keys = [(int(s), s) for s in strings]
    except ValueError:
        return np.array(sorted(range(len(strings)), key=strings.__getitem__), dtype=np.int64)
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def index(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """0-based codes of ``values`` ranked by sorted raw id, and the raw ids as strings."""
    import pandas as pd

    codes, uniques = pd.factorize(values, sort=False)
    labels = np.asarray(uniques)
    order = _sorted_label_order(labels)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[codes], [str(labels[i]) for i in order]


def _split_by_user(user_codes: np.ndarray, n_users: int, *columns: np.ndarray) -> list[list[np.ndarray]]:
    """Split user-sorted columns into one array per user."""
    bounds = np.cumsum(np.bincount(user_codes, minlength=n_users))[:-1]
    return [np.split(col, bounds) for col in columns]


def from_interactions(
    name: str,
    users: np.ndarray,
    items: np.ndarray,
    times: np.ndarray | None,
    *,
    ties: str,
    item_text: dict[str, str] | None = None,
    meta: dict | None = None,
) -> SequenceDataset:
    """Build a dataset from an interaction table.

    Each user's rows are sorted by ``times`` (when given); ``ties="item"`` breaks equal times by
    item id, ``ties="order"`` by row order. ``item_text`` maps raw item id -> text.
    """
    if len(users) == 0:
        raise DataError(f"dataset {name!r}: no interactions")
    user_codes, user_labels = index(users)
    item_codes, item_labels = index(items)
    tiebreak = item_codes if ties == "item" else np.arange(len(item_codes))
    keys = (tiebreak, user_codes) if times is None else (tiebreak, times, user_codes)
    order = np.lexsort(keys)
    sorted_items = item_codes[order] + 1
    columns = [sorted_items] if times is None else [sorted_items, times[order]]
    split = _split_by_user(user_codes[order], len(user_labels), *columns)
    text = None
    if item_text is not None:
        text = [""] + [item_text.get(label, "") for label in item_labels]
    return SequenceDataset(
        name=name,
        sequences=split[0],
        n_items=len(item_labels),
        item_text=text,
        item_ids=[""] + item_labels,
        user_ids=user_labels,
        timestamps=split[1] if times is not None else None,
        meta=dict(meta or {}),
    )


def parse_times(series: "pd.Series", *, path: Path, column: str) -> np.ndarray:
    """Numbers (int64 when integral, else float64) or dates (-> int64 unix seconds)."""
    import pandas as pd

    try:
        numbers = pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        pass
    else:
        if np.isnan(numbers).any():
            bad = int(np.flatnonzero(np.isnan(numbers))[0])
            raise DataError(f"{path}: column {column!r} row {bad + 1}: missing time value")
        integral = np.all(numbers == np.round(numbers)) and np.all(np.abs(numbers) < 2**62)
        return numbers.astype(np.int64) if integral else numbers
    try:
        dates = pd.to_datetime(series, utc=True, errors="raise")
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"{path}: column {column!r}: cannot parse as numbers or dates: {one_line(exc)}") from None
    if dates.isna().any():
        bad = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataError(f"{path}: column {column!r} row {bad + 1}: missing time value")
    return ((dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
