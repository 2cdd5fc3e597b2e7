"""Loaders for the Amazon review datasets: Beauty and Sports (5-core sequence files with optional
item tables) and Industrial_and_Scientific (UniSRec index files with optional item text)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from redteam.data.dataset import SequenceDataset
from redteam.data.load_common import int_array, lines, parse_int
from redteam.data.load_sequences import load_sequence_file
from redteam.errors import DataError

__all__ = ["load_amazon_beauty", "load_amazon_scientific", "load_amazon_sports"]


def _read_item_table(path: Path, *, fields: int) -> dict[int, list[str]]:
    """A tab-separated table with a header whose first column is an integer item id.

    Returns item id -> the remaining ``fields - 1`` columns (missing trailing columns are "").
    """
    table: dict[int, list[str]] = {}
    for lineno, line in lines(path, skip_header=True):
        parts = line.split("\t", fields - 1)
        if len(parts) < 2:
            raise DataError(f"{path} line {lineno}: expected {fields} tab-separated fields")
        key = parse_int(parts[0], path=path, lineno=lineno, what="item id")
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
    for lineno, line in lines(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 2:
            raise DataError(f"{path} line {lineno}: expected 'asin <TAB> index'")
        index = parse_int(parts[1], path=path, lineno=lineno, what="item index")
        if index < 0:
            raise DataError(f"{path} line {lineno}: negative item index {index}")
        asins[index] = parts[0].strip()
    if not asins:
        raise DataError(f"{path}: no items")
    return asins


def _read_index_sequences(path: Path, *, n_items: int, index_path: Path) -> tuple[list[str], list[np.ndarray]]:
    users: list[str] = []
    seqs: list[np.ndarray] = []
    for lineno, line in lines(path, skip_header=True):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].split():
            raise DataError(f"{path} line {lineno}: expected 'user_index <TAB> item indices'")
        seq = int_array(parts[1].split(), path=path, lineno=lineno, what="item indices")
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
    for lineno, line in lines(path, skip_header=True):
        parts = line.split("\t", 1)
        if len(parts) != 2:
            raise DataError(f"{path} line {lineno}: expected 'asin <TAB> text'")
        texts[parts[0].strip()] = parts[1].strip()
    return texts
