"""One unit of a scenario, run in a worker against the shared cache, and its record on disk.

The worker rebuilds the run's context from the scenario (data, split, evaluation users: all
drawn from the scenario's seeds), loads or trains the victim through the model cache, and runs
the unit's steps with the same stage code as a serial run. What each step adds to the result
rows, curves, events and artifacts is recorded as a difference (:class:`StepRecorder`) and
written under the unit's folder as ``record.json`` + ``arrays.npz`` (+ ``artifacts/``), JSON and
numpy only: a record is never unpickled. ``record.json`` is written last, by an atomic rename, so
its presence means the unit finished; a resumed sweep skips such units.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from redteam.executors.units import Step, Unit

RECORD = "record.json"
STARTED = "started.json"


def _snapshot(rows: Any) -> dict[tuple, tuple[dict[str, int], dict[str, int], dict[str, Any]]]:
    return {key: ({m: len(a) for m, a in row.per_seed.items()}, {m: len(a) for m, a in row.layout.items()},
                  {k: len(v) if isinstance(v, list) else None for k, v in row.info.items()})
            for key, row in rows.rows.items()}


class StepRecorder:
    """Records what each step adds to the context's rows, curves, events and artifacts."""

    def __init__(self, ctx: Any, unit_dir: Path) -> None:
        self.ctx = ctx
        self.unit_dir = unit_dir
        self.arrays: dict[str, np.ndarray] = {}
        self.steps: list[dict[str, Any]] = []
        self.products: dict[str, list[str]] = {}  # step index -> array names of its core's product

    def add_array(self, values: np.ndarray) -> str:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.asarray(values)
        return name

    @contextmanager
    def step(self, step: Step) -> Iterator[None]:
        ctx = self.ctx
        before = _snapshot(ctx.rows)
        curves, events, artifacts = len(ctx.curves), len(ctx.events.records), set(ctx.artifacts)
        yield
        rows = []
        for key, row in ctx.rows.rows.items():
            seen_metrics, seen_layout, seen_info = before.get(key, ({}, {}, {}))
            entry: dict[str, Any] = {"key": list(key), "new": key not in before, "metrics": {}, "repetitions": {},
                                     "layout": {}, "info_lists": {}, "info_set": {}}
            for metric, arrays in row.per_seed.items():
                if len(arrays) > seen_metrics.get(metric, 0):
                    entry["metrics"][metric] = [self.add_array(a) for a in arrays[seen_metrics.get(metric, 0):]]
                    entry["repetitions"][metric] = row.repetitions.get(metric, [])[seen_metrics.get(metric, 0):]
            for metric, pairs in row.layout.items():
                if len(pairs) > seen_layout.get(metric, 0):
                    entry["layout"][metric] = [[self.add_array(g), self.add_array(c)] for g, c in pairs[seen_layout.get(metric, 0):]]
            for name, value in row.info.items():
                if isinstance(value, list) and len(value) > (seen_info.get(name) or 0):
                    entry["info_lists"][name] = value[seen_info.get(name) or 0:]
                elif not isinstance(value, list) and name not in seen_info:
                    entry["info_set"][name] = value
            if entry["new"] or any(entry[k] for k in ("metrics", "layout", "info_lists", "info_set")):
                rows.append(entry)
        added = [rel for rel in ctx.artifacts if rel not in artifacts]
        for rel in added:
            ctx.artifacts[rel](self.unit_dir / "artifacts" / rel)
        self.steps.append({**asdict(step), "rows": rows, "curves": ctx.curves[curves:],
                           "events": ctx.events.records[events:], "artifacts": added})

    def write(self, unit: Unit, *, seconds: float, node: dict[str, str]) -> None:
        from redteam.results import json_default

        np.savez(self.unit_dir / "arrays.npz", **self.arrays)
        record = {"unit": unit.id, "title": unit.title, "seconds": round(seconds, 2), "node": node, "steps": self.steps,
                  "products": self.products}
        tmp = self.unit_dir / f".{RECORD}.tmp"
        tmp.write_text(json.dumps(record, default=json_default))
        tmp.rename(self.unit_dir / RECORD)


def node_identity() -> dict[str, str]:
    """The Ray node this process runs on (its id and host), or this host when Ray is not running."""
    try:
        import ray

        node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except ImportError:
        node_id = ""
    return {"node_id": node_id or f"local-{platform.node()}", "host": socket.gethostname(), "pid": str(os.getpid())}


def unit_from_dict(data: dict[str, Any]) -> Unit:
    steps = tuple(Step(**s) for s in data["steps"])
    return Unit(**{**data, "steps": steps, "needs": tuple(data["needs"])})


def run_unit(scenario_raw: dict[str, Any], unit_data: dict[str, Any], unit_dir: str, need_dirs: list[str],
             *_waited: Any) -> dict[str, Any]:
    """Run one unit (the Ray task body). ``need_dirs``: the folders of the units it needs (a defense
    unit reads its attack's product there); ``_waited``: their results, passed only so that Ray
    starts this unit after them."""
    from redteam.environment import configure_torch
    from redteam.events import EventLog
    from redteam.progress import Reporter
    from redteam.executors.units import stage_groups
    from redteam.stages.setup import load_context, run_attack
    from redteam.scenario import build_scenario
    from redteam.stages.victim import train_victim

    unit = unit_from_dict(unit_data)
    folder = Path(unit_dir)
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished earlier try
    folder.mkdir(parents=True)
    node = node_identity()
    (folder / STARTED).write_text(json.dumps(node))
    started = time.perf_counter()
    configure_torch(unit.cpus)
    scenario = build_scenario(scenario_raw, source="unit")
    ctx = load_context(scenario, reporter=Reporter(None, enabled=False), events=EventLog(), use_cache=True)
    by_attack = {}
    for cls, indices in stage_groups(scenario):
        stage = cls(ctx)
        stage.prepare()
        by_attack.update(dict.fromkeys(indices, stage))
    recorder = StepRecorder(ctx, folder)
    spec = scenario.victims[unit.victim]
    with ctx.services:
        if unit.is_victim:
            with recorder.step(unit.steps[0]):
                train_victim(ctx, spec, unit.run_seed)
        else:
            target = train_victim(ctx, spec, unit.run_seed)  # from the cache its victim unit filled
            for step in unit.steps:
                stage, attack = by_attack[step.attack], scenario.attacks[step.attack]
                with recorder.step(step):
                    if step.defense >= 0:
                        product = read_product(need_dirs, step)
                        run_attack(stage, target, attack, step.attack_seed,
                                   part=lambda: stage.defend(target, attack, step.attack_seed,
                                                             scenario.defenses[step.defense], product))
                    elif step.core_only:
                        recorder.products[str(step.index)] = [recorder.add_array(a) for a in run_attack(
                            stage, target, attack, step.attack_seed,
                            part=lambda: stage.attack_core(target, attack, step.attack_seed))]
                    else:
                        run_attack(stage, target, attack, step.attack_seed)
    seconds = time.perf_counter() - started
    recorder.write(unit, seconds=seconds, node=node)
    return {"unit": unit.id, "node": node, "seconds": seconds}


def read_product(need_dirs: list[str], step: Step) -> list[np.ndarray]:
    """The product the core of ``step``'s attack left in the record of one of the needed units."""
    for folder in need_dirs:
        record = read_record(Path(folder))
        if record is not None and str(step.index) in record.get("products", {}):
            return [record["arrays"][name] for name in record["products"][str(step.index)]]
    raise RuntimeError(f"no unit among {need_dirs} recorded the product of step {step.index}")


def read_record(unit_dir: Path) -> dict[str, Any] | None:
    """A finished unit's record with its arrays loaded, or None when the unit has not finished."""
    path = unit_dir / RECORD
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    with np.load(unit_dir / "arrays.npz", allow_pickle=False) as arrays:
        loaded = {name: arrays[name] for name in arrays.files}
    record["arrays"] = loaded
    record["dir"] = str(unit_dir)
    return record
