"""A recommender reached over HTTP, behind the serving port (httpx as the client).

Threat model: the attacker sees only what the endpoint returns (ranked ids, scores where the
operator exposes them) and pays for every history it asks. The client splits a batch into
requests of ``batch_size`` histories, keeps up to ``concurrency`` in flight, retries transport
errors and the ``retry_status`` codes with exponential backoff (seeded jitter, ``Retry-After``
honoured up to ``max_backoff_s``), and stops with one line naming the method, URL and status
when the endpoint keeps failing or answers something unusable (:class:`RemoteError`, exit 2),
or refuses for budget (402: :class:`BudgetExceeded`).

With a journal (:mod:`redteam.serving.journal`) every answer is on disk before the caller sees
it, and a rerun of the same attack replays what it already bought.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from redteam.errors import BudgetExceeded, ConfigError, RemoteError
from redteam.serving.http_schema import request_digest
from redteam.serving.http_settings import HttpSettings, fill_body
from redteam.serving.journal import AnswerJournal
from redteam.serving.port import Histories, TopK, check_ids
from redteam.serving.response_path import extract, parse_path

DETAIL_CHARS = 160


class HttpRecommender:
    """``recommend(histories, k)`` answered by a remote endpoint; a context manager (closes its
    connections and journal). Counters: ``queries_sent`` (answered and charged live),
    ``queries_from_journal`` (replayed from the journal, no request sent), ``queries_replayed_by_server``
    (answered from the server's books for a request it had already charged), ``requests_sent``
    (HTTP attempts) and ``retries``.

    ``journal_fingerprint``: what must match for the journal's answers to be replayed (default: the
    settings' endpoint, template and paths; a caller that restarts a server on another port passes
    one that leaves the URL out)."""

    def __init__(self, settings: HttpSettings, *, journal: Path | None = None, seed: int = 0,
                 journal_fingerprint: str | None = None) -> None:
        try:
            import httpx
        except ImportError:  # pragma: no cover - depends on the install
            raise ConfigError("victims.http: needs httpx; install the serve extra (pip install 'redteam[serve]')") from None
        self.settings = settings
        self._headers = {"Accept": "application/json", **settings.resolved_headers()}
        self._body = settings.resolved_body()
        self._items_path = parse_path(settings.items_path)
        self._scores_path = None if settings.scores_path is None else parse_path(settings.scores_path)
        self._where = f"{settings.method} {public_url(settings.url)}"
        fingerprint = settings.fingerprint() if journal_fingerprint is None else journal_fingerprint
        self._journal = AnswerJournal(journal, fingerprint) if journal is not None else None
        self._run_id = self._journal.journal_id if self._journal is not None else secrets.token_hex(8)
        self._http = httpx.Client(timeout=settings.timeout_s, follow_redirects=False,
                                  limits=httpx.Limits(max_connections=settings.concurrency,
                                                      max_keepalive_connections=settings.concurrency))
        self._jitter = random.Random(seed)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._seq = 0
        self.queries_sent = self.queries_from_journal = self.queries_replayed_by_server = 0
        self.requests_sent = self.retries = 0
        try:
            self.n_items, self.max_k = self._shape()
        except BaseException:
            self.close()
            raise

    @property
    def queries_replayed(self) -> int:
        """Answers this client did not pay for now: from its journal or from the server's books."""
        return self.queries_from_journal + self.queries_replayed_by_server

    # ------------------------------------------------------------------------------------ the port

    def recommend(self, histories: Histories, k: int) -> TopK:
        cleaned = [h.tolist() for h in check_ids(histories, self.n_items)]
        if not 1 <= k <= self.max_k:
            raise ConfigError(f"victims.http: k={k} is outside 1..{self.max_k}, the endpoint's list length")
        self._charge(len(cleaned))
        size = self.settings.batch_size
        chunks = [cleaned[i:i + size] for i in range(0, len(cleaned), size)]
        with self._lock:
            first, self._seq = self._seq, self._seq + len(chunks)
        jobs = [(first + j, chunk, k) for j, chunk in enumerate(chunks)]
        if len(jobs) > 1 and self.settings.concurrency > 1:
            answers = list(self._executor().map(lambda job: self._answer(*job), jobs))
        else:
            answers = [self._answer(*job) for job in jobs]
        items = np.concatenate([a[0] for a in answers]) if answers else np.zeros((0, k), dtype=np.int64)
        scores = None
        if self._scores_path is not None and answers:
            scores = np.concatenate([a[1] for a in answers])
        return TopK(items, scores)

    # ------------------------------------------------------------------------------------ one request

    def _answer(self, seq: int, histories: list[list[int]], k: int) -> tuple[np.ndarray, np.ndarray | None]:
        digest = request_digest(histories, k)
        if self._journal is not None:
            stored = self._journal.lookup(seq, digest)
            if stored is not None:
                self._count(queries_from_journal=len(histories))
                return stored
        headers = dict(self._headers)
        if self.settings.idempotency_header:
            # the request's hash in its key: a rerun that asks something else at this position gets a new key
            headers[self.settings.idempotency_header] = f"{self._run_id}-{seq}-{digest[:16]}"
        response = self._send(self.settings.method, self.settings.url, headers,
                              json.dumps(fill_body(self._body, histories, k)).encode())
        items, scores = self._parse(response, len(histories), k)
        if self._journal is not None:
            self._journal.record(seq, digest, items, scores)
        replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
        self._count(**{"queries_replayed_by_server" if replayed else "queries_sent": len(histories)})
        return items, scores

    def _send(self, method: str, url: str, headers: dict[str, str], content: bytes | None = None) -> Any:
        """The response to a request, retried as configured; errors name the method, URL and status."""
        import httpx

        s = self.settings
        where = f"{method} {public_url(url)}"
        if content is not None:
            headers = {**headers, "Content-Type": "application/json"}
        for attempt in range(s.max_retries + 1):
            self._count(requests_sent=1, retries=int(attempt > 0))
            try:
                response = self._http.request(method, url, headers=headers, content=content)
            except httpx.TimeoutException:
                failure, wait = f"no answer within {s.timeout_s:g} s", None
            except httpx.NetworkError as exc:  # connect, read, write: the message names no header
                failure, wait = f"{type(exc).__name__}: {one_line(str(exc)) or 'connection failed'}", None
            except httpx.RequestError as exc:  # protocol errors may quote the request: name the kind only
                failure, wait = type(exc).__name__, None
            else:
                if response.status_code < 300:
                    return response
                failure = f"HTTP {response.status_code}: {problem(response)}"
                if response.status_code == 402:
                    raise BudgetExceeded(f"{where}: {failure}")
                if response.status_code not in s.retry_status:
                    raise RemoteError(f"{where}: {failure}")
                wait = retry_after(response)
            if attempt == s.max_retries:
                raise RemoteError(f"{where}: {failure} (after {attempt + 1} attempts)")
            time.sleep(self._backoff(attempt, wait))
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        s = self.settings
        if retry_after_s is not None:
            return min(retry_after_s, s.max_backoff_s)
        with self._lock:
            jitter = 0.5 + 0.5 * self._jitter.random()
        return min(s.max_backoff_s, s.backoff_s * 2 ** attempt) * jitter

    def _parse(self, response: Any, n: int, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        where = f"{self._where}: HTTP {response.status_code}"
        try:
            document = response.json()
        except (ValueError, RecursionError):
            raise RemoteError(f"{where}: the answer is not JSON ({one_line(response.text)[:DETAIL_CHARS]!r})") from None
        items = self._matrix(document, self._items_path, self.settings.items_path, where, n, k, ids=True)
        scores = None
        if self._scores_path is not None:
            scores = self._matrix(document, self._scores_path, self.settings.scores_path, where, n, k, ids=False)
        return items, scores

    def _matrix(self, document: Any, steps: tuple, path: str, where: str, n: int, k: int, *, ids: bool) -> np.ndarray:
        try:
            rows = extract(document, steps)
        except LookupError as exc:
            raise RemoteError(f"{where}: {path}: {exc}") from None
        if not isinstance(rows, list) or len(rows) != n or not all(isinstance(r, list) and r for r in rows):
            raise RemoteError(f"{where}: {path} must hold {n} non-empty lists, one per history")
        k = min(k, min(len(r) for r in rows))  # an endpoint may answer shorter lists than asked (truncation)
        kinds = (int,) if ids else (int, float)
        if any(isinstance(v, bool) or not isinstance(v, kinds) for r in rows for v in r[:k]):
            raise RemoteError(f"{where}: {path} holds values that are not {'integer item ids' if ids else 'numbers'}")
        try:
            matrix = np.asarray([r[:k] for r in rows], dtype=np.int64 if ids else np.float32)
        except OverflowError:
            raise RemoteError(f"{where}: {path} holds numbers out of range") from None
        if ids:
            if matrix.size and (matrix.min() < 1 or matrix.max() > self.n_items):
                raise RemoteError(f"{where}: {path} holds item ids outside 1..{self.n_items}")
        return matrix

    # ------------------------------------------------------------------------------------ set-up

    def _shape(self) -> tuple[int, int]:
        s = self.settings
        if s.n_items is not None and s.max_k is not None:
            return s.n_items, s.max_k
        url = s.info_endpoint()
        if url is None:
            raise ConfigError("victims.http: set n_items and max_k, or info_url (a GET answering "
                              '{"n_items": ..., "topk": ...})')
        response = self._send("GET", url, self._headers)
        try:
            info = response.json()
            n_items, topk = info["n_items"], info["topk"]
        except (ValueError, KeyError, TypeError, RecursionError):
            n_items = topk = None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (n_items, topk)):
            raise RemoteError(f"GET {public_url(url)}: HTTP {response.status_code}: expected JSON with positive "
                              "integers n_items and topk")
        return s.n_items or n_items, s.max_k or topk

    def _charge(self, n: int) -> None:
        budget = self.settings.budget
        with self._lock:
            asked = self.queries_sent + self.queries_replayed
            if budget is not None and asked + n > budget:
                raise BudgetExceeded(f"victims.http.budget: {asked} queries asked + {n} > budget {budget}")

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self, name, getattr(self, name) + value)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="redteam-http")
            return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._http.close()
        if self._journal is not None:
            self._journal.close()

    def __enter__(self) -> "HttpRecommender":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def public_url(url: str) -> str:
    """The URL as error messages show it: no user:password@, no query string (either may hold a secret)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def one_line(text: str) -> str:
    return " ".join(text.split())


def problem(response: Any) -> str:
    """The server's one-line reason: ``detail`` (or ``error``/``message``) of a JSON body, else its text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for name in ("detail", "error", "message"):
            if isinstance(body.get(name), str):
                return one_line(body[name])[:DETAIL_CHARS]
    return one_line(response.text)[:DETAIL_CHARS] or response.reason_phrase


def retry_after(response: Any) -> float | None:
    """``Retry-After`` in seconds (the delta form; an HTTP date is read as its distance from now)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
