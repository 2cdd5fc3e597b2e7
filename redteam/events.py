"""The run's event stream: one JSON object per line in events.jsonl, plus optional listeners."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class EventLog:
    def __init__(self, path: Path | None = None) -> None:
        self.start = time.perf_counter()
        self.records: list[dict[str, Any]] = []
        self.path = path
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def emit(self, event: str, **fields: Any) -> None:
        record = {"t": round(time.perf_counter() - self.start, 3), "event": event, **fields}
        self.records.append(record)
        for listener in self.listeners:
            listener(record)

    def write(self, path: Path) -> None:
        with path.open("w") as fh:
            for record in self.records:
                fh.write(json.dumps(record, default=str) + "\n")
