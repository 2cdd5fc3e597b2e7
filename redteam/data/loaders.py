"""File loaders: each returns a :class:`SequenceDataset` with items re-indexed to 1..N.

Item ids are assigned by sorted raw id (numerically when every raw id is an integer, else as
strings), so the integer ids of already-compact files (Beauty.txt, u.data) are kept as they are.
Users are kept in file order for one-line-per-user files and sorted by raw id (same rule) for
interaction tables. Raw ids are kept in ``item_ids`` / ``user_ids``; ``item_text`` is aligned by
item id, with ``""`` at index 0 and for items without text.

Every missing or malformed file raises :class:`DataError` with a one-line message naming it.
pandas is imported inside the functions that need it.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from redteam.data.dataset import SequenceDataset
from redteam.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "load_amazon_beauty",
    "load_amazon_scientific",
    "load_amazon_sports",
    "load_csv",
    "load_movielens",
    "load_recbole",
    "load_sequence_file",
]

#: The 19 MovieLens-100K genres, in flag order (used when ``u.genre`` is absent).
ML100K_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# file helpers


def _require(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"missing data file: {path}")
    return path


def _read_text(path: Path, *, encoding: str = "utf-8") -> str:
    """The whole file as text; ``.gz`` files are decompressed."""
    _require(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding=encoding) as fh:
                return fh.read()
        return path.read_text(encoding=encoding)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _lines(path: Path, *, encoding: str = "utf-8", skip_header: bool = False) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for the non-blank lines of ``path``."""
    for lineno, line in enumerate(_read_text(path, encoding=encoding).splitlines(), start=1):
        if skip_header and lineno == 1:
            continue
        if line.strip():
            yield lineno, line


def _int(value: str, *, path: Path, lineno: int, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{path} line {lineno}: expected integer {what}, got {value!r}") from None


def _int_array(values: Sequence[str], *, path: Path, lineno: int, what: str) -> np.ndarray:
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


def _index(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
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


def _from_interactions(
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
    user_codes, user_labels = _index(users)
    item_codes, item_labels = _index(items)
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


def _reindex_sequences(raw: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Map raw integer item ids to 1..N by sorted raw id; returns sequences and the raw ids."""
    flat = np.concatenate(raw)
    unique = np.unique(flat)
    codes = np.searchsorted(unique, flat) + 1
    bounds = np.cumsum([len(s) for s in raw])[:-1]
    return np.split(codes.astype(np.int64), bounds), unique


# --------------------------------------------------------------------------------------------
# one line per user


def _parse_sequence_lines(path: Path) -> tuple[list[str], list[np.ndarray]]:
    users: list[str] = []
    seqs: list[np.ndarray] = []
    seen: set[str] = set()
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) < 2:
            raise DataError(f"{path} line {lineno}: expected 'user item [item ...]'")
        if parts[0] in seen:
            raise DataError(f"{path} line {lineno}: user {parts[0]!r} appears twice")
        seen.add(parts[0])
        users.append(parts[0])
        seqs.append(_int_array(parts[1:], path=path, lineno=lineno, what="item ids"))
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


def _read_item_table(path: Path, *, fields: int) -> dict[int, list[str]]:
    """A tab-separated table with a header whose first column is an integer item id.

    Returns item id -> the remaining ``fields - 1`` columns (missing trailing columns are "").
    """
    table: dict[int, list[str]] = {}
    for lineno, line in _lines(path, skip_header=True):
        parts = line.split("\t", fields - 1)
        if len(parts) < 2:
            raise DataError(f"{path} line {lineno}: expected {fields} tab-separated fields")
        key = _int(parts[0], path=path, lineno=lineno, what="item id")
        rest = [p.strip() for p in parts[1:]]
        table[key] = rest + [""] * (fields - 1 - len(rest))
    return table


def _with_item_table(dataset: SequenceDataset, table: dict[int, list[str]], *, text: bool) -> SequenceDataset:
    """Replace ``item_ids`` by the table's first column (e.g. ASIN); titles from the second."""
    assert dataset.item_ids is not None
    raw = [int(v) for v in dataset.item_ids[1:]]
    ids = [""] + [table[r][0] if r in table and table[r][0] else str(r) for r in raw]
    item_text = [""] + [table[r][1] if r in table else "" for r in raw] if text else None
    return SequenceDataset(
        name=dataset.name,
        sequences=dataset.sequences,
        n_items=dataset.n_items,
        item_text=item_text,
        item_ids=ids,
        user_ids=dataset.user_ids,
        meta=dataset.meta,
    )


def load_amazon_beauty(folder: str | Path) -> SequenceDataset:
    """Amazon Beauty 5-core: ``Beauty.txt`` + optional ``item_titles.tsv``.

    ``item_titles.tsv`` has a header and rows ``item_id <TAB> asin <TAB> title`` keyed by the
    Beauty.txt item ids; when present, ``item_text`` = titles and ``item_ids`` = ASINs.
    """
    folder = Path(folder)
    dataset = load_sequence_file(folder / "Beauty.txt", name="amazon-beauty")
    titles = folder / "item_titles.tsv"
    if not titles.exists():
        return dataset
    return _with_item_table(dataset, _read_item_table(titles, fields=3), text=True)


def load_amazon_sports(folder: str | Path) -> SequenceDataset:
    """Amazon Sports_and_Outdoors 5-core: ``Sports_and_Outdoors.txt.gz`` (or ``.txt``), formatted
    like Beauty.txt, + optional ``item_id_map.tsv`` (header, ``item_id <TAB> asin``). No text."""
    folder = Path(folder)
    path = folder / "Sports_and_Outdoors.txt.gz"
    if not path.exists() and (folder / "Sports_and_Outdoors.txt").exists():
        path = folder / "Sports_and_Outdoors.txt"
    dataset = load_sequence_file(path, name="amazon-sports")
    id_map = folder / "item_id_map.tsv"
    if not id_map.exists():
        return dataset
    return _with_item_table(dataset, _read_item_table(id_map, fields=2), text=False)


def load_amazon_scientific(folder: str | Path) -> SequenceDataset:
    """Amazon 2018 Industrial_and_Scientific (UniSRec "Scientific").

    ``sequences_full.tsv``: header, then ``user_index <TAB> space-separated 0-based item indices``
    (chronological). ``Scientific.item2index``: ``asin <TAB> index`` (no header).
    ``Scientific.text`` (optional): header, then ``asin <TAB> text``. Item id = index + 1.
    """
    folder = Path(folder)
    index_path = folder / "Scientific.item2index"
    asins = _read_item2index(index_path)
    n_items = max(asins) + 1 if asins else 0
    seq_path = folder / "sequences_full.tsv"
    users, seqs = _read_index_sequences(seq_path, n_items=n_items, index_path=index_path)
    item_ids = [""] + [asins.get(i, str(i)) for i in range(n_items)]
    text_path = folder / "Scientific.text"
    item_text = None
    if text_path.exists():
        texts = _read_asin_text(text_path)
        item_text = [""] + [texts.get(asins[i], "") if i in asins else "" for i in range(n_items)]
    return SequenceDataset(
        name="amazon-scientific",
        sequences=seqs,
        n_items=n_items,
        item_text=item_text,
        item_ids=item_ids,
        user_ids=users,
        meta={"source": str(folder)},
    )


def _read_item2index(path: Path) -> dict[int, str]:
    asins: dict[int, str] = {}
    for lineno, line in _lines(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 2:
            raise DataError(f"{path} line {lineno}: expected 'asin <TAB> index'")
        index = _int(parts[1], path=path, lineno=lineno, what="item index")
        if index < 0:
            raise DataError(f"{path} line {lineno}: negative item index {index}")
        asins[index] = parts[0].strip()
    if not asins:
        raise DataError(f"{path}: no items")
    return asins


def _read_index_sequences(path: Path, *, n_items: int, index_path: Path) -> tuple[list[str], list[np.ndarray]]:
    users: list[str] = []
    seqs: list[np.ndarray] = []
    for lineno, line in _lines(path, skip_header=True):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].split():
            raise DataError(f"{path} line {lineno}: expected 'user_index <TAB> item indices'")
        seq = _int_array(parts[1].split(), path=path, lineno=lineno, what="item indices")
        if seq.min() < 0 or seq.max() >= n_items:
            bad = int(seq[(seq < 0) | (seq >= n_items)][0])
            raise DataError(f"{path} line {lineno}: item index {bad} is not in {index_path.name}")
        users.append(parts[0].strip())
        seqs.append(seq + 1)
    if not seqs:
        raise DataError(f"{path}: no sequences")
    return users, seqs


def _read_asin_text(path: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for lineno, line in _lines(path, skip_header=True):
        parts = line.split("\t", 1)
        if len(parts) != 2:
            raise DataError(f"{path} line {lineno}: expected 'asin <TAB> text'")
        texts[parts[0].strip()] = parts[1].strip()
    return texts


# --------------------------------------------------------------------------------------------
# MovieLens


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
    return _from_interactions(
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

    text = _read_text(path, encoding="latin-1")
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
    return DataError(f"{path}: cannot parse: {_one_line(exc)}")


def _read_ml100k_genres(path: Path) -> tuple[str, ...]:
    if not path.exists():
        return ML100K_GENRES
    genres: dict[int, str] = {}
    for lineno, line in _lines(path, encoding="latin-1"):
        parts = line.split("|")
        if len(parts) != 2:
            raise DataError(f"{path} line {lineno}: expected 'genre|index'")
        genres[_int(parts[1], path=path, lineno=lineno, what="genre index")] = parts[0].strip()
    return tuple(genres[i] for i in sorted(genres))


def _read_ml100k_items(path: Path, genres: tuple[str, ...]) -> dict[str, str]:
    n_flags = len(genres)
    text: dict[str, str] = {}
    for lineno, line in _lines(path, encoding="latin-1"):
        parts = line.split("|")
        if len(parts) < 5 + n_flags:
            raise DataError(f"{path} line {lineno}: expected {5 + n_flags} '|'-separated fields, got {len(parts)}")
        item = _int(parts[0], path=path, lineno=lineno, what="movie id")
        flags = parts[len(parts) - n_flags :]
        if any(f.strip() not in ("0", "1") for f in flags):
            raise DataError(f"{path} line {lineno}: expected {n_flags} genre flags (0/1)")
        names = [g for g, f in zip(genres, flags) if f.strip() == "1"]
        text[str(item)] = _movie_text(parts[1], names)
    return text


def _read_ml1m_movies(path: Path) -> dict[str, str]:
    text: dict[str, str] = {}
    for lineno, line in _lines(path, encoding="latin-1"):
        parts = line.split("::")
        if len(parts) != 3:
            raise DataError(f"{path} line {lineno}: expected 'id::title::genres'")
        item = _int(parts[0], path=path, lineno=lineno, what="movie id")
        text[str(item)] = _movie_text(parts[1], [g for g in parts[2].strip().split("|") if g])
    return text


def _movie_text(title: str, genres: list[str]) -> str:
    title = title.strip()
    return f"{title}. {', '.join(genres)}." if genres else f"{title}."


# --------------------------------------------------------------------------------------------
# RecBole atomic files and CSV


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

    text = _read_text(path)
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE,
            index_col=False, engine="c",
        )  # fmt: skip
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file") from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot parse: {_one_line(exc)}") from None
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
    times = _parse_times(frame[time_col], path=inter_path, column=time_col) if time_col else None
    text = _read_recbole_items(item_path) if item_path.exists() else None
    return _from_interactions(
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


def _parse_times(series: "pd.Series", *, path: Path, column: str) -> np.ndarray:
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
        raise DataError(f"{path}: column {column!r}: cannot parse as numbers or dates: {_one_line(exc)}") from None
    if dates.isna().any():
        bad = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataError(f"{path}: column {column!r} row {bad + 1}: missing time value")
    return ((dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)


def load_csv(
    path: str | Path,
    *,
    name: str | None = None,
    user_col: str = "user",
    item_col: str = "item",
    time_col: str | None = "timestamp",
    text_col: str | None = None,
) -> SequenceDataset:
    """A CSV interaction table with a header row.

    Sequences are sorted per user by ``time_col`` (numbers or dates), ties by row order. With
    ``time_col=None``, or when the default ``"timestamp"`` column is absent, row order is used.
    ``text_col`` (optional) gives item text: the first non-empty value per item.
    """
    import pandas as pd

    path = _require(Path(path))
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot parse: {_one_line(exc)}") from None
    if time_col == "timestamp" and time_col not in frame.columns:
        time_col = None
    for column in (user_col, item_col, time_col, text_col):
        if column is not None and column not in frame.columns:
            raise DataError(f"{path}: no column {column!r} (columns: {', '.join(map(str, frame.columns))})")
    for column in (user_col, item_col):
        empty = (frame[column].str.strip() == "").to_numpy()
        if empty.any():
            raise DataError(f"{path} row {int(np.flatnonzero(empty)[0]) + 1}: empty {column!r}")
    times = _parse_times(frame[time_col], path=path, column=time_col) if time_col else None
    text = None
    if text_col is not None:
        nonempty = frame[frame[text_col].str.strip() != ""]
        first = nonempty.drop_duplicates(subset=item_col, keep="first")
        text = dict(zip(first[item_col].astype(str), first[text_col].str.strip()))
    return _from_interactions(
        name or path.stem,
        frame[user_col].to_numpy(dtype=object),
        frame[item_col].to_numpy(dtype=object),
        times,
        ties="order",
        item_text=text,
        meta={"source": str(path)},
    )
