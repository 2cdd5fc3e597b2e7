"""The served victim's books: per-key usage, every answered query, and the answers of requests
that carried an ``Idempotency-Key``, in one SQLite file (WAL journal, ``synchronous=FULL``).

One request is one transaction: its queries, its usage and (when keyed) its answer are written
together and fsynced before the answer leaves the server. So a crash either loses the whole
request (nothing charged, nothing logged: the client's retry is answered afresh) or none of it
(the retry with the same key is answered from here, not charged again). A restarted server reads
the usage back and keeps charging where it stopped.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (key TEXT PRIMARY KEY, used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, idempotency_key TEXT,
    queries INTEGER NOT NULL, answer TEXT, request_hash TEXT, at REAL NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS requests_idempotent ON requests (key, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, request INTEGER NOT NULL REFERENCES requests (id),
    key TEXT NOT NULL, history TEXT NOT NULL, returned TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS queries_by_key ON queries (key);
"""


@dataclass(frozen=True)
class LoggedQuery:
    key: str
    history: tuple[int, ...]
    returned: tuple[int, ...]
    request: int


class Ledger:
    """Durable accounting for one served victim (``path=None``: in memory, for tests and demos)."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(":memory:" if path is None else str(path), check_same_thread=False,
                                   isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
            if "request_hash" not in columns:  # a ledger written before requests kept their hash
                self._db.execute("ALTER TABLE requests ADD COLUMN request_hash TEXT")

    def usage(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT key, used FROM usage").fetchall())

    def answer_of(self, key: str, idempotency_key: str) -> tuple[str, str | None] | None:
        """(answer JSON text, request hash) of a request already charged under this idempotency key."""
        with self._lock:
            row = self._db.execute("SELECT answer, request_hash FROM requests WHERE key = ? AND idempotency_key = ?",
                                   (key, idempotency_key)).fetchone()
        return None if row is None else (row[0], row[1])

    def record(self, key: str, idempotency_key: str | None, histories: list[list[int]],
               returned: list[list[int]], answer: str | None, request_hash: str | None = None) -> None:
        """Charge ``len(histories)`` queries to ``key`` and log them, in one durable transaction."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute("INSERT INTO requests (key, idempotency_key, queries, answer, request_hash, at) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", (key, idempotency_key, len(histories),
                                                              answer if idempotency_key else None,
                                                              request_hash if idempotency_key else None, time.time()))
                request = cur.lastrowid
                db.executemany("INSERT INTO queries (request, key, history, returned) VALUES (?, ?, ?, ?)",
                               [(request, key, json.dumps(h), json.dumps(r)) for h, r in zip(histories, returned)])
                db.execute("INSERT INTO usage (key, used) VALUES (?, ?) "
                           "ON CONFLICT (key) DO UPDATE SET used = used + excluded.used", (key, len(histories)))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def queries(self, key: str | None = None) -> list[LoggedQuery]:
        """Logged queries, oldest first (all keys, or one): the operator's view, never served."""
        sql = "SELECT key, history, returned, request FROM queries"
        args: tuple = ()
        if key is not None:
            sql, args = sql + " WHERE key = ?", (key,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [LoggedQuery(k, tuple(json.loads(h)), tuple(json.loads(r)), req) for k, h, r, req in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per key: queries charged (usage), queries logged, requests recorded."""
        with self._lock:
            used = dict(self._db.execute("SELECT key, used FROM usage").fetchall())
            logged = dict(self._db.execute("SELECT key, COUNT(*) FROM queries GROUP BY key").fetchall())
            reqs = dict(self._db.execute("SELECT key, COUNT(*) FROM requests GROUP BY key").fetchall())
        return {k: {"used": used.get(k, 0), "logged": logged.get(k, 0), "requests": reqs.get(k, 0)}
                for k in sorted({*used, *logged, *reqs})}

    def close(self) -> None:
        with self._lock:
            self._db.close()
