"""A served victim SIGKILLed between two requests of an attack and started again on its port: the
client's retries carry the attack over the gap, and the books charge and log each query once."""

from __future__ import annotations

import threading

import numpy as np

from redteam.serving.http_client import HttpRecommender
from redteam.serving.http_settings import HttpSettings
from redteam.serving.launcher import ServerProcess
from redteam.serving.ledger import Ledger
from redteam.serving.serve_settings import ServeSettings

KEY = "restart-key-0123456789abcdef"


def queries(n: int) -> list[list[list[int]]]:
    rng = np.random.default_rng(11)
    return [[rng.integers(1, 151, size=rng.integers(1, 10)).tolist() for _ in range(5)] for _ in range(n)]


def test_an_attack_carries_on_across_a_server_restart(model_dir, tmp_path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    batches = queries(30)
    with ServerProcess(model_dir, ServeSettings(port=0, topk=10, ledger=ledger, budget=150), keys={"attacker": KEY}) as server:
        settings = HttpSettings(url=f"{server.url}/v1/recommend", headers={"Authorization": f"Bearer {KEY}"},
                                max_retries=20, backoff_s=0.2, max_backoff_s=2.0, concurrency=1)
        with HttpRecommender(settings, journal=tmp_path / "journal.sqlite") as client:
            answers = [client.recommend(b, 10).items for b in batches[:10]]
            server.kill()
            restarter = threading.Thread(target=server.start)  # the same port: ServerProcess keeps its first one
            restarter.start()
            answers += [client.recommend(b, 10).items for b in batches[10:]]  # retried until the server is back
            restarter.join(timeout=120)
            assert server.proc.poll() is None and client.retries >= 1
            assert client.queries_sent + client.queries_replayed == 150
    with ServerProcess(model_dir, ServeSettings(port=0, topk=10), keys={"attacker": KEY}) as fresh:
        settings = HttpSettings(url=f"{fresh.url}/v1/recommend", headers={"Authorization": f"Bearer {KEY}"})
        with HttpRecommender(settings) as reference:
            for batch, got in zip(batches, answers):
                np.testing.assert_array_equal(got, reference.recommend(batch, 10).items)
    books = Ledger(ledger).counts()["attacker"]
    assert books["used"] == books["logged"] == 150  # the budget was spent exactly, nothing charged twice
