"""``redteam serve``'s HTTP application: a victim behind ``POST /v1/recommend`` (FastAPI).

Threat model: the caller holds an API key and nothing else. It gets ranked ids (scores only when
the operator exposes them) for histories it sends, and its own usage; it cannot reach the model,
the training data, the ledger or another key's usage. Every check runs before any work, in this
order: key (401), body size (413), JSON shape (422), batch and history size (413), item ids
(422), an idempotent replay (200, not charged), rate (429 + Retry-After), budget (402). An answer
is charged and logged in one durable transaction before it is sent (see :mod:`.ledger`).
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from redteam.errors import InvalidQuery
from redteam.serving.http_schema import Info, Limits, Problem, RecommendRequest, RecommendResponse, request_digest
from redteam.serving.keys import KeyRing
from redteam.serving.ledger import Ledger
from redteam.serving.port import Recommender, check_ids
from redteam.serving.rate_limit import RateLimiter
from redteam.serving.serve_settings import ServeSettings

ANONYMOUS = "anonymous"
MAX_IDEMPOTENCY_KEY = 200
REFUSALS = {code: {"model": Problem} for code in (401, 402, 409, 413, 422, 429, 503)}


class Refused(Exception):
    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}


class ServedVictim:
    """The server's state: one recommender, its settings, keys, ledger and per-key counters."""

    def __init__(self, recommender: Recommender, settings: ServeSettings, keys: KeyRing | None, ledger: Ledger) -> None:
        self.recommender, self.settings, self.keys, self.ledger = recommender, settings, keys, ledger
        self.limiter = RateLimiter(settings.rate, settings.burst_size)
        self.used: dict[str, int] = ledger.usage()
        self.pending: dict[str, int] = {}
        self.in_flight: set[tuple[str, str]] = set()
        self.compute_lock = threading.Lock()
        self.stopping = False

    def caller(self, request: Request) -> str:
        if self.keys is None:
            return ANONYMOUS
        header = request.headers.get("authorization", "")
        presented = header[7:].strip() if header[:7].lower() == "bearer " else request.headers.get("x-api-key")
        name = self.keys.identify(presented)
        if name is None:
            raise Refused(401, "unauthorized", "missing or unknown API key (send 'Authorization: Bearer <key>')",
                          {"WWW-Authenticate": "Bearer"})
        return name

    def remaining(self, key: str) -> int | None:
        budget = self.settings.budget
        return None if budget is None else max(0, budget - self.used.get(key, 0))

    def answer(self, histories: list, k: int) -> tuple[str, list[list[int]]]:
        """The JSON answer and the ids to log (first ``log_topk`` per history)."""
        with self.compute_lock:
            top = self.recommender.recommend(histories, k)
        items = top.items.tolist()
        body: dict[str, Any] = {"items": items}
        if self.settings.expose_scores and top.scores is not None:
            body["scores"] = [[round(float(s), 6) for s in row] for row in top.scores]
        cut = self.settings.log_topk
        return json.dumps(body, separators=(",", ":")), [row[:cut] for row in items]


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(413, "too_large", f"request body of {declared} bytes is over the limit of {limit}")
    size, parts = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, "too_large", f"request body is over the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def parse_request(body: bytes) -> RecommendRequest:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Refused(422, "invalid_json", f"the body is not JSON ({str(exc).splitlines()[0][:120]})") from None
    try:
        return RecommendRequest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise Refused(422, "invalid_request", f"{where}: {err['msg']}") from None


def check_sizes(req: RecommendRequest, s: ServeSettings, n_items: int) -> list:
    if len(req.histories) > s.max_batch:
        raise Refused(413, "too_large", f"histories: {len(req.histories)} in one request, the limit is {s.max_batch}")
    for i, h in enumerate(req.histories):
        if len(h) > s.max_history:
            raise Refused(413, "too_large", f"histories.{i}: {len(h)} items, the limit is {s.max_history}")
        if not h:
            raise Refused(422, "invalid_request", f"histories.{i}: a history needs at least one item")
    if req.k is not None and req.k > s.topk:
        raise Refused(422, "invalid_request", f"k: {req.k} is over the server's top-k {s.topk}")
    try:
        return check_ids(req.histories, n_items)
    except InvalidQuery as exc:
        raise Refused(422, "invalid_request", str(exc).replace("history ", "histories.", 1)) from None


def idempotency_key(request: Request) -> str | None:
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    if not value or len(value) > MAX_IDEMPOTENCY_KEY or not value.isprintable():
        raise Refused(422, "invalid_request", f"Idempotency-Key: 1 to {MAX_IDEMPOTENCY_KEY} printable characters")
    return value


def accounting_headers(state: ServedVictim, key: str) -> dict[str, str]:
    remaining = state.remaining(key)
    return {"X-Queries-Used": str(state.used.get(key, 0)),
            **({} if remaining is None else {"X-Queries-Remaining": str(remaining)})}


def create_app(recommender: Recommender, settings: ServeSettings, *, keys: KeyRing | None, ledger: Ledger) -> FastAPI:
    """The application; ``keys=None`` serves without authentication (every caller is 'anonymous')."""
    state = ServedVictim(recommender, settings, keys, ledger)
    app = FastAPI(title="redteam served victim", version="1", docs_url=None, redoc_url=None,
                  description="A sequential recommender behind a metered top-k API (see the redteam README).")
    app.state.victim = state

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        return JSONResponse({"error": "internal", "detail": "internal server error"}, status_code=500)

    @app.middleware("http")
    async def refuse_while_stopping(request: Request, call_next):
        if state.stopping:
            return JSONResponse({"error": "stopping", "detail": "the server is shutting down"}, status_code=503,
                                headers={"Retry-After": "1"})
        return await call_next(request)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/info", response_model=Info, responses=REFUSALS)
    async def info(request: Request) -> Info:
        key = state.caller(request)
        return Info(n_items=recommender.n_items, topk=min(settings.topk, recommender.max_k),
                    expose_scores=settings.expose_scores,
                    budget=settings.budget, used=state.used.get(key, 0), remaining=state.remaining(key),
                    limits=Limits(max_batch=settings.max_batch, max_history=settings.max_history,
                                  max_body_bytes=settings.max_body_bytes, rate=settings.rate, burst=settings.burst_size))

    @app.post("/v1/recommend", responses={200: {"model": RecommendResponse}, **REFUSALS},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": RecommendRequest.model_json_schema()}}}})
    async def recommend(request: Request) -> Response:
        key = state.caller(request)
        req = parse_request(await read_body(request, settings.max_body_bytes))
        histories = check_sizes(req, settings, recommender.n_items)
        k = req.k or settings.topk
        idem = idempotency_key(request)
        digest = request_digest(req.histories, k) if idem is not None else None
        if idem is not None:
            stored = await run_in_threadpool(ledger.answer_of, key, idem)
            if stored is not None:
                if stored[1] != digest:
                    raise Refused(422, "idempotency_mismatch",
                                  "Idempotency-Key: already used for a different request (histories or k)")
                return Response(stored[0], media_type="application/json",
                                headers={"Idempotent-Replayed": "true", **accounting_headers(state, key)})
            if (key, idem) in state.in_flight:
                raise Refused(409, "in_progress", "a request with this Idempotency-Key is being answered",
                              {"Retry-After": "1"})
        wait = state.limiter.take(key)
        if wait > 0:
            raise Refused(429, "rate_limited", f"over {settings.rate:g} requests per second for this key",
                          {"Retry-After": RateLimiter.retry_after(wait)})
        n = len(histories)
        charged = state.used.get(key, 0) + state.pending.get(key, 0)
        if settings.budget is not None and charged + n > settings.budget:
            raise Refused(402, "budget_exhausted", f"{n} queries asked, {max(0, settings.budget - charged)} left "
                          f"of this key's budget of {settings.budget}")
        state.pending[key] = state.pending.get(key, 0) + n
        if idem is not None:
            state.in_flight.add((key, idem))
        try:
            text, logged = await run_in_threadpool(state.answer, histories, k)
            await run_in_threadpool(ledger.record, key, idem, req.histories, logged, text, digest)
            state.used[key] = state.used.get(key, 0) + n
        finally:
            state.pending[key] -= n
            state.in_flight.discard((key, idem))
        return Response(text, media_type="application/json", headers=accounting_headers(state, key))

    return app
