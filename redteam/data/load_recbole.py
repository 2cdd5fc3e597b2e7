"""Loader for RecBole atomic files (``NAME.inter`` + optional ``NAME.item``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from redteam.data.dataset import SequenceDataset
from redteam.data.load_common import from_interactions, one_line, parse_times, read_text
from redteam.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_recbole"]


def _recbole_paths(location: Path) -> tuple[Path, Path]:
    """``(NAME.inter, NAME.item)`` for a folder, a ``.inter`` file or a path prefix."""
    if location.is_dir():
        inter = location / f"{location.name}.inter"
        if not inter.exists():
            candidates = [p for p in sorted(location.glob("*.inter")) if p.stem.count(".") == 0]
            if len(candidates) != 1:
                raise DataError(f"missing data file: {inter} (found {len(candidates)} other .inter files)")
            inter = candidates[0]
    elif location.suffix == ".inter":
        inter = location
    else:
        inter = location.with_name(location.name + ".inter")
    return inter, inter.with_suffix(".item")


def _read_atomic(path: Path) -> "pd.DataFrame":
    """A RecBole atomic file: tab-separated, header ``field:type ...``; all values as strings."""
    import pandas as pd

    text = read_text(path)
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE,
            index_col=False, engine="c",
        )  # fmt: skip
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file") from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot parse: {one_line(exc)}") from None
    return frame


def _field(frame: "pd.DataFrame", field: str) -> str | None:
    """The column whose name is ``field`` or ``field:<type>``."""
    for column in frame.columns:
        if str(column).split(":", 1)[0] == field:
            return str(column)
    return None


def load_recbole(folder_or_prefix: str | Path, *, name: str | None = None) -> SequenceDataset:
    """RecBole atomic files ``NAME.inter`` and optional ``NAME.item``.

    ``NAME.inter``: tab-separated with header ``user_id:token item_id:token [rating:float]
    [timestamp:float]`` (any column order; timestamp optional). Rows are sorted per user by
    timestamp, ties (or no timestamp) by file order. ``NAME.item``: header with ``item_id:token``;
    every ``*:token_seq`` column and every column named like ``title`` become the item text,
    joined with ``". "``.
    """
    inter_path, item_path = _recbole_paths(Path(folder_or_prefix))
    frame = _read_atomic(inter_path)
    user_col, item_col = _field(frame, "user_id"), _field(frame, "item_id")
    for field, column in (("user_id", user_col), ("item_id", item_col)):
        if column is None:
            raise DataError(f"{inter_path}: header has no {field} column (got {', '.join(map(str, frame.columns))})")
    time_col = _field(frame, "timestamp")
    times = parse_times(frame[time_col], path=inter_path, column=time_col) if time_col else None
    text = _read_recbole_items(item_path) if item_path.exists() else None
    return from_interactions(
        name or inter_path.stem,
        frame[user_col].to_numpy(dtype=object),
        frame[item_col].to_numpy(dtype=object),
        times,
        ties="order",
        item_text=text,
        meta={"source": str(inter_path)},
    )


def _read_recbole_items(path: Path) -> dict[str, str] | None:
    frame = _read_atomic(path)
    item_col = _field(frame, "item_id")
    if item_col is None:
        raise DataError(f"{path}: header has no item_id column (got {', '.join(map(str, frame.columns))})")
    text_cols = [c for c in frame.columns if str(c).endswith(":token_seq") or "title" in str(c).split(":")[0]]
    if not text_cols:
        return None
    parts = frame[text_cols].to_numpy(dtype=object)
    items = frame[item_col].to_numpy(dtype=object)
    return {str(item): ". ".join(str(v).strip() for v in row if str(v).strip()) for item, row in zip(items, parts)}
