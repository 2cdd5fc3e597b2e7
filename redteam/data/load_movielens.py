"""Loader for MovieLens 100K (``u.data``) and 1M (``ratings.dat``), with titles and genres as item text."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from redteam.data.dataset import SequenceDataset
from redteam.data.load_common import from_interactions, lines, one_line, parse_int, read_text
from redteam.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ML100K_GENRES", "load_movielens"]

#: The 19 MovieLens-100K genres, in flag order (used when ``u.genre`` is absent).
ML100K_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def load_movielens(folder: str | Path, *, name: str | None = None) -> SequenceDataset:
    """MovieLens 100K (``u.data``) or 1M (``ratings.dat``), whichever the folder holds.

    ML-100K: ``u.data`` = ``user <TAB> item <TAB> rating <TAB> unix_time``; ``u.item`` (latin-1,
    optional) = ``id|title|release|video release|url|19 genre flags``; genre names from
    ``u.genre`` (``name|index``). ML-1M: ``ratings.dat`` = ``user::item::rating::time`` and
    ``movies.dat`` (latin-1, optional) = ``id::title::Genre|Genre``. Each user's rows are sorted by
    time, ties by item id; item text is ``"Title. Genre, Genre."``; timestamps are kept.
    """
    folder = Path(folder)
    if (folder / "u.data").is_file():
        return _load_ml100k(folder, name=name or "ml-100k")
    if (folder / "ratings.dat").is_file():
        return _load_ml1m(folder, name=name or "ml-1m")
    raise DataError(f"missing data file: {folder / 'u.data'} (or ratings.dat for MovieLens 1M)")


def _load_ml100k(folder: Path, *, name: str) -> SequenceDataset:
    table = _read_int_table(folder / "u.data", sep="\t", columns=("user", "item", "rating", "timestamp"))
    item_path = folder / "u.item"
    text = _read_ml100k_items(item_path, _read_ml100k_genres(folder / "u.genre")) if item_path.exists() else None
    return _movielens_dataset(name, table, text, folder)


def _load_ml1m(folder: Path, *, name: str) -> SequenceDataset:
    table = _read_int_table(folder / "ratings.dat", sep="::", columns=("user", "item", "rating", "timestamp"))
    movies = folder / "movies.dat"
    text = _read_ml1m_movies(movies) if movies.exists() else None
    return _movielens_dataset(name, table, text, folder)


def _movielens_dataset(name: str, table: "pd.DataFrame", text: dict[str, str] | None, folder: Path) -> SequenceDataset:
    return from_interactions(
        name,
        table["user"].to_numpy(),
        table["item"].to_numpy(),
        table["timestamp"].to_numpy(),
        ties="item",
        item_text=text,
        meta={"source": str(folder)},
    )


def _read_int_table(path: Path, *, sep: str, columns: tuple[str, ...]) -> "pd.DataFrame":
    """A headerless integer table; on any parse problem, report the first bad line."""
    import pandas as pd

    text = read_text(path, encoding="latin-1")
    source = text.replace(sep, "\t") if sep != "\t" else text
    try:
        frame = pd.read_csv(io.StringIO(source), sep="\t", header=None, dtype=np.int64, engine="c")
        if frame.shape[1] != len(columns):
            raise ValueError(f"expected {len(columns)} columns, got {frame.shape[1]}")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no interactions") from None
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError) as exc:
        raise _locate_bad_line(path, text, sep=sep, columns=columns, exc=exc) from None
    frame.columns = list(columns)
    if frame.empty:
        raise DataError(f"{path}: no interactions")
    return frame


def _locate_bad_line(path: Path, text: str, *, sep: str, columns: tuple[str, ...], exc: BaseException) -> DataError:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) != len(columns):
            return DataError(f"{path} line {lineno}: expected {len(columns)} fields separated by {sep!r}, got {len(parts)}")
        for column, value in zip(columns, parts):
            try:
                int(value)
            except ValueError:
                return DataError(f"{path} line {lineno}: expected integer {column}, got {value!r}")
    return DataError(f"{path}: cannot parse: {one_line(exc)}")


def _read_ml100k_genres(path: Path) -> tuple[str, ...]:
    if not path.exists():
        return ML100K_GENRES
    genres: dict[int, str] = {}
    for lineno, line in lines(path, encoding="latin-1"):
        parts = line.split("|")
        if len(parts) != 2:
            raise DataError(f"{path} line {lineno}: expected 'genre|index'")
        genres[parse_int(parts[1], path=path, lineno=lineno, what="genre index")] = parts[0].strip()
    return tuple(genres[i] for i in sorted(genres))


def _read_ml100k_items(path: Path, genres: tuple[str, ...]) -> dict[str, str]:
    n_flags = len(genres)
    text: dict[str, str] = {}
    for lineno, line in lines(path, encoding="latin-1"):
        parts = line.split("|")
        if len(parts) < 5 + n_flags:
            raise DataError(f"{path} line {lineno}: expected {5 + n_flags} '|'-separated fields, got {len(parts)}")
        item = parse_int(parts[0], path=path, lineno=lineno, what="movie id")
        flags = parts[len(parts) - n_flags :]
        if any(f.strip() not in ("0", "1") for f in flags):
            raise DataError(f"{path} line {lineno}: expected {n_flags} genre flags (0/1)")
        names = [g for g, f in zip(genres, flags) if f.strip() == "1"]
        text[str(item)] = _movie_text(parts[1], names)
    return text


def _read_ml1m_movies(path: Path) -> dict[str, str]:
    text: dict[str, str] = {}
    for lineno, line in lines(path, encoding="latin-1"):
        parts = line.split("::")
        if len(parts) != 3:
            raise DataError(f"{path} line {lineno}: expected 'id::title::genres'")
        item = parse_int(parts[0], path=path, lineno=lineno, what="movie id")
        text[str(item)] = _movie_text(parts[1], [g for g in parts[2].strip().split("|") if g])
    return text


def _movie_text(title: str, genres: list[str]) -> str:
    title = title.strip()
    return f"{title}. {', '.join(genres)}." if genres else f"{title}."
