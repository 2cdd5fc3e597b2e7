"""On-disk embedding cache of the language-model layer: ``.npy`` + ``.json`` shards per model
(never pickled), each file written to a temp name and renamed.

A batch of texts goes to a shard of its own. Small writes (a listing attack embeds one edited text
at a time) go to the index's open shard instead, rewritten whole each time until it holds
``OPEN_SHARD_ROWS`` rows, so thousands of single texts make a handful of files, not thousands.
An open shard only grows, and its ``.npy`` is replaced before its ``.json``: a reader that catches
a longer matrix than key list reads the rows its keys name.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from redteam.errors import DataError

__all__ = ["ShardIndex", "SMALL_WRITE", "OPEN_SHARD_ROWS"]

SMALL_WRITE = 64  # rows: a write smaller than this goes to the open shard
OPEN_SHARD_ROWS = 256  # rows: the open shard is closed, and a new one begun, past this


class ShardIndex:
    """Embedding shards of one model in one cache folder: ``<shard>.npy`` + ``<shard>.json``."""

    def __init__(self, root: Path, *, width: int) -> None:
        self.root = root
        self.width = width
        self.loaded: dict[str, tuple[int, int, int]] = {}  # shard name -> its .json's stamp when read
        self.rows: dict[str, tuple[np.ndarray, int]] = {}
        self._open: tuple[str, list[str], list[np.ndarray]] | None = None  # name, keys, row blocks

    def refresh(self) -> None:
        """Read shards not seen yet (this process's or another's), and again any whose key list
        changed since (another process's open shard grows)."""
        if not self.root.is_dir():
            return
        for keys_file in sorted(self.root.glob("*.json")):
            name = keys_file.stem
            npy = self.root / f"{name}.npy"
            if name.startswith(".") or not npy.is_file():
                continue
            try:
                stamp = _stamp(keys_file)
            except OSError:
                continue
            if self.loaded.get(name) == stamp:
                continue
            try:
                keys = json.loads(keys_file.read_text())
                matrix = np.load(npy, allow_pickle=False, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise DataError(f"corrupt embedding cache shard {npy}: {exc}; delete it") from None
            if not isinstance(keys, list) or matrix.ndim != 2 or matrix.shape[1] != self.width \
                    or matrix.shape[0] < len(keys):
                raise DataError(f"corrupt embedding cache shard {npy}: shape {matrix.shape} vs {len(keys)} keys; delete it")
            for row, key in enumerate(keys):
                self.rows[str(key)] = (matrix, row)
            self.loaded[name] = stamp

    def get(self, key: str) -> np.ndarray | None:
        hit = self.rows.get(key)
        return None if hit is None else np.asarray(hit[0][hit[1]], dtype=np.float32)

    def write(self, keys: list[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` (one row per key): a new shard, or the open one for a small write."""
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(keys) >= SMALL_WRITE:
            self._write_shard(uuid.uuid4().hex, list(keys), matrix)
            return
        if self._open is None or len(self._open[1]) + len(keys) > OPEN_SHARD_ROWS:
            self._open = (uuid.uuid4().hex, [], [])
        name, open_keys, blocks = self._open
        open_keys.extend(keys)
        blocks.append(matrix)
        self._write_shard(name, list(open_keys), np.concatenate(blocks))

    def _write_shard(self, name: str, keys: list[str], matrix: np.ndarray) -> None:
        """``<name>.npy`` then ``<name>.json``, each to a temp name and renamed."""
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.root / f"{name}.npy", lambda f: np.save(f, matrix, allow_pickle=False))
        _atomic_write(self.root / f"{name}.json", lambda f: f.write(json.dumps(keys).encode()))
        for row, key in enumerate(keys):
            self.rows[key] = (matrix, row)
        self.loaded[name] = _stamp(self.root / f"{name}.json")


def _stamp(path: Path) -> tuple[int, int, int]:
    """Inode, size and mtime: every rewrite renames a new file into place, so the inode changes
    even within the file system's timestamp granularity."""
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
