"""Where an attack meets its victim: in this process, or over HTTP in a child process.

``api: {transport: inprocess}`` (the default) puts the victim, and a serving defense wrapping it,
in the attacker's own process. ``api: {transport: http}`` serves the victim (and the defense)
with ``redteam serve`` in a child process on a loopback port for each attack, and hands the
attack an HTTP client: the same answers for the same histories, now across a process boundary.
A remote victim (``victims: [{name: http, ...}]``) is always reached over HTTP.

Over HTTP, each attack keeps a transcript (the client's answer journal and the server's ledger)
under ``<cache dir>/transcripts/<run fingerprint>/``: a run started again after a crash or an
interrupt replays the answers it already bought instead of buying them again.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from redteam.scenario import ComponentSpec
from redteam.seeding import numpy_rng
from redteam.stages.context import RunContext, Target


def is_remote(target: Target) -> bool:
    return target.remote is not None


@contextmanager
def attack_recommender(ctx: RunContext, target: Target, defense_spec: ComponentSpec, defense: Any | None, *,
                       attack_label: str, attack_seed: int) -> Iterator[Any]:
    """The recommender one attack (with one attacker seed) queries, for as long as it queries.

    A serving defense draws from the run seed, its own name and the attacker seed, never from
    the row labels: two rows that differ in one switch meet the same defense draws (common
    random numbers). The transcript folder is per row."""
    folder_path = [defense_spec.label(), attack_label, attack_seed]
    draws = serving_draws(defense_spec, attack_seed)
    if is_remote(target):
        folder = transcript_dir(ctx, target, *folder_path)
        with target.remote.recommender(journal=folder / "journal.sqlite", seed=attack_seed) as remote:
            yield (remote if defense is None  # a serving defense is then a proxy in front of the remote service
                   else defense.wrap(remote, numpy_rng(target.seed, "serving-defense", *draws)))
    elif ctx.scenario.api.transport == "inprocess":
        yield (target.recommender if defense is None
               else defense.wrap(target.recommender, numpy_rng(target.seed, "serving-defense", *draws)))
    else:
        with served_over_http(ctx, target, [] if defense is None else [defense_spec], folder_path, draws) as remote:
            yield remote


@contextmanager
def served_over_http(ctx: RunContext, target: Target, defenses: list[ComponentSpec],
                     folder_path: list[str | int], draws: list[str | int]) -> Iterator[Any]:
    """``redteam serve`` for this victim in a child process, and a client for it; transcripts go
    under ``folder_path``, the defenses draw from ``draws`` (see :func:`serving_draws`)."""
    from redteam.serving.http_client import HttpRecommender, HttpSettings
    from redteam.serving.launcher import ServerProcess
    from redteam.serving.serve_settings import ServeSettings

    api = ctx.scenario.api
    folder = transcript_dir(ctx, target, *folder_path)
    settings = ServeSettings(port=0, topk=api.topk, expose_scores=api.expose_scores, exclude_history=api.exclude_history,
                             batch_size=api.batch_size, budget=api.budget, max_batch=api.http_batch_size,
                             ledger=folder / "ledger.sqlite", seed=target.seed, seed_path=draws, defenses=defenses)
    with ServerProcess(saved_model(ctx, target), settings, threads=ctx.scenario.runtime.threads) as server:
        client = HttpSettings(url=f"{server.url}/v1/recommend", headers={"Authorization": f"Bearer {server.key}"},
                              n_items=ctx.dataset.n_items, max_k=api.topk, batch_size=api.http_batch_size,
                              concurrency=1, scores_path="$.scores" if api.expose_scores else None)
        # the server's port changes from run to run: the journal is keyed by what it serves instead
        same_answers = json.dumps(settings.model_dump(mode="json", exclude={"ledger", "port"}), sort_keys=True)
        with HttpRecommender(client, journal=folder / "journal.sqlite", seed=int(folder_path[-1]),
                             journal_fingerprint=same_answers) as remote:
            yield remote


def serving_draws(defense_spec: ComponentSpec, attack_seed: int) -> list[str | int]:
    """The names after the run seed that key a serving defense's random draws for one attacker seed."""
    return [defense_spec.name, attack_seed]


def saved_model(ctx: RunContext, target: Target) -> Path:
    """The victim's weights in a folder ``redteam serve`` can load (written once per victim and seed)."""
    key = ("saved-model", target.label, target.seed, target.variant)
    if key not in ctx.scratch:
        folder = Path(ctx.services.enter_context(tempfile.TemporaryDirectory(prefix="redteam-victim-"))) / "model"
        target.model.save(folder)
        ctx.scratch[key] = folder
    return ctx.scratch[key]


def transcript_dir(ctx: RunContext, target: Target, *names: str | int) -> Path:
    """Where one attack's transcript lives: in the cache (kept for a resumed run) or, with the cache
    off, in a folder removed at the end of the run."""
    return transcript_folder(ctx, target.label, target.seed, *names)


def transcript_folder(ctx: RunContext, label: str, seed: int, *names: str | int) -> Path:
    leaf = "-".join([label, f"seed{seed}", *map(str, names)])
    if ctx.cache.enabled and ctx.cache.read:
        root = ctx.cache.root.parent / "transcripts" / ctx.scenario.fingerprint()
    else:
        if ("transcripts",) not in ctx.scratch:
            ctx.scratch[("transcripts",)] = Path(ctx.services.enter_context(
                tempfile.TemporaryDirectory(prefix="redteam-transcripts-")))
        root = ctx.scratch[("transcripts",)]
    folder = root / leaf
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def metered_endpoint(ctx: RunContext, served: Any, *, budget: Callable[[int | None], int] | None = None) -> Any:
    """A fresh metered endpoint (the scenario's budget and score exposure) in front of ``served``;
    its top-k is the scenario's, or less when a serving defense returns shorter lists; its budget
    the scenario's, or what ``budget`` (a per-key quota) leaves of it."""
    from redteam.serving.metered import MeteredEndpoint

    a = ctx.scenario.api
    return MeteredEndpoint(served, topk=min(a.topk, served.max_k), budget=a.budget if budget is None else budget(a.budget),
                           expose_scores=a.expose_scores)


def transport_info(served: Any) -> dict[str, Any]:
    """How an attack's queries travelled, for its row's info: live and replayed queries over HTTP."""
    sent = getattr(served, "queries_sent", None)
    if sent is None:
        return {}
    return {"transport": "http", "queries_sent_live": sent, "queries_replayed": served.queries_replayed,
            "queries_from_journal": served.queries_from_journal,
            "http_requests": served.requests_sent, "http_retries": served.retries}
