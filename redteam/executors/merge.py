"""Replaying unit records into the driver's run context, in the serial loop's order.

Every step of every unit is applied in the order of its serial index, so rows are created and
filled in the order a serial run creates and fills them. Rows of attack ``none`` hold values a
serial run computes once per (victim, run seed) and remembers (the victim's clean row, a serving
defense's clean row and calibration, a watermarked victim, the clean exposure): several units
compute them again, and only the first step to add a given metric or info entry to such a row,
for a given run seed, is kept.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def _copier(source: Path):
    def write(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, path, dirs_exist_ok=True)
        else:
            shutil.copy2(source, path)

    return write


def replay(ctx: Any, records: list[dict[str, Any]]) -> None:
    """Apply every step of ``records`` (finished units, see :func:`read_record`) to ``ctx``."""
    steps = sorted(((step, record) for record in records for step in record["steps"]),
                   key=lambda pair: (pair[0]["index"], pair[0]["part"]))
    kept: set[tuple] = set()
    for step, record in steps:
        arrays, run_seed = record["arrays"], step["run_seed"]
        added: set[tuple] = set()
        for entry in step["rows"]:
            key = tuple(entry["key"])
            row = ctx.rows.row(*key)

            def fresh(kind: str, name: str) -> bool:
                """False for a once-per-run-seed value (attack none) an earlier step already gave."""
                if key[2] != "none":
                    return True
                added.add((key, run_seed, kind, name))
                return (key, run_seed, kind, name) not in kept

            for metric, names in entry["metrics"].items():
                if fresh("metric", metric):
                    row.per_seed.setdefault(metric, []).extend(arrays[n] for n in names)
                    tags = entry.get("repetitions", {}).get(metric) or [None] * len(names)
                    row.repetitions.setdefault(metric, []).extend(None if t is None else tuple(t) for t in tags)
            for metric, pairs in entry["layout"].items():
                if fresh("layout", metric):
                    row.layout.setdefault(metric, []).extend((arrays[g], arrays[c]) for g, c in pairs)
            for name, values in entry["info_lists"].items():
                if fresh("info", name):
                    row.info.setdefault(name, []).extend(values)
            for name, value in entry["info_set"].items():
                if fresh("info", name):
                    row.info.setdefault(name, value)
        kept |= added
        ctx.curves.extend(step["curves"])
        for event in step["events"]:
            ctx.events.records.append({**event, "unit": record["unit"], "node": record["node"]["node_id"]})
        for rel in step["artifacts"]:
            ctx.artifacts[rel] = _copier(Path(record["dir"]) / "artifacts" / rel)
