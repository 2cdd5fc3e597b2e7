"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real benchmark data: $REDTEAM_DATA_DIR, else ../shared/data next to the repo."""
    env = os.environ.get("REDTEAM_DATA_DIR")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not candidate.is_dir():
        pytest.skip("real data not found: set REDTEAM_DATA_DIR")
    return candidate
