"""The wire format of ``redteam serve`` (also its OpenAPI schema)."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class RecommendRequest(BaseModel):
    """A batch of histories (item ids, oldest first); one query per history."""

    model_config = ConfigDict(extra="forbid")
    histories: list[list[StrictInt]] = Field(min_length=1, description="item ids 1..n_items, oldest first")
    k: StrictInt | None = Field(None, ge=1, description="ids per answer (default and maximum: the server's top-k)")


class RecommendResponse(BaseModel):
    items: list[list[int]] = Field(description="ranked item ids per history, best first")
    scores: list[list[float]] | None = Field(None, description="their scores, only when the server exposes them")


class Problem(BaseModel):
    """Every refusal: a machine-readable ``error`` and a one-line ``detail``."""

    error: str
    detail: str


class Limits(BaseModel):
    max_batch: int
    max_history: int
    max_body_bytes: int
    rate: float | None = Field(description="requests per second per key")
    burst: int


class Info(BaseModel):
    n_items: int
    topk: int
    expose_scores: bool
    budget: int | None
    used: int = Field(description="queries charged to the caller's key")
    remaining: int | None
    limits: Limits


def request_digest(histories: list[list[int]], k: int) -> str:
    """What a request asks, as a hash: the server keeps it with an ``Idempotency-Key`` (a reused key
    cannot fetch another request's answer) and the client's journal keys answers by it."""
    return hashlib.sha256(json.dumps([k, histories], separators=(",", ":")).encode()).hexdigest()
