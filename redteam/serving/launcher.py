"""Start ``redteam serve`` in a child process on a free loopback port, and stop it.

The runner uses it for ``api: {transport: http}`` (every attack then crosses a process boundary),
tests use it to kill a server mid-attack. The child gets its key through the environment (never
on the command line, where other users can read it), exits when this process does, and is
stopped with SIGTERM (then SIGKILL) on exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redteam.errors import RemoteError

KEY_ENV = "REDTEAM_SERVE_CHILD_KEYS"


class ServerProcess:
    """One served victim in a child process: ``with ServerProcess(model_dir, settings) as server: server.url``."""

    def __init__(self, model_dir: Path, settings: Any, *, keys: dict[str, str] | None = None, threads: int | None = 1,
                 start_timeout: float = 120.0) -> None:
        """``keys``: name -> key (default: one random key named ``runner``, see :attr:`key`)."""
        self.model_dir, self.settings, self.threads, self.start_timeout = model_dir, settings, threads, start_timeout
        self.keys = keys or {"runner": secrets.token_urlsafe(24)}
        self.key = next(iter(self.keys.values()))
        self._dir = Path(tempfile.mkdtemp(prefix="redteam-serve-"))
        self.proc: subprocess.Popen | None = None
        self.port: int | None = settings.port or None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        """Start the child and wait until it answers /healthz; on any failure (Ctrl-C included) the
        child is stopped before the error propagates."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> "ServerProcess":
        self._dir.mkdir(parents=True, exist_ok=True)
        config = self._dir / "serve.yaml"
        settings = self.settings.model_copy(update={"host": "127.0.0.1", "port": self.port or 0})
        config.write_text(json.dumps(settings.model_dump(mode="json")))
        ready = self._dir / "ready.json"
        ready.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "redteam.cli", "serve", str(self.model_dir), "--config", str(config),
               "--keys-env", KEY_ENV, "--ready-file", str(ready), "--parent-pid", str(os.getpid())]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        self._log = open(self._dir / "server.log", "ab")
        self.proc = subprocess.Popen(cmd, env={**os.environ, KEY_ENV: ",".join(f"{n}:{k}" for n, k in self.keys.items())}, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RemoteError(f"redteam serve {self.model_dir} exited with code {self.proc.returncode} "
                                  f"before serving: {self.last_log_line()}")
            if time.monotonic() > deadline:
                raise RemoteError(f"redteam serve {self.model_dir}: not ready after {self.start_timeout:.0f} s")
            time.sleep(0.05)
        self.port = json.loads(ready.read_text())["port"]
        self._wait_healthy(deadline)
        return self

    def _wait_healthy(self, deadline: float) -> None:
        import httpx

        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or (self.proc is not None and self.proc.poll() is not None):
                raise RemoteError(f"{self.url}/healthz: the served victim never became healthy")
            time.sleep(0.05)

    def last_log_line(self) -> str:
        lines = (self._dir / "server.log").read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"

    def kill(self) -> None:
        """SIGKILL, no cleanup: what a crash looks like."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
