"""Reading a run directory back: ``results.json`` and ``per_user.npz``, with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from redteam.errors import DataError

REQUIRED = ("scenario", "rows")
ROW_KEYS = ("victim", "attack", "defense", "metrics")


def results_file(path: Path) -> Path:
    """``RUN_DIR/results.json`` (a path to a ``.json`` file is taken as it is)."""
    if not path.exists():
        raise DataError(f"run directory not found: {path}")
    if path.is_file():
        return path
    file = path / "results.json"
    if not file.is_file():
        raise DataError(f"{path}: no results.json (not a run directory)")
    return file


def load_results(path: Path) -> dict[str, Any]:
    file = results_file(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{file}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if not isinstance(data, dict) or any(k not in data for k in REQUIRED):
        missing = [k for k in REQUIRED if not isinstance(data, dict) or k not in data]
        raise DataError(f"{file}: not a redteam results file (missing {', '.join(repr(k) for k in missing)})")
    if not isinstance(data["rows"], list):
        raise DataError(f"{file}: 'rows' must be a list")
    for i, row in enumerate(data["rows"]):
        if not isinstance(row, dict) or any(k not in row for k in ROW_KEYS):
            raise DataError(f"{file}: rows[{i}] needs the keys {', '.join(ROW_KEYS)}")
    return data


def load_per_user(path: Path) -> dict[str, np.ndarray]:
    """``victim|attack|defense|metric`` -> [seeds, users]; empty when the run has no such file."""
    file = (path.parent if path.is_file() else path) / "per_user.npz"
    if not file.is_file():
        return {}
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {key: np.asarray(npz[key], dtype=np.float64) for key in npz.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{file}: not a readable per-user file ({exc})") from None
