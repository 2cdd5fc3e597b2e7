"""The Ray executor: a scenario's units as Ray tasks, on a local Ray instance or an existing cluster.

``runtime: {executor: ray}`` starts a local Ray instance with ``runtime.workers`` CPUs (default:
this machine's) and stops it at the end; ``runtime.address`` joins an existing cluster instead
(``auto``, or ``HOST:PORT`` of its head) and leaves it running. Each unit is a task asking for
``runtime.unit_cpus`` CPUs and running torch with that many threads; attack units wait for their
victim unit. Every worker must see the same cache folder (``runtime.cache_dir`` or
``REDTEAM_CACHE_DIR``, resolved to an absolute path here): trained victims, HTTP transcripts and
the unit records live there. Workers load the data set themselves: the driver's
``REDTEAM_DATA_DIR`` and ``REDTEAM_CACHE_DIR`` (downloaded data sets), made absolute, go with every
task, since the nodes of an existing cluster do not share the driver's environment; those
folders, like the cache, must be mounted at the same path on every node. A unit whose record is already there (an interrupted sweep
run again with the same scenario and code) is not run again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from redteam.errors import ConfigError, RedteamError
from redteam.executors.unit_run import RECORD, STARTED, read_record, run_unit
from redteam.executors.units import Plan, Unit


def source_digest() -> str:
    """A hash of every source file of the package and its plugins: a record from other code is not reused."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for package in ("redteam", "attacks", "defenses", "victims"):
        for path in sorted((root / package).rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


FORWARDED_ENV = ("REDTEAM_DATA_DIR", "REDTEAM_CACHE_DIR")


def task_runtime_env() -> dict[str, Any]:
    """Ray's ``runtime_env`` for each task: the driver's data and cache folders as absolute paths
    (not resolved: a symlink the user mounted on every node stays the path the workers use)."""
    env = {name: str(Path(os.environ[name]).expanduser().absolute()) for name in FORWARDED_ENV if os.environ.get(name)}
    return {"env_vars": env} if env else {}


def unit_folder(root: Path, scenario: Any, unit: Unit, digest: str) -> Path:
    key = hashlib.sha256(f"{scenario.fingerprint()}|{digest}|{unit.id}".encode()).hexdigest()[:16]
    return root / "units" / f"{scenario.name}-{scenario.fingerprint()}" / f"{unit.id}-{key}"


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("runtime.executor: ray is not installed (pip install 'redteam[ray]')") from None
    return ray


def run_plan(scenario: Any, plan: Plan, *, cache_root: Path, reporter: Any, events: Any) -> list[dict[str, Any]]:
    """Run every unit of ``plan`` that has no record yet; return all records, in plan order."""
    ray = _ray()
    runtime = scenario.runtime
    digest = source_digest()
    folders = {u.id: unit_folder(cache_root, scenario, u, digest) for u in plan.units}
    # only the keys the scenario set: a worker validates it again, and some checks (synthetic-only
    # dataset options) look at which keys were given
    raw = scenario.model_dump(mode="json", exclude_unset=True)
    raw["runtime"] = {**raw.get("runtime", {}), "cache_dir": str(cache_root), "executor": "serial", "threads": runtime.unit_cpus}
    resumed = {u.id for u in plan.units if (folders[u.id] / RECORD).exists()}
    started_here = not ray.is_initialized()
    if started_here:
        init = {"address": runtime.address} if runtime.address else {"num_cpus": runtime.workers}
        ray.init(**init, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        task = ray.remote(run_unit)
        runtime_env = task_runtime_env() or None
        refs: dict[str, Any] = {}
        for unit in plan.units:
            if unit.id in resumed:
                continue
            waited = [refs[n] for n in unit.needs if n in refs]
            refs[unit.id] = task.options(num_cpus=unit.cpus, name=unit.id, max_retries=0, runtime_env=runtime_env).remote(
                raw, asdict(unit), str(folders[unit.id]), [str(folders[n]) for n in unit.needs], *waited)
        events.emit("units_planned", units=len(plan.units), resumed=len(resumed), submitted=len(refs))
        _wait(ray, refs, plan, folders, resumed, reporter, events)
    finally:
        if started_here:
            ray.shutdown()
    records = [read_record(folders[u.id]) for u in plan.units]
    missing = [u.id for u, r in zip(plan.units, records) if r is None]
    if missing:
        raise RuntimeError(f"units finished without a record: {', '.join(missing)}")
    return records


def _wait(ray: Any, refs: dict[str, Any], plan: Plan, folders: dict[str, Path], resumed: set[str], reporter: Any,
          events: Any) -> None:
    by_ref = {ref: unit_id for unit_id, ref in refs.items()}
    pending = list(refs.values())
    done = set(resumed)
    with reporter.stage("units on ray", total=len(plan.units)) as stage:
        stage.update(completed=len(done), status=_status(plan, folders, done))
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in ready:
                try:
                    summary = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, RedteamError):
                        raise cause from None
                    raise RuntimeError(f"unit {by_ref[ref]} failed: {cause or exc}") from exc
                done.add(summary["unit"])
                events.emit("unit_finished", unit=summary["unit"], node=summary["node"]["node_id"],
                            seconds=round(summary["seconds"], 2))
            stage.update(completed=len(done), status=_status(plan, folders, done))


def _status(plan: Plan, folders: dict[str, Path], done: set[str]) -> str:
    """``done / running per node / left``, from the markers the workers write."""
    running: dict[str, int] = {}
    for unit in plan.units:
        marker = folders[unit.id] / STARTED
        if unit.id not in done and marker.exists():
            try:
                node = json.loads(marker.read_text())
            except (OSError, ValueError):
                continue
            name = f"{node.get('host', '?')}:{node.get('node_id', '?')[:6]}"
            running[name] = running.get(name, 0) + 1
    left = len(plan.units) - len(done) - sum(running.values())
    where = ", ".join(f"{n} {c}" for n, c in sorted(running.items())) or "none"
    return f"{len(done)} done · running: {where} · {left} left"
