"""The attacker's side of a transcript: every answer an HTTP client bought, in the order it asked.

An attack is deterministic given its seed, so a run started again asks the same requests in the
same order. The journal keys each request by its position in that order (``seq``) and a hash of
its body; a rerun finds its earlier answers there and does not buy them again. A request whose
hash differs from the recorded one means the attack took another path (other code, other
settings): the journal forgets that entry and everything after it, and the client asks afresh.

One SQLite file (WAL, ``synchronous=FULL``): an answer is on disk before the attack sees it.
Answers are stored as JSON, never pickled. The journal's random ``journal_id`` prefixes the
``Idempotency-Key`` of each request, so a server that charged a request whose answer was lost
(the client or the connection died) answers the retry from its books instead of charging twice.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from redteam.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    seq INTEGER PRIMARY KEY, request_hash TEXT NOT NULL, items TEXT NOT NULL, scores TEXT);
"""

Answer = tuple[np.ndarray, np.ndarray | None]


class AnswerJournal:
    """Answers by request position; thread-safe (one connection behind a lock).

    ``fingerprint`` names what shapes the answers (the endpoint, the request template, the response
    paths): a journal written under another fingerprint is emptied, not replayed."""

    def __init__(self, path: Path, fingerprint: str = "") -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        with self._guard():
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('journal_id', ?)", (secrets.token_hex(8),))
            self.journal_id: str = self._meta("journal_id")
            if self._meta("fingerprint") != fingerprint:
                self._db.execute("DELETE FROM answers")
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint,))

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """The lock, and a one-line error naming the file for anything SQLite raises."""
        with self._lock:
            try:
                yield
            except (sqlite3.Error, OSError) as exc:
                if self._db is not None:
                    self._db.close()
                    self._db = None
                raise DataError(f"{self.path}: the answer journal cannot be used ({exc}); "
                                "delete it to run the attack afresh") from None

    def lookup(self, seq: int, request_hash: str) -> Answer | None:
        """The answer recorded for request ``seq`` if it was this same request, else None (and a
        different request recorded there drops it and every later answer)."""
        with self._guard():
            row = self._db.execute("SELECT request_hash, items, scores FROM answers WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return None
            if row[0] != request_hash:
                self._db.execute("DELETE FROM answers WHERE seq >= ?", (seq,))
                return None
        items = np.asarray(json.loads(row[1]), dtype=np.int64)
        scores = None if row[2] is None else np.asarray(json.loads(row[2]), dtype=np.float32)
        return items, scores

    def record(self, seq: int, request_hash: str, items: np.ndarray, scores: np.ndarray | None) -> None:
        payload = (seq, request_hash, json.dumps(np.asarray(items).tolist()),
                   None if scores is None else json.dumps(np.asarray(scores).tolist()))
        with self._guard():
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)", payload)

    def __len__(self) -> int:
        with self._guard():
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
