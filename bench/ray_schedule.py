"""Predict a sweep's wall time on more workers from the unit times of one Ray run.

The Ray executor records each unit's seconds in ``results.json`` (``timings.units``). This rebuilds
the scenario's unit graph (``redteam.executors.units.plan_units``), weights every unit by its
measured time and prints:

* the total work (the sum of unit times: the wall time on one worker, scheduling aside);
* the critical path (the longest chain of units that need one another: no number of workers
  finishes sooner);
* for each worker count, the wall time of a list schedule (a unit starts as soon as the units it
  needs are done and enough workers are free; among ready units the one with the longest path to
  the end goes first), next to the lower bound ``max(critical path, work / workers)``.

A unit keeps its measured time on any worker; units measured while sharing the CPUs with others
(2 workers on 2 cores) are slower than they would be alone, so the predictions lean pessimistic.

    python bench/ray_schedule.py runs/<scenario>/results.json [--workers 1 2 4 16 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit  # noqa: E402


def unit_graph(results: dict) -> tuple[dict[str, float], dict[str, tuple[str, ...]], dict[str, int], dict[str, str]]:
    """``(seconds, needs, cpus, title)`` per unit id, from a Ray run's results."""
    from redteam.executors.units import plan_units
    from redteam.scenario import build_scenario

    timed = results.get("timings", {}).get("units")
    if not timed:
        sys.exit("error: results.json has no timings.units: pass the results of a run with --executor ray")
    scenario = build_scenario(results["scenario"], source="results.json scenario")
    plan = plan_units(scenario, cpus=scenario.runtime.unit_cpus)
    missing = [u.id for u in plan.units if u.id not in timed]
    if missing:
        sys.exit(f"error: no time recorded for unit {missing[0]} (results from other code or another scenario?)")
    return ({u.id: float(timed[u.id]["seconds"]) for u in plan.units}, {u.id: u.needs for u in plan.units},
            {u.id: u.cpus for u in plan.units}, {u.id: u.title for u in plan.units})


def bottom_levels(seconds: dict[str, float], needs: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """Per unit, its time plus the longest chain of units after it (the plan lists producers first)."""
    users: dict[str, list[str]] = {u: [] for u in seconds}
    for unit, deps in needs.items():
        for dep in deps:
            users[dep].append(unit)
    level: dict[str, float] = {}
    for unit in reversed(list(seconds)):
        level[unit] = seconds[unit] + max((level[u] for u in users[unit]), default=0.0)
    return level


def list_schedule(seconds: dict[str, float], needs: dict[str, tuple[str, ...]], cpus: dict[str, int],
                  workers: int) -> float:
    """Wall time of the longest-path-first list schedule on ``workers`` one-CPU workers."""
    level = bottom_levels(seconds, needs)
    waiting = {u: set(deps) for u, deps in needs.items()}
    ready = [(-level[u], u) for u, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    free, now, done = workers, 0.0, 0
    while done < len(seconds):
        held: list[tuple[float, str]] = []
        while ready:
            item = heapq.heappop(ready)
            width = min(cpus[item[1]], workers)
            if width <= free:
                free -= width
                heapq.heappush(running, (now + seconds[item[1]], item[1]))
            else:
                held.append(item)
        for item in held:
            heapq.heappush(ready, item)
        now, finished = heapq.heappop(running)
        free += min(cpus[finished], workers)
        done += 1
        for unit, deps in waiting.items():
            if finished in deps:
                deps.discard(finished)
                if not deps:
                    heapq.heappush(ready, (-level[unit], unit))
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results.json of a run with --executor ray")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 16, 64])
    parser.add_argument("--json", dest="json_path", help="also write the figures to this JSON file")
    args = parser.parse_args()
    try:
        results = json.loads(args.results.read_text())
    except (OSError, ValueError) as exc:
        sys.exit(f"error: {args.results}: cannot read results ({exc})")
    seconds, needs, cpus, titles = unit_graph(results)
    level = bottom_levels(seconds, needs)
    work = sum(seconds[u] * cpus[u] for u in seconds)
    critical = max(level.values())
    chain, unit = [], max(level, key=level.get)
    while unit:
        chain.append(unit)
        after = [u for u, deps in needs.items() if unit in deps]
        unit = max(after, key=level.get) if after else None
    print(f"{len(seconds)} units, total work {work:.0f} s, critical path {critical:.0f} s "
          f"({len(chain)} units: {' -> '.join(titles[u] for u in chain)})")
    print(f"measured wall: {results['timings']['total_seconds']:.0f} s")
    print(f"{'workers':>8} {'predicted wall s':>17} {'lower bound s':>14} {'speed-up vs 1':>14}")
    rows = []
    one = list_schedule(seconds, needs, cpus, 1)
    for w in args.workers:
        wall = list_schedule(seconds, needs, cpus, w)
        bound = max(critical, work / w)
        rows.append({"workers": w, "predicted_wall_seconds": round(wall, 1), "lower_bound_seconds": round(bound, 1),
                     "speedup": round(one / wall, 2)})
        print(f"{w:>8} {wall:>17.0f} {bound:>14.0f} {one / wall:>14.2f}")
    emit(args.json_path, {"results": str(args.results), "units": len(seconds), "work_seconds": round(work, 1),
                          "critical_path_seconds": round(critical, 1), "critical_path": chain,
                          "measured_wall_seconds": results["timings"]["total_seconds"], "schedule": rows})


if __name__ == "__main__":
    main()
