"""The HTTP victim's client against real servers: a scripted faulty endpoint (its own protocol,
reached through the template and JSON paths) and `redteam serve` itself."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from fault_server import N_ITEMS, TOPK, expected, fault_server, settings
from redteam.errors import BudgetExceeded, ConfigError, RemoteError
from redteam.serving.http_client import HttpRecommender
from redteam.serving.http_settings import HttpSettings

HISTORIES = [[1, 2, 3], [4], [5, 6, 7, 8], [9, 9], [10, 11]]


def answer_of(histories, k=TOPK) -> np.ndarray:
    return np.asarray([expected(h, k) for h in histories])


def test_template_paths_and_info_reach_a_foreign_protocol(monkeypatch) -> None:
    monkeypatch.setenv("REDTEAM_TEST_TOKEN", "s3cret-token")
    with fault_server() as server, HttpRecommender(settings(server, headers={
            "Authorization": "Bearer {{env.REDTEAM_TEST_TOKEN}}"}, batch_size=2)) as client:
        assert (client.n_items, client.max_k) == (N_ITEMS, TOPK)  # read from info_url
        top = client.recommend(HISTORIES, 4)
    np.testing.assert_array_equal(top.items, answer_of(HISTORIES, 4))
    np.testing.assert_array_equal(top.scores, np.tile(-np.arange(4, dtype=np.float32), (5, 1)))
    posts = sorted(server.recommend_requests(), key=lambda p: int(p["headers"]["idempotency-key"].split("-")[1]))
    assert [p["body"]["query"]["batch"] for p in posts] == [HISTORIES[0:2], HISTORIES[2:4], HISTORIES[4:]]
    assert all(p["body"]["query"]["n"] == 4 and p["body"]["client"] == "redteam" for p in posts)
    assert all(r["headers"]["authorization"] == "Bearer s3cret-token" for r in server.requests)
    assert client.queries_sent == 5 and client.requests_sent == 4 and client.retries == 0  # 3 posts + 1 info


def test_a_missing_secret_is_a_config_error_naming_the_header(monkeypatch) -> None:
    monkeypatch.delenv("REDTEAM_NO_SUCH_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"headers\.X-Api-Key: environment variable REDTEAM_NO_SUCH_TOKEN is not set"):
        HttpRecommender(HttpSettings(headers={"X-Api-Key": "{{env.REDTEAM_NO_SUCH_TOKEN}}"}, n_items=5, max_k=5))


@pytest.mark.parametrize("bad", [{"url": "ftp://x"}, {"items_path": "items"}, {"items_path": "$.a..b"},
                                 {"body": {"h": "{{history}}"}}, {"concurrency": 0}, {"methods": "GET"}])
def test_bad_settings_are_refused_up_front(bad) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        HttpSettings(**bad)


def test_answers_keep_their_order_under_concurrency() -> None:
    rng = np.random.default_rng(3)
    histories = [rng.integers(1, N_ITEMS + 1, size=rng.integers(1, 8)).tolist() for _ in range(40)]
    with fault_server(["jitter"] * 20) as server, HttpRecommender(settings(server, batch_size=3, concurrency=4)) as client:
        top = client.recommend(histories, TOPK)
    np.testing.assert_array_equal(top.items, answer_of(histories))
    keys = [p["headers"]["idempotency-key"] for p in server.recommend_requests()]
    assert len(keys) == 14 and len(set(keys)) == 14


def test_5xx_and_429_are_retried_with_the_same_idempotency_key() -> None:
    with fault_server(["500", "503", ("429", "0.3")]) as server, HttpRecommender(settings(server, max_retries=3)) as client:
        start = time.monotonic()
        top = client.recommend(HISTORIES[:2], TOPK)
        waited = time.monotonic() - start
    np.testing.assert_array_equal(top.items, answer_of(HISTORIES[:2]))
    assert client.retries == 3 and client.queries_sent == 2
    assert waited >= 0.3  # Retry-After honoured
    keys = {p["headers"]["idempotency-key"] for p in server.recommend_requests()}
    assert len(server.recommend_requests()) == 4 and len(keys) == 1


@pytest.mark.parametrize(("script", "message"), [
    (["500"] * 3, r"^POST http://127\.0\.0\.1:\d+/recs: HTTP 500: scripted 500 \(after 3 attempts\)$"),
    ([("429", "0")] * 3, r"^POST http://127\.0\.0\.1:\d+/recs: HTTP 429: scripted 429 \(after 3 attempts\)$"),
    (["garbage"], r"^POST http://127\.0\.0\.1:\d+/recs: HTTP 200: the answer is not JSON \('<html>upstream error</html>'\)$"),
    (["slow"] * 3, r"^POST http://127\.0\.0\.1:\d+/recs: no answer within 0\.2 s \(after 3 attempts\)$"),
    (["401"], r"^POST http://127\.0\.0\.1:\d+/recs: HTTP 401: scripted 401$"),
])
def test_a_failing_endpoint_ends_in_one_line_naming_the_url_and_status(script, message) -> None:
    with fault_server(script) as server, HttpRecommender(settings(server, timeout_s=0.2)) as client:
        with pytest.raises(RemoteError, match=message) as caught:
            client.recommend(HISTORIES[:1], TOPK)
    assert "\n" not in str(caught.value)
    assert len(server.recommend_requests()) == (1 if script[0] in ("garbage", "401") else 3)


def test_402_is_a_budget_error_and_the_client_budget_is_checked_before_sending() -> None:
    with fault_server(["402"]) as server, HttpRecommender(settings(server)) as client:
        with pytest.raises(BudgetExceeded, match="HTTP 402"):
            client.recommend(HISTORIES, TOPK)
    with fault_server() as server, HttpRecommender(settings(server, budget=6)) as client:
        client.recommend(HISTORIES, TOPK)
        with pytest.raises(BudgetExceeded, match=r"victims\.http\.budget: 5 queries asked \+ 2 > budget 6"):
            client.recommend(HISTORIES[:2], TOPK)
    assert len(server.recommend_requests()) == 1


@pytest.mark.parametrize(("path", "message"), [("$.data.nope", r"\$\.data\.nope does not exist"),
                                               ("$.data.recs[*][*].score", "not integer item ids")])
def test_answers_of_the_wrong_shape_are_refused(path, message) -> None:
    with fault_server() as server, HttpRecommender(settings(server, items_path=path, scores_path=None)) as client:
        with pytest.raises(RemoteError, match=message):
            client.recommend(HISTORIES[:1], TOPK)


def test_a_journal_replays_bought_answers_and_forgets_a_diverging_path(tmp_path) -> None:
    journal = tmp_path / "journal.sqlite"
    other = [[12, 13], [14]]
    with fault_server() as server:
        with HttpRecommender(settings(server, batch_size=2), journal=journal) as first:
            bought = [first.recommend(HISTORIES, TOPK).items, first.recommend(other, TOPK).items]
        posted = len(server.recommend_requests())
        with HttpRecommender(settings(server, batch_size=2), journal=journal) as again:
            np.testing.assert_array_equal(again.recommend(HISTORIES, TOPK).items, bought[0])
            np.testing.assert_array_equal(again.recommend(other, TOPK).items, bought[1])
        assert len(server.recommend_requests()) == posted and again.queries_replayed == 7 and again.queries_sent == 0
        with HttpRecommender(settings(server, batch_size=2), journal=journal) as diverged:
            np.testing.assert_array_equal(diverged.recommend(other, TOPK).items, bought[1])  # seq 0 now differs
            diverged.recommend(HISTORIES[2:4], TOPK)  # seq 1 was dropped with it: asked live
        assert diverged.queries_sent == 4 and diverged.queries_replayed == 0


def test_redteam_serve_speaks_the_default_protocol(model_dir) -> None:
    """The defaults (template, paths, /v1/info) reach `redteam serve` with no settings but URL and key."""
    from served import auth, thread_server

    with thread_server(model_dir, budget=30, expose_scores=True) as (url, state):
        client_settings = HttpSettings(url=f"{url}/v1/recommend", headers=auth("alice"), scores_path="$.scores")
        with HttpRecommender(client_settings) as client:
            top = client.recommend([[1, 2, 3], [4, 5]], 5)
            assert top.items.shape == (2, 5) and top.scores.shape == (2, 5)
            expected_top = state.recommender.recommend([np.array([1, 2, 3]), np.array([4, 5])], 5)
            np.testing.assert_array_equal(top.items, expected_top.items)
            with pytest.raises(BudgetExceeded, match=r"HTTP 402: 29 queries asked, 28 left"):
                client.recommend([[1]] * 29, 5)


def test_reruns_against_redteam_serve_never_pay_twice_nor_get_another_requests_answer(model_dir, tmp_path) -> None:
    """Three runs share one journal and one ledger: the first buys, the second (identical) replays
    without a request, the third diverges at its second request and gets that request's own answer
    (a key that held the request's position before now carries another hash)."""
    from served import auth, thread_server

    journal, ledger = tmp_path / "journal.sqlite", tmp_path / "ledger.sqlite"
    first_asks = [[[1, 2], [3]], [[5, 6]], [[7], [8, 9]]]
    third_asks = [[[1, 2], [3]], [[30, 4]], [[7], [8, 9]]]
    with thread_server(model_dir, ledger=ledger) as (url, state):
        settings = HttpSettings(url=f"{url}/v1/recommend", headers=auth("alice"), batch_size=2)
        truth = lambda asks: [state.recommender.recommend([np.array(h) for h in b], 10).items for b in asks]  # noqa: E731
        runs = []
        for asks in (first_asks, first_asks, third_asks):
            with HttpRecommender(settings, journal=journal) as client:
                got = [client.recommend(b, 10).items for b in asks]
                runs.append((client.queries_sent, client.queries_replayed, client._run_id))
            for g, t in zip(got, truth(asks)):
                np.testing.assert_array_equal(g, t)
        books = state.ledger.counts()["alice"]
        keys = [r[0] for r in state.ledger._db.execute("SELECT idempotency_key FROM requests ORDER BY id")]
    from redteam.serving.journal import AnswerJournal

    journal_id = AnswerJournal(journal, settings.fingerprint()).journal_id
    assert [r[2] for r in runs] == [journal_id] * 3  # the first run's keys already carry the journal's id
    # third run: request 0 from the journal, request 1 (new) bought, request 2 dropped from the journal
    # with everything after the divergence but answered again by the server's books, not charged
    assert runs[0][:2] == (5, 0) and runs[1][:2] == (0, 5) and runs[2][:2] == (1, 4)
    assert books["used"] == books["logged"] == 6 and len(keys) == 4 and all(k.startswith(journal_id) for k in keys)


def test_a_reused_idempotency_key_with_another_body_is_refused(model_dir) -> None:
    from served import post, thread_server

    with thread_server(model_dir) as (url, state):
        assert post(url, {"histories": [[1, 2]]}, headers={"Idempotency-Key": "k-1"}).status_code == 200
        again = post(url, {"histories": [[1, 2]]}, headers={"Idempotency-Key": "k-1"})
        assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
        other = post(url, {"histories": [[3, 4]]}, headers={"Idempotency-Key": "k-1"})
        assert other.status_code == 422 and other.json()["error"] == "idempotency_mismatch"
        assert state.ledger.counts()["alice"]["used"] == 1


def test_a_journal_of_other_settings_is_emptied_and_a_corrupt_one_is_a_data_error(tmp_path) -> None:
    from redteam.errors import DataError
    from redteam.serving.journal import AnswerJournal

    path = tmp_path / "journal.sqlite"
    first = AnswerJournal(path, "endpoint A")
    first.record(0, "h", np.ones((1, 3), dtype=np.int64), None)
    first.close()
    assert len(AnswerJournal(path, "endpoint A")) == 1 and len(AnswerJournal(path, "endpoint B")) == 0
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"not a database at all" * 100)
    with pytest.raises(DataError, match=r"broken\.sqlite: the answer journal cannot be used"):
        AnswerJournal(broken)


def test_secrets_never_reach_an_error_line(monkeypatch) -> None:
    from redteam.serving.http_client import public_url

    monkeypatch.setenv("REDTEAM_TEST_TOKEN", "sk-secret-value\n")
    with pytest.raises(ConfigError, match=r"headers\.Authorization: the value \(from REDTEAM_TEST_TOKEN\) holds a "
                                          r"character a header cannot carry") as caught:
        HttpRecommender(HttpSettings(headers={"Authorization": "Bearer {{env.REDTEAM_TEST_TOKEN}}"}, n_items=5, max_k=5))
    assert "sk-secret" not in str(caught.value)
    assert public_url("https://user:pw@api.example.com:8443/v1/recommend?api_key=s3") == \
        "https://api.example.com:8443/v1/recommend"
    with fault_server(["401"]) as server:
        url = server.url.replace("http://", "http://user:pw@") + "/recs?api_key=s3"
        with HttpRecommender(settings(server, url=url)) as client, pytest.raises(RemoteError) as failed:
            client.recommend(HISTORIES[:1], TOPK)
    assert "pw" not in str(failed.value) and "s3" not in str(failed.value) and "HTTP 401" in str(failed.value)


def test_import_redteam_does_not_import_httpx() -> None:
    code = ("import sys, redteam, redteam.cli, redteam.runner, victims.http_victim; "
            "assert 'httpx' not in sys.modules and 'fastapi' not in sys.modules, 'eager import'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
