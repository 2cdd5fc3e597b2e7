"""A tiny trained victim and a real uvicorn server for it in a background thread (loopback, free port)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

KEYS = {"alice": "alice-key-0123456789abcdef", "bob": "bob-key-0123456789abcdef", "eve": "eve-key-0123456789abcdef"}


def train_tiny_victim(folder: Path, dataset, split) -> Path:
    """A 2-epoch SASRec on the tiny synthetic data, saved as `redteam serve` loads it."""
    from victims.sasrec import SASRec

    victim = SASRec(SASRec.Params(epochs=2, hidden=16, max_len=20, patience=1))
    victim.fit(split.train, None, n_items=dataset.n_items, seed=0)
    victim.save(folder)
    return folder


@contextmanager
def thread_server(model_dir: Path, **settings):
    """``with thread_server(dir, budget=10) as (url, state):`` a served victim until the block ends."""
    import uvicorn

    from redteam.serving.http_app import create_app
    from redteam.serving.keys import parse_keys
    from redteam.serving.ledger import Ledger
    from redteam.serving.model_source import load_model
    from redteam.serving.serve import bind, served_recommender
    from redteam.serving.serve_settings import ServeSettings

    config = ServeSettings(port=0, **settings)
    ledger = Ledger(config.ledger)
    keys = parse_keys([f"{n}: {k}" for n, k in KEYS.items()], source="test keys")
    app = create_app(served_recommender(load_model(model_dir), config), config, keys=keys, ledger=ledger)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield url, app.state.victim
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ledger.close()
        sock.close()


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


def post(url: str, body, *, key: str | None = "alice", headers: dict | None = None, **kw) -> httpx.Response:
    return httpx.post(f"{url}/v1/recommend", json=body, headers={**(auth(key) if key else {}), **(headers or {})},
                      timeout=20, **kw)
