"""Reading a run's results.json in tests, and the part of it that must repeat from run to run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from same_results import without_timings  # noqa: E402  (one rule for tests and the bench check)

__all__ = ["results_of", "without_timings"]


def results_of(out: Path) -> dict[str, Any]:
    """The results.json of the one run directory under ``out``."""
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return json.loads((run_dir / "results.json").read_text())
