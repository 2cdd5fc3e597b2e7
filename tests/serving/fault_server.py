"""A recommender endpoint with scripted faults, served by a real uvicorn in a background thread.

``with fault_server(script) as server:`` answers ``POST /recs`` with the next fault of ``script``
(then correctly): ``500`` / ``429`` / ... a status, ``"garbage"`` a 200 that is not JSON,
``"slow"`` an answer after ``server.slow_s``; ``("429", "0.3")`` a status with ``Retry-After``.
A correct answer is in a nested shape, ``{"data": {"recs": [[{"id": i, "score": s}, ...], ...]}}``,
and ranks ``expected(history)``. Every request is recorded (headers and JSON body).
"""


import asyncio  # no `from __future__ import annotations`: FastAPI reads the handlers' annotations
import json
import threading
import time
from contextlib import contextmanager

N_ITEMS, TOPK = 50, 10


def expected(history: list[int], k: int = TOPK) -> list[int]:
    """The endpoint's answer to one history: a function of it the test can compute too."""
    start = sum(history) * 7 + len(history)
    return [(start + 3 * j) % N_ITEMS + 1 for j in range(k)]


class FaultServer:
    def __init__(self, script: list) -> None:
        self.script = list(script)
        self.requests: list[dict] = []
        self.slow_s = 1.0
        self.lock = threading.Lock()
        self.url = ""

    def next_fault(self):
        with self.lock:
            return self.script.pop(0) if self.script else None

    def recommend_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == "/recs"]


def create_app(server: FaultServer):
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse

    app = FastAPI()

    @app.get("/info")
    async def info(request: Request):
        server.requests.append({"path": "/info", "headers": dict(request.headers), "body": None})
        return {"n_items": N_ITEMS, "topk": TOPK}

    @app.post("/recs")
    async def recs(request: Request):
        body = json.loads(await request.body())
        server.requests.append({"path": "/recs", "headers": dict(request.headers), "body": body})
        fault = server.next_fault()
        if isinstance(fault, tuple):
            return JSONResponse({"detail": f"scripted {fault[0]}"}, status_code=int(fault[0]),
                                headers={"Retry-After": fault[1]})
        if fault == "garbage":
            return PlainTextResponse("<html>upstream error</html>", status_code=200)
        if fault == "slow":
            await asyncio.sleep(server.slow_s)
        elif fault == "jitter":
            await asyncio.sleep(0.01 * (sum(body["query"]["batch"][0]) % 5))
        elif fault is not None:
            return JSONResponse({"detail": f"scripted {fault}"}, status_code=int(fault))
        k = body["query"]["n"]
        return {"data": {"recs": [[{"id": i, "score": float(-j)} for j, i in enumerate(expected(h, k))]
                                  for h in body["query"]["batch"]]}}

    return app


@contextmanager
def fault_server(script: list | None = None):
    import uvicorn

    from redteam.serving.serve import bind

    server = FaultServer(script or [])
    sock = bind("127.0.0.1", 0)
    uv = uvicorn.Server(uvicorn.Config(create_app(server), log_level="critical", access_log=False))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "fault server did not start"
        time.sleep(0.02)
    try:
        yield server
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()


def settings(server: FaultServer, **overrides):
    """Client settings for the fault server's nested protocol (fast retries for tests)."""
    from redteam.serving.http_settings import HttpSettings

    return HttpSettings(**{
        "url": f"{server.url}/recs", "info_url": f"{server.url}/info",
        "body": {"query": {"batch": "{{histories}}", "n": "{{k}}"}, "client": "redteam"},
        "items_path": "$.data.recs[*][*].id", "scores_path": "$.data.recs[*][*].score",
        "backoff_s": 0.01, "max_retries": 2, "timeout_s": 5, **overrides})
