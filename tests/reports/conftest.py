"""Fixtures of the report tests: a hand-built results.json (see hand_built.py) and its run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hand_built import defense_comparison


@pytest.fixture
def results() -> dict:
    return defense_comparison()


@pytest.fixture
def run_dir(tmp_path: Path, results: dict) -> Path:
    folder = tmp_path / "defense-comparison-abc123def0"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    return folder
