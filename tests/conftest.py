"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def deterministic_torch():
    """Every test computes under the torch configuration runs use (deterministic algorithms on), so
    a test's numbers do not depend on whether an earlier test in the process started a run."""
    from redteam.environment import use_deterministic_algorithms

    use_deterministic_algorithms()


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real benchmark data: $REDTEAM_DATA_DIR, else ../shared/data next to the repo."""
    env = os.environ.get("REDTEAM_DATA_DIR")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not candidate.is_dir():
        pytest.skip("real data not found: set REDTEAM_DATA_DIR")
    return candidate


# --------------------------------------------------------------------------------------------
# Tiny synthetic data and an in-process CLI runner (kept small: the suite runs on 2 cores).

TINY_USERS, TINY_ITEMS, TINY_SEED = 300, 150, 0


@pytest.fixture(scope="session")
def tiny_dataset():
    from redteam.data import make_synthetic

    return make_synthetic(users=TINY_USERS, items=TINY_ITEMS, seed=TINY_SEED)


@pytest.fixture(scope="session")
def tiny_split(tiny_dataset):
    from redteam.data import LeaveOneOutSplit

    return LeaveOneOutSplit.of(tiny_dataset)


@pytest.fixture
def one_thread():
    """Run a test with one torch thread (fast on a shared 2-core machine, deterministic)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class CliResult:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, stderr={self.stderr!r})"


@pytest.fixture
def run_cli(monkeypatch, tmp_path, capsys, one_thread):
    """``run_cli("run", "x.yaml", "-q")`` calls ``redteam.cli.main`` in-process.

    The exit code is what the process would exit with: a ``SystemExit`` code, or 0 when
    ``main()`` returns normally. ``REDTEAM_CACHE_DIR`` points into this test's tmp dir.
    """
    import sys

    from redteam.cli import main

    monkeypatch.setenv("REDTEAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # typer replaces it

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["redteam", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run
