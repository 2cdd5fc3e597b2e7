"""`redteam serve` as a process: it starts, refuses bad set-ups in one line, and never outlives the
run that started it (Ctrl-C, a crash of the run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCENARIO = {"name": "lifecycle", "seed": 1, "dataset": {"name": "synthetic", "users": 300, "items": 150},
            "victim": {"name": "sasrec", "epochs": 1, "hidden": 16, "max_len": 20},
            "api": {"topk": 20, "budget": 200000, "transport": "http", "http_batch_size": 1},
            "attacks": [{"name": "extraction.random", "distill_epochs": 1, "curve": [], "length": 20}],
            "eval": {"k": [10], "bootstrap": 0}, "runtime": {"threads": 1}}


def cli(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "redteam.cli", *args], cwd=REPO, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def as_in_a_terminal() -> None:
    """A command started in the background by a non-interactive shell (a CI script) inherits SIGINT
    ignored; a foreground command in a terminal, which Ctrl-C reaches, has it at its default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid), "-f", "redteam.cli serve"], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead for our purpose
        return stat.read().split()[2] != "Z"


@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_the_server_never_outlives_its_run(tmp_path, how) -> None:
    """An extraction that queries one history per request keeps its server busy; interrupting the
    run (SIGINT, as Ctrl-C) or killing it outright (no clean-up runs) stops the server too."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    run = cli("run", str(path), "-q", "--out", str(tmp_path / "runs"),
              env={"REDTEAM_CACHE_DIR": str(tmp_path / "cache"), "PYTHONFAULTHANDLER": "1"}, preexec_fn=as_in_a_terminal)
    try:
        server = wait_for(lambda: children(run.pid), 120, "the served victim")[0]
        time.sleep(1.0)
        run.send_signal(signal.SIGINT if how == "sigint" else signal.SIGKILL)
        try:
            _, err = run.communicate(timeout=60)  # reads the pipes: a chatty run cannot block on them
        except subprocess.TimeoutExpired:
            run.send_signal(signal.SIGABRT)  # faulthandler prints where every thread is
            _, err = run.communicate(timeout=30)
            pytest.fail(f"the run did not stop after {how}:\n{err[-4000:]}")
        assert run.returncode == (130 if how == "sigint" else -signal.SIGKILL), err
        wait_for(lambda: not alive(server), 20, "the server to exit")
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=30)


def test_serve_refuses_bad_set_ups_in_one_line(model_dir, tmp_path) -> None:
    keys = {"REDTEAM_API_KEYS": "ops:0123456789abcdef0123"}
    for args, env, message in [((str(tmp_path / "nowhere"),), keys, "nowhere"),
                               ((str(model_dir), "--port", "0"), {"REDTEAM_API_KEYS": ""}, "REDTEAM_API_KEYS"),
                               ((str(model_dir), "--topk", "0"), keys, "topk")]:
        proc = cli("serve", *args, env=env)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, err
        assert len(err.strip().splitlines()) == 1 and message in err, err
