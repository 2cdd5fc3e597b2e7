"""Reading a run's results.json in tests, and the part of it that must repeat from run to run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def results_of(out: Path) -> dict[str, Any]:
    """The results.json of the one run directory under ``out``."""
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return json.loads((run_dir / "results.json").read_text())


def without_timings(value: Any) -> Any:
    """``value`` less what legitimately changes between two runs of one scenario: timings, cache
    hits, the environment and runtime settings."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items()
                if "second" not in k and "cached" not in k and k not in ("timings", "environment", "runtime")}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value
