"""Property-based fuzz of ``POST /v1/recommend`` on a real server: whatever the body, the answer is
a 200 or a refusal with a one-line reason, never a 500 and never a hang."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from served import auth, thread_server

ALLOWED = {200, 402, 413, 422}
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                    max_leaves=40)
ITEM = st.one_of(st.integers(min_value=-5, max_value=160), st.integers(), st.floats(), st.booleans(), st.text(max_size=3))
HISTORIES = st.lists(st.lists(ITEM, max_size=40), max_size=20)
REQUEST = st.fixed_dictionaries({"histories": HISTORIES}, optional={"k": st.one_of(st.integers(-3, 40), JSON)})
RAW = st.binary(max_size=300)


def check(answer: httpx.Response) -> None:
    assert answer.status_code in ALLOWED, (answer.status_code, answer.text)
    if answer.status_code != 200:
        detail = answer.json()["detail"]
        assert detail and "\n" not in detail


def test_fuzz_recommend(model_dir) -> None:
    with thread_server(model_dir, topk=20, max_batch=16, max_history=32, max_body_bytes=16384, budget=10_000) as (url, state):
        client = httpx.Client(base_url=url, headers=auth("alice"), timeout=10)

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(body=st.one_of(REQUEST, JSON, REQUEST.map(lambda r: {**r, "histories": r["histories"][:3]})))
        def structured(body) -> None:
            check(client.post("/v1/recommend", content=json.dumps(body, allow_nan=True).encode()))

        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(raw=RAW, content_type=st.sampled_from(["application/json", "text/plain", "", "multipart/form-data"]))
        def raw_bytes(raw, content_type) -> None:
            check(client.post("/v1/recommend", content=raw, headers={"Content-Type": content_type}))

        structured()
        raw_bytes()
        counts = state.ledger.counts().get("alice", {"used": 0, "logged": 0})
        assert counts["used"] == counts["logged"] == state.used.get("alice", 0)
        client.close()
