"""`redteam serve`'s HTTP API on a real uvicorn server: answers, keys, limits, budget, rate,
idempotent replays and durable per-key accounting."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import httpx
import numpy as np
import pytest

from served import KEYS, auth, post, thread_server


def local_answers(model_dir, histories, k, **kw):
    from redteam.serving.local import LocalRecommender
    from redteam.serving.model_source import load_model

    model = load_model(model_dir)
    return LocalRecommender(model.score, n_items=model.n_items, **kw).recommend(histories, k)


def test_answers_are_the_in_process_answers_and_scores_only_when_exposed(model_dir) -> None:
    histories = [[1, 2, 3], [40, 41], [7]]
    expected = local_answers(model_dir, histories, 10)
    with thread_server(model_dir, topk=20) as (url, _):
        hidden = post(url, {"histories": histories, "k": 10})
        assert hidden.status_code == 200, hidden.text
        assert hidden.json() == {"items": expected.items.tolist()}
        assert hidden.headers["x-queries-used"] == "3" and "x-queries-remaining" not in hidden.headers
        assert len(post(url, {"histories": histories}).json()["items"][0]) == 20  # default k: the server's top-k
    with thread_server(model_dir, topk=20, expose_scores=True) as (url, _):
        body = post(url, {"histories": histories, "k": 10}).json()
        assert body["items"] == expected.items.tolist()
        assert np.allclose(body["scores"], expected.scores, atol=1e-5)


def test_health_openapi_and_nothing_but_answers_is_reachable(model_dir) -> None:
    with thread_server(model_dir) as (url, _):
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        schema = httpx.get(f"{url}/openapi.json").json()
        assert set(schema["paths"]) == {"/healthz", "/v1/info", "/v1/recommend"}
        body = schema["paths"]["/v1/recommend"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert set(body["properties"]) == {"histories", "k"}
        for path in ("/docs", "/v1/log", "/v1/usage", "/model.safetensors", "/config.json", "/../config.json"):
            assert httpx.get(f"{url}{path}", headers=auth("alice")).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key-0123456789abcdef"},
                                     {"Authorization": f"Basic {KEYS['alice']}"}, {"X-API-Key": ""}])
def test_unknown_or_missing_key_is_401_and_not_charged(model_dir, headers) -> None:
    with thread_server(model_dir) as (url, state):
        answer = post(url, {"histories": [[1]]}, key=None, headers=headers)
        assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
        assert answer.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{url}/v1/info", headers=headers).status_code == 401
        assert state.ledger.counts() == {}
        assert post(url, {"histories": [[1]]}, key=None, headers={"X-API-Key": KEYS["alice"]}).status_code == 200


@pytest.mark.parametrize(("body", "status", "reason"), [
    ({"histories": [[1]] * 9}, 413, "histories: 9 in one request, the limit is 8"),
    ({"histories": [list(range(1, 32))]}, 413, "histories.0: 31 items, the limit is 30"),
    ({"histories": [[1, 0]]}, 422, "histories.0: item id 0 is outside the catalog"),
    ({"histories": [[1, 151]]}, 422, "item id 151 is outside the catalog; item ids must be in 1..150"),
    ({"histories": [[1, 2.5]]}, 422, "histories.0.1: Input should be a valid integer"),
    ({"histories": [[1, True]]}, 422, "histories.0.1: Input should be a valid integer"),
    ({"histories": [[]]}, 422, "histories.0: a history needs at least one item"),
    ({"histories": []}, 422, "histories: List should have at least 1 item"),
    ({"histories": [[1]], "k": 11}, 422, "k: 11 is over the server's top-k 10"),
    ({"histories": [[1]], "k": 0}, 422, "k: Input should be greater than or equal to 1"),
    ({"histories": [[1]], "extra": 1}, 422, "extra: Extra inputs are not permitted"),
    ([1, 2], 422, "Input should be a valid dictionary"),
])
def test_bad_requests_get_a_one_line_reason_and_are_not_charged(model_dir, body, status, reason) -> None:
    with thread_server(model_dir, topk=10, max_batch=8, max_history=30) as (url, state):
        answer = post(url, body)
        assert answer.status_code == status, answer.text
        assert reason in answer.json()["detail"] and "\n" not in answer.json()["detail"]
        assert state.ledger.counts() == {}


def test_oversized_and_malformed_bodies(model_dir) -> None:
    with thread_server(model_dir, max_body_bytes=2048) as (url, state):
        big = httpx.post(f"{url}/v1/recommend", content=b'{"histories": [[' + b"1," * 3000 + b"1]]}",
                         headers={**auth("alice"), "Content-Type": "application/json"})
        assert big.status_code == 413 and "over the limit of 2048" in big.json()["detail"]

        def chunks():  # no Content-Length: the limit holds while streaming
            yield b'{"histories": [['
            for _ in range(200):
                yield b"1,1,1,1,1,1,1,1,1,1,"
            yield b"1]]}"
        streamed = httpx.post(f"{url}/v1/recommend", content=chunks(), headers=auth("alice"))
        assert streamed.status_code == 413
        garbage = httpx.post(f"{url}/v1/recommend", content=b"{not json", headers=auth("alice"))
        assert garbage.status_code == 422 and garbage.json()["error"] == "invalid_json"
        deep = httpx.post(f"{url}/v1/recommend", content=b"[" * 1000 + b"]" * 1000, headers=auth("alice"))
        assert deep.status_code == 422
        assert state.ledger.counts() == {}


def test_budget_is_per_key_refused_before_answering_and_survives_a_restart(model_dir, tmp_path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    with thread_server(model_dir, budget=5, ledger=ledger) as (url, state):
        assert post(url, {"histories": [[1], [2], [3]]}).headers["x-queries-remaining"] == "2"
        over = post(url, {"histories": [[1], [2], [3]]})
        assert over.status_code == 402 and over.json() == {
            "error": "budget_exhausted", "detail": "3 queries asked, 2 left of this key's budget of 5"}
        assert post(url, {"histories": [[1]] * 5}, key="bob").status_code == 200  # bob has his own budget
        info = httpx.get(f"{url}/v1/info", headers=auth("alice")).json()
        assert (info["used"], info["remaining"], info["budget"]) == (3, 2, 5)
        assert httpx.get(f"{url}/v1/info", headers=auth("eve")).json()["used"] == 0  # nothing of the others
    with thread_server(model_dir, budget=5, ledger=ledger) as (url, state):
        assert post(url, {"histories": [[1], [2], [3]]}).status_code == 402  # usage read back from the ledger
        assert post(url, {"histories": [[1], [2]]}).status_code == 200
        assert state.ledger.counts() == {"alice": {"used": 5, "logged": 5, "requests": 2},
                                         "bob": {"used": 5, "logged": 5, "requests": 1}}
    raw = b"".join(f.read_bytes() for f in tmp_path.glob("ledger.sqlite*"))
    assert b"alice" in raw and not any(key.encode() in raw for key in KEYS.values())  # names, never keys


def test_rate_limit_answers_429_with_retry_after(model_dir) -> None:
    with thread_server(model_dir, rate=1.0, burst=2) as (url, state):
        codes = [post(url, {"histories": [[1]]}) for _ in range(3)]
        assert [c.status_code for c in codes] == [200, 200, 429]
        assert codes[2].headers["retry-after"] == "1" and codes[2].json()["error"] == "rate_limited"
        assert post(url, {"histories": [[1]]}, key="bob").status_code == 200  # per key
        time.sleep(1.05)
        assert post(url, {"histories": [[1]]}).status_code == 200
        assert state.ledger.counts()["alice"] == {"used": 3, "logged": 3, "requests": 3}


def test_a_replayed_idempotency_key_is_answered_from_the_ledger_and_not_charged(model_dir, tmp_path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    body = {"histories": [[3, 4], [5]], "k": 5}
    with thread_server(model_dir, ledger=ledger) as (url, _):
        first = post(url, body, headers={"Idempotency-Key": "run-1-0"})
    with thread_server(model_dir, ledger=ledger) as (url, state):  # e.g. the answer was lost in a crash
        again = post(url, body, headers={"Idempotency-Key": "run-1-0"})
        assert again.status_code == 200 and again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        other_key = post(url, body, key="bob", headers={"Idempotency-Key": "run-1-0"})  # keys are per caller
        assert "idempotent-replayed" not in other_key.headers
        assert state.ledger.counts() == {"alice": {"used": 2, "logged": 2, "requests": 1},
                                         "bob": {"used": 2, "logged": 2, "requests": 1}}
        assert post(url, body, headers={"Idempotency-Key": "x" * 201}).status_code == 422


def test_concurrent_queries_from_several_keys_are_counted_exactly(model_dir, tmp_path) -> None:
    """8 clients (3 keys) x 25 requests of 7 histories, all at once: used = logged = answered."""
    ledger = tmp_path / "ledger.sqlite"
    names = list(KEYS)

    async def hammer(url: str) -> dict[str, int]:
        answered = dict.fromkeys(names, 0)
        async with httpx.AsyncClient(timeout=60) as client:
            async def one_client(c: int) -> None:
                name = names[c % len(names)]
                for r in range(25):
                    hist = [[(c * 31 + r * 7 + j) % 150 + 1] for j in range(7)]
                    resp = await client.post(f"{url}/v1/recommend", json={"histories": hist, "k": 3}, headers=auth(name))
                    assert resp.status_code == 200, resp.text
                    answered[name] += len(resp.json()["items"])
            await asyncio.gather(*(one_client(c) for c in range(8)))
        return answered

    with thread_server(model_dir, ledger=ledger) as (url, state):
        answered = asyncio.run(hammer(url))
        counts = state.ledger.counts()
        assert sum(answered.values()) == 8 * 25 * 7
        for name in names:
            assert counts[name]["used"] == counts[name]["logged"] == answered[name] == state.used[name]
    reopened = sqlite3.connect(ledger)
    assert reopened.execute("SELECT SUM(used) FROM usage").fetchone()[0] == 8 * 25 * 7
    reopened.close()


@pytest.mark.parametrize("alias", ["hstu", "text_sasrec"])
def test_the_newer_victims_are_served_with_the_answers_they_give_in_process(alias, tmp_path, tiny_dataset, tiny_split) -> None:
    """HSTU (queries carry no event times: its unknown-gap bias) and the text-based SASRec (the
    text vectors it was trained with) saved, loaded by the server and queried over loopback HTTP:
    the same top lists as the trained model gives in this process before saving."""
    import torch

    from redteam.registry import resolve
    from redteam.serving.local import LocalRecommender

    cls = resolve("victims", alias)
    victim = cls(cls.Params(epochs=1, hidden=16, max_len=20))
    if alias == "text_sasrec":
        victim.use_item_text(list(tiny_dataset.item_text))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        victim.fit(tiny_split.train, None, n_items=tiny_dataset.n_items, seed=0)
    finally:
        torch.set_num_threads(before)
    victim.save(tmp_path / alias)
    histories = [[1, 2, 3], [40, 41], [7]]
    expected = LocalRecommender(victim.score, n_items=tiny_dataset.n_items).recommend(histories, 10)
    with thread_server(tmp_path / alias, topk=20, expose_scores=True) as (url, _):
        body = post(url, {"histories": histories, "k": 10}).json()
    assert body["items"] == expected.items.tolist()
    assert np.allclose(body["scores"], expected.scores, atol=1e-4)
