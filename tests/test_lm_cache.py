"""The embedding cache's shards (redteam.lm_cache): no language model needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from redteam.errors import DataError
from redteam.lm_cache import OPEN_SHARD_ROWS, SMALL_WRITE, ShardIndex

WIDTH = 4


def _vectors(start: int, n: int) -> np.ndarray:
    return np.arange(start * WIDTH, (start + n) * WIDTH, dtype=np.float32).reshape(n, WIDTH)


def _shards(root: Path) -> list[Path]:
    return sorted(root.glob("*.npy"))


def test_single_texts_share_an_open_shard_and_a_fresh_index_reads_them(tmp_path: Path) -> None:
    index = ShardIndex(tmp_path, width=WIDTH)
    n = OPEN_SHARD_ROWS + 10
    for i in range(n):  # one text at a time, as a listing attack embeds its edits
        index.write([f"k{i}"], _vectors(i, 1))
    assert len(_shards(tmp_path)) == 2  # OPEN_SHARD_ROWS rows, then a new open shard
    assert sorted(len(json.loads(p.with_suffix(".json").read_text())) for p in _shards(tmp_path)) == [10, OPEN_SHARD_ROWS]

    fresh = ShardIndex(tmp_path, width=WIDTH)  # another process
    fresh.refresh()
    for i in (0, OPEN_SHARD_ROWS - 1, OPEN_SHARD_ROWS, n - 1):
        np.testing.assert_array_equal(fresh.get(f"k{i}"), _vectors(i, 1)[0])
        np.testing.assert_array_equal(index.get(f"k{i}"), _vectors(i, 1)[0])
    assert fresh.get("missing") is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_a_batch_gets_a_shard_of_its_own_and_leaves_the_open_one_alone(tmp_path: Path) -> None:
    index = ShardIndex(tmp_path, width=WIDTH)
    index.write(["a"], _vectors(0, 1))
    index.write([f"b{i}" for i in range(SMALL_WRITE)], _vectors(1, SMALL_WRITE))
    index.write(["c"], _vectors(SMALL_WRITE + 1, 1))
    sizes = sorted(len(json.loads(p.with_suffix(".json").read_text())) for p in _shards(tmp_path))
    assert sizes == [2, SMALL_WRITE]  # "a" and "c" in the open shard, the batch alone
    fresh = ShardIndex(tmp_path, width=WIDTH)
    fresh.refresh()
    np.testing.assert_array_equal(fresh.get("c"), _vectors(SMALL_WRITE + 1, 1)[0])
    np.testing.assert_array_equal(fresh.get(f"b{SMALL_WRITE - 1}"), _vectors(SMALL_WRITE, 1)[0])


def test_a_reader_between_the_two_renames_reads_the_rows_its_keys_name(tmp_path: Path) -> None:
    # The open shard's .npy is replaced before its .json: a reader may see one more row than keys.
    np.save(tmp_path / "s.npy", _vectors(0, 3), allow_pickle=False)
    (tmp_path / "s.json").write_text(json.dumps(["x", "y"]))
    index = ShardIndex(tmp_path, width=WIDTH)
    index.refresh()
    np.testing.assert_array_equal(index.get("y"), _vectors(1, 1)[0])
    assert index.get("z") is None


@pytest.mark.parametrize("rows, width", [(1, WIDTH), (3, WIDTH + 1)])
def test_a_shard_with_fewer_rows_than_keys_or_another_width_is_refused(tmp_path: Path, rows: int, width: int) -> None:
    np.save(tmp_path / "s.npy", np.zeros((rows, width), dtype=np.float32), allow_pickle=False)
    (tmp_path / "s.json").write_text(json.dumps(["x", "y"]))
    with pytest.raises(DataError, match=r"corrupt embedding cache shard .*s\.npy.*delete it"):
        ShardIndex(tmp_path, width=WIDTH).refresh()


def test_another_process_sees_the_rows_an_open_shard_gains_after_it_read_it(tmp_path: Path) -> None:
    writer, reader = ShardIndex(tmp_path, width=WIDTH), ShardIndex(tmp_path, width=WIDTH)
    writer.write(["a"], _vectors(0, 1))
    reader.refresh()
    assert reader.get("a") is not None and reader.get("b") is None
    writer.write(["b"], _vectors(1, 1))  # the same open shard, rewritten
    reader.refresh()
    np.testing.assert_array_equal(reader.get("b"), _vectors(1, 1)[0])
    np.testing.assert_array_equal(reader.get("a"), _vectors(0, 1)[0])
