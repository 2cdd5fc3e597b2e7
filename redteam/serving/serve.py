"""Run a victim as an HTTP service (uvicorn) until stopped: what ``redteam serve`` does."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from redteam.serving.keys import KeyRing
from redteam.serving.serve_settings import ServeSettings

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def served_recommender(model: Any, settings: ServeSettings) -> Any:
    """The model behind the serving chain: a local recommender, then each serving defense in order.

    A defense draws from ``numpy_rng(settings.seed, "serving-defense", *seed_path)`` (default
    path: its name); a scenario passes ``[name, attacker seed]``, the path its in-process endpoint
    draws from, so the served victim answers exactly as the in-process one."""
    from redteam.seeding import numpy_rng
    from redteam.serving.local import LocalRecommender
    from redteam.stages.defenses import build_defense

    served: Any = LocalRecommender(model.score, n_items=model.n_items, exclude_history=settings.exclude_history,
                                   batch_size=settings.batch_size)
    for spec in settings.defenses:
        defense = build_defense(spec)
        if defense is None:
            continue
        if defense.kind != "serving":
            from redteam.errors import ConfigError

            raise ConfigError(f"--defense {spec.name}: a {defense.kind} defense does not act on a served victim")
        served = defense.wrap(served, numpy_rng(settings.seed, "serving-defense", *(settings.seed_path or [spec.name])))
    return served


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # IPPROTO_TCP: asyncio then sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        from redteam.errors import ConfigError

        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot bind ({exc.strerror})") from None
    sock.listen(2048)
    return sock


def run_server(recommender: Any, settings: ServeSettings, *, keys: KeyRing | None, ready_file: Path | None = None,
               parent_pid: int | None = None, log: bool = True) -> None:
    """Serve until SIGINT/SIGTERM (or until ``parent_pid`` exits): bind, announce, run, close the ledger."""
    import uvicorn

    from redteam.serving.http_app import create_app
    from redteam.serving.ledger import Ledger

    if settings.host not in LOOPBACK and keys is None:
        sys.stderr.write(f"warning: serving on {settings.host} without API keys: anyone who reaches it may query it\n")
    ledger = Ledger(settings.ledger)
    app = create_app(recommender, settings, keys=keys, ledger=ledger)
    sock = bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                            limit_concurrency=4096, backlog=2048)
    server = uvicorn.Server(config)
    if parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(server, parent_pid), daemon=True).start()
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"host": settings.host, "port": port, "pid": os.getpid()}))
        tmp.replace(ready_file)
    if log:
        sys.stderr.write(f"serving {type(recommender).__name__} on http://{settings.host}:{port} "
                         f"(POST /v1/recommend, GET /v1/info, GET /healthz, GET /openapi.json)\n")
    try:
        server.run(sockets=[sock])
    finally:
        app.state.victim.stopping = True
        ledger.close()
        sock.close()


def _exit_with_parent(server: Any, parent_pid: int) -> None:
    while not server.should_exit:
        if os.getppid() != parent_pid:
            server.should_exit = True
            return
        time.sleep(0.5)
