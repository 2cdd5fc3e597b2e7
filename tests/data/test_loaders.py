"""File loaders on tiny hand-written files, including malformed-file errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from redteam.data.loaders import (
    load_amazon_beauty,
    load_amazon_scientific,
    load_amazon_sports,
    load_csv,
    load_movielens,
    load_recbole,
    load_sequence_file,
)
from redteam.data.registry import DatasetConfig, find_data_dir, load_dataset
from redteam.errors import ConfigError, DataError


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def seqs(dataset) -> list[list[int]]:
    return [s.tolist() for s in dataset.sequences]


# --------------------------------------------------------------------------- sequence files


def test_sequence_file_reindexes_by_sorted_raw_id(tmp_path: Path) -> None:
    path = write(tmp_path / "s.txt", "u1 30 10 20\n\nu2 10 40\n")
    ds = load_sequence_file(path, name="toy")
    assert ds.name == "toy" and ds.n_items == 4
    assert seqs(ds) == [[3, 1, 2], [1, 4]]
    assert ds.item_ids == ["", "10", "20", "30", "40"]
    assert ds.user_ids == ["u1", "u2"]
    assert all(s.dtype == np.int64 for s in ds.sequences)


def test_sequence_file_keeps_compact_ids(tmp_path: Path) -> None:
    ds = load_sequence_file(write(tmp_path / "s.txt", "1 1 2 3\n2 3 2\n"), name="toy")
    assert seqs(ds) == [[1, 2, 3], [3, 2]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 1 2\n2 3 x\n", "line 2: expected integer item ids"),
        ("1 1 2\n2\n", "line 2: expected 'user item"),
        ("1 1 2\n1 3\n", "line 2: user '1' appears twice"),
        ("\n\n", "no sequences"),
    ],
)
def test_sequence_file_malformed(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "Beauty.txt", text)
    with pytest.raises(DataError, match=message) as info:
        load_sequence_file(path, name="toy")
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"missing data file: {tmp_path / 'Beauty.txt'}"):
        load_amazon_beauty(tmp_path)


# --------------------------------------------------------------------------- Amazon


def test_beauty_titles_and_asins(tmp_path: Path) -> None:
    write(tmp_path / "Beauty.txt", "1 1 2 3\n2 2 3\n")
    write(tmp_path / "item_titles.tsv", "item_id\tasin\ttitle\n1\tA1\tRed Lipstick\n2\tA2\t\n9\tA9\tUnused\n")
    ds = load_amazon_beauty(tmp_path)
    assert ds.name == "amazon-beauty"
    assert ds.item_ids == ["", "A1", "A2", "3"]
    assert ds.item_text == ["", "Red Lipstick", "", ""]


def test_beauty_without_titles(tmp_path: Path) -> None:
    write(tmp_path / "Beauty.txt", "1 1 2\n")
    ds = load_amazon_beauty(tmp_path)
    assert ds.item_text is None and ds.item_ids == ["", "1", "2"]


def test_beauty_bad_title_table(tmp_path: Path) -> None:
    write(tmp_path / "Beauty.txt", "1 1 2\n")
    titles = write(tmp_path / "item_titles.tsv", "item_id\tasin\ttitle\nx\tA1\tRed\n")
    with pytest.raises(DataError, match=f"{titles} line 2: expected integer item id"):
        load_amazon_beauty(tmp_path)


def test_sports_gzip_and_id_map(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "Sports_and_Outdoors.txt.gz", "wt") as fh:
        fh.write("1 2 1\n2 1 3 2\n")
    write(tmp_path / "item_id_map.tsv", "item_id\tasin\n1\tB1\n2\tB2\n3\tB3\n")
    ds = load_amazon_sports(tmp_path)
    assert seqs(ds) == [[2, 1], [1, 3, 2]]
    assert ds.item_ids == ["", "B1", "B2", "B3"] and ds.item_text is None


def test_sports_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "Sports_and_Outdoors.txt.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=f"cannot read {path}"):
        load_amazon_sports(tmp_path)


def test_scientific_indices_become_index_plus_one(tmp_path: Path) -> None:
    write(tmp_path / "sequences_full.tsv", "user_index\titem_index_seq\n0\t0 1 2\n1\t2 0\n")
    write(tmp_path / "Scientific.item2index", "AS0\t0\nAS1\t1\nAS2\t2\n")
    write(tmp_path / "Scientific.text", "item_id:token\ttext:token_seq\nAS0\tPipette. Lab. \nAS2\tBeaker.\n")
    ds = load_amazon_scientific(tmp_path)
    assert seqs(ds) == [[1, 2, 3], [3, 1]]
    assert ds.item_ids == ["", "AS0", "AS1", "AS2"]
    assert ds.item_text == ["", "Pipette. Lab.", "", "Beaker."]
    assert ds.user_ids == ["0", "1"]


def test_scientific_unknown_index(tmp_path: Path) -> None:
    path = write(tmp_path / "sequences_full.tsv", "user_index\titem_index_seq\n0\t0 7\n")
    write(tmp_path / "Scientific.item2index", "AS0\t0\n")
    with pytest.raises(DataError, match=f"{path} line 2: item index 7 is not in Scientific.item2index"):
        load_amazon_scientific(tmp_path)


# --------------------------------------------------------------------------- MovieLens

U_ITEM = (
    "1|Cit\xe9 (1995)|01-Jan-1995||http://x|" + "|".join("0001" + "0" * 15) + "\n"
    "2|B (1996)|01-Jan-1996||http://y|" + "|".join("1" + "0" * 18) + "\n"
    "3|C (1997)|01-Jan-1997||http://z|" + "|".join("0" * 19) + "\n"
)


def test_ml100k_sorted_by_time_ties_by_item(tmp_path: Path) -> None:
    # user 7: times 50, 10, 10 -> items 3 and 1 tie at t=10 -> 1 first, then 3, then 2.
    write(tmp_path / "u.data", "7\t2\t5\t50\n7\t3\t4\t10\n7\t1\t3\t10\n2\t3\t1\t5\n")
    write(tmp_path / "u.item", U_ITEM, encoding="latin-1")
    ds = load_movielens(tmp_path, name="ml-100k")
    assert ds.user_ids == ["2", "7"]  # sorted numerically
    assert seqs(ds) == [[3], [1, 3, 2]]
    assert [t.tolist() for t in ds.timestamps] == [[5], [10, 10, 50]]
    assert ds.item_text[1] == "Cit\xe9 (1995). Animation."  # latin-1 decoded, genre from flags
    assert ds.item_text[2] == "B (1996). unknown."
    assert ds.item_text[3] == "C (1997)."


def test_ml100k_genre_names_from_u_genre(tmp_path: Path) -> None:
    write(tmp_path / "u.data", "1\t1\t5\t1\n")
    write(tmp_path / "u.item", "1|T|d||u|1|0\n", encoding="latin-1")
    write(tmp_path / "u.genre", "Mystery|0\nDrama|1\n\n")
    assert load_movielens(tmp_path).item_text == ["", "T. Mystery."]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\t1\t5\t10\n1\t2\t5\n", "line 2: expected 4 fields separated by '\\\\t', got 3"),
        ("1\t1\t5\t10\n1\tx\t5\t11\n", "line 2: expected integer item, got 'x'"),
        ("1\t1\t5\t10\t9\n", "line 1: expected 4 fields"),
        ("", "no interactions"),
    ],
)
def test_ml100k_malformed(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "u.data", text)
    with pytest.raises(DataError, match=message) as info:
        load_movielens(tmp_path)
    assert str(path) in str(info.value)


def test_ml100k_bad_u_item(tmp_path: Path) -> None:
    write(tmp_path / "u.data", "1\t1\t5\t1\n")
    path = write(tmp_path / "u.item", "1|T|d\n", encoding="latin-1")
    with pytest.raises(DataError, match=f"{path} line 1: expected 24"):
        load_movielens(tmp_path)


def test_ml1m(tmp_path: Path) -> None:
    write(tmp_path / "ratings.dat", "1::20::5::300\n1::10::3::100\n2::10::4::7\n")
    write(tmp_path / "movies.dat", "10::Am\xe9lie (2001)::Comedy|Romance\n20::X (1999)::Drama\n", encoding="latin-1")
    ds = load_movielens(tmp_path)
    assert ds.name == "ml-1m"
    assert seqs(ds) == [[1, 2], [1]]
    assert ds.item_ids == ["", "10", "20"]
    assert ds.item_text == ["", "Am\xe9lie (2001). Comedy, Romance.", "X (1999). Drama."]


def test_ml1m_malformed_names_file(tmp_path: Path) -> None:
    path = write(tmp_path / "ratings.dat", "1::20::5::300\n1::10::3\n")
    with pytest.raises(DataError, match=f"{path} line 2: expected 4 fields separated by '::'"):
        load_movielens(tmp_path)


def test_movielens_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing data file: .*u.data"):
        load_movielens(tmp_path)


# --------------------------------------------------------------------------- RecBole and CSV


def test_recbole_any_column_order_and_item_text(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    write(folder / "toy.inter", "item_id:token\ttimestamp:float\tuser_id:token\n"
          "b\t3\tu1\na\t1\tu1\nc\t2\tu1\na\t5\tu0\n")  # fmt: skip
    write(folder / "toy.item", "item_id:token\tmovie_title:token_seq\tyear:token\tgenre:token_seq\n"
          "a\tAlpha\t1990\tDrama\nb\tBeta\t1991\t\n")  # fmt: skip
    ds = load_recbole(folder)
    assert ds.name == "toy"
    assert ds.user_ids == ["u0", "u1"] and ds.item_ids == ["", "a", "b", "c"]
    assert seqs(ds) == [[1], [1, 3, 2]]
    assert ds.item_text == ["", "Alpha. Drama", "Beta", ""]
    assert [t.tolist() for t in ds.timestamps] == [[5], [1, 2, 3]]


def test_recbole_prefix_without_timestamp_keeps_file_order(tmp_path: Path) -> None:
    write(tmp_path / "d.inter", "user_id:token\titem_id:token\trating:float\n1\t5\t1\n1\t3\t1\n")
    ds = load_recbole(tmp_path / "d", name="mine")
    assert ds.name == "mine" and seqs(ds) == [[2, 1]] and ds.timestamps is None


def test_recbole_missing_column_and_file(tmp_path: Path) -> None:
    path = write(tmp_path / "d.inter", "user:token\titem_id:token\n1\t2\n")
    with pytest.raises(DataError, match=f"{path}: header has no user_id column"):
        load_recbole(path)
    with pytest.raises(DataError, match=f"missing data file: {tmp_path / 'nope.inter'}"):
        load_recbole(tmp_path / "nope")


def test_recbole_bad_row(tmp_path: Path) -> None:
    path = write(tmp_path / "d.inter", "user_id:token\titem_id:token\n1\t2\n1\t2\t3\t4\n")
    with pytest.raises(DataError, match=f"{path}: cannot parse"):
        load_recbole(path)


def test_csv_sorted_by_time_then_row_order(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", "user,item,timestamp,title\n"
                 "bob,i2,5,Two\nann,i1,9,One\nbob,i3,5,Three\nbob,i1,1,\nann,i3,2,Three again\n")  # fmt: skip
    ds = load_csv(path, name="log", text_col="title")
    assert ds.user_ids == ["ann", "bob"] and ds.item_ids == ["", "i1", "i2", "i3"]
    assert seqs(ds) == [[3, 1], [1, 2, 3]]
    assert ds.item_text == ["", "One", "Two", "Three"]


def test_csv_dates_custom_columns_and_no_time(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", "u,i,when\n1,10,2024-01-02\n1,20,2024-01-01\n")
    ds = load_csv(path, name="x", user_col="u", item_col="i", time_col="when")
    assert seqs(ds) == [[2, 1]]
    assert ds.timestamps[0].tolist() == [1704067200, 1704153600]
    plain = write(tmp_path / "plain.csv", "user,item\na,2\na,1\n")
    assert seqs(load_csv(plain)) == [[2, 1]]


def test_csv_text_column_is_read_by_default(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", "user,item,timestamp,text\n"
                 'a,i1,1,"Red lipstick, matte"\na,i2,2,  Blue mascara \nb,i3,1,\nb,i1,2,\n')  # fmt: skip
    ds = load_csv(path)
    assert ds.item_ids == ["", "i1", "i2", "i3"] and seqs(ds) == [[1, 2], [3, 1]]
    assert ds.item_text == ["", "Red lipstick, matte", "Blue mascara", ""]  # i3: no text -> ""
    assert ds.summary()["has_text"]
    assert load_dataset(DatasetConfig(name="csv", path=path), seed=0).item_text == ds.item_text
    none = load_csv(path, text_col=None)
    assert none.item_text is None and seqs(none) == seqs(ds)
    assert none.checksum != ds.checksum  # texts join the checksum, as for the other loaders


def test_csv_without_text_column_has_no_texts(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", "user,item,timestamp,title\na,1,2,One\na,2,1,Two\n")
    ds = load_csv(path)
    assert ds.item_text is None and seqs(ds) == [[2, 1]] and not ds.summary()["has_text"]
    assert load_dataset(DatasetConfig(name="csv", path=path), seed=0).item_text is None


def test_csv_text_first_nonempty_row_wins(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", "user,item,text\n"
                 "b,x, \na,x,Later title\na,y,Why\nb,x,Even later\nc,y,Other\n")  # fmt: skip
    ds = load_csv(path)
    assert ds.item_ids == ["", "x", "y"]
    assert ds.item_text == ["", "Later title", "Why"]


def test_csv_empty_text_column_names_file_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", "user,item,text\na,1,\na,2, \n")
    with pytest.raises(DataError, match=f"{path}: column 'text' has no non-empty value"):
        load_csv(path)
    assert load_csv(path, text_col=None).item_text is None
    with pytest.raises(DataError, match=f"{path}: no column 'title'"):
        load_csv(path, text_col="title")


def test_csv_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", "user,product\na,1\n")
    with pytest.raises(DataError, match=f"{path}: no column 'item'"):
        load_csv(path)
    bad_time = write(tmp_path / "t.csv", "user,item,timestamp\na,1,soon\n")
    with pytest.raises(DataError, match=f"{bad_time}: column 'timestamp'"):
        load_csv(bad_time)
    with pytest.raises(DataError, match="missing data file"):
        load_csv(tmp_path / "absent.csv")


# --------------------------------------------------------------------------- registry


def test_registry_resolves_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "amazon-beauty" / "Beauty.txt", "1 1 2 3\n2 1 2\n3 1\n")
    monkeypatch.setenv("REDTEAM_DATA_DIR", str(tmp_path))
    assert find_data_dir("amazon-beauty") == tmp_path / "amazon-beauty"
    ds = load_dataset(DatasetConfig(name="amazon-beauty", kcore=2), seed=0)
    assert seqs(ds) == [[1, 2], [1, 2]]
    assert ds.meta == {"source": str(tmp_path / "amazon-beauty"), "kcore": 2}


def test_registry_missing_folder_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDTEAM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDTEAM_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"dataset 'amazon-beauty': no data folder; set dataset.path or REDTEAM_DATA_DIR \(looked in: "):
        load_dataset(DatasetConfig(name="amazon-beauty"), seed=0)
    assert find_data_dir("ml-100k") is None
    write(tmp_path / "cache" / "data" / "ml-100k" / "u.data", "1\t1\t5\t1\n1\t2\t5\t2\n")
    assert load_dataset(DatasetConfig(name="ml-100k"), seed=0).n_interactions == 2


def test_registry_synthetic_and_path_datasets(tmp_path: Path) -> None:
    ds = load_dataset(DatasetConfig(users=50, items=40, max_users=10), seed=3)
    assert ds.n_users == 10 and ds.meta["source"] == "embedded" and ds.item_text is not None
    path = write(tmp_path / "s.txt", "a 5 6\nb 6 7\n")
    ds = load_dataset(DatasetConfig(name="sequence-file", path=path), seed=0)
    assert seqs(ds) == [[1, 2], [2, 3]] and ds.meta["source"] == str(path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "amazon-beuty"}, "did you mean 'amazon-beauty'"),
        ({"name": "ml-100k", "items": 5}, "dataset.items: only for the synthetic dataset"),
        ({"name": "csv"}, "dataset.path: required"),
        ({"name": "synthetic", "path": "/x"}, "takes no path"),
    ],
)
def test_config_errors(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DatasetConfig(**fields)


def test_config_forbids_unknown_keys() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        DatasetConfig(name="synthetic", kcores=3)
