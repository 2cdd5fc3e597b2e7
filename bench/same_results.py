"""Are two runs' results.json the same, timings aside? Prints `identical` or every differing path.

    python bench/same_results.py RUN_A RUN_B        # run directories or their results.json

What legitimately changes between two runs of one scenario is left out: every key naming seconds,
cache hits, the environment and the runtime settings (threads, executor). Exit 0 when identical,
1 when not.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def without_timings(value: Any) -> Any:
    """``value`` less timings, cache hits, the environment and runtime settings."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items()
                if "second" not in k and "cached" not in k and k not in ("timings", "environment", "runtime")}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """The paths (``rows[3].metrics.agreement@10``) where ``a`` and ``b`` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{path}.{k}".lstrip(".") + (" only in A" if k in a else " only in B")
                 for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            found += differences(a[k], b[k], f"{path}.{k}")
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path.lstrip('.')}: {len(a)} vs {len(b)} entries"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path.lstrip('.')}: {a!r} vs {b!r}"]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    paths = [Path(p) / "results.json" if Path(p).is_dir() else Path(p) for p in argv]
    for path in paths:
        if not path.is_file():
            print(f"{path}: no such results.json", file=sys.stderr)
            return 2
    a, b = (without_timings(json.loads(path.read_text())) for path in paths)
    found = differences(a, b)
    print("identical (timings, cache hits, environment and runtime aside)" if not found else "\n".join(found))
    return 0 if not found else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
