"""HTTP serving load: `redteam serve` in a child process vs the in-process API, same victim, same run.

    python bench/serve_throughput.py [--seconds 8] [--requests 400] [--accounting 100000]

The victim is the SASRec of scenarios/extraction_fewshot.yaml (embedded synthetic data, 2,000 users,
1,000 items; cached after the first run). For batch 1 and 256 and 1, 8, 32 concurrent clients it
sends top-100 queries (real test histories) until `--requests` requests or `--seconds` seconds,
whichever comes first, and reports queries/s and p50/p99 latency per request, first in process
(threads calling the metered endpoint), then over HTTP (an asyncio client on loopback). Every HTTP
request must come back answered or refused with a status. Then `--accounting` queries from 8 keys
at once (batch 100, 32 clients) and a check that per key, queries counted = logged = answered.
Server and clients share the machine's cores; run nothing else meanwhile.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from common import base_parser, emit


def victim_and_histories(threads: int):
    from redteam.cache import ModelCache
    from redteam.data.dataset import LeaveOneOutSplit
    from redteam.data.registry import DatasetConfig, load_dataset
    from redteam.environment import configure_torch
    from redteam.fitting import fit_victim
    from redteam.scenario import ComponentSpec

    configure_torch(threads)
    dataset = load_dataset(DatasetConfig(name="synthetic", users=2000, items=1000), seed=7)
    split = LeaveOneOutSplit.of(dataset)
    victim, _, cached = fit_victim(ComponentSpec(name="sasrec", epochs=30, patience=3), train=split.train,
                                   valid=(split.valid_histories(), split.valid_targets()), n_items=dataset.n_items,
                                   seed=7, cache=ModelCache(None))
    return victim, split.test_histories(), cached


def summary(latencies: list[float], queries: int, seconds: float, refused: int, lost: int) -> dict:
    lat = np.asarray(latencies) * 1000
    return {"queries": queries, "seconds": round(seconds, 2), "qps": round(queries / seconds, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
            "requests": len(latencies), "refused": refused, "lost": lost}


def in_process(victim, histories, batch: int, clients: int, max_requests: int, seconds: float) -> dict:
    from redteam.api import BlackBoxAPI

    api = BlackBoxAPI(victim.score, n_items=victim.n_items, topk=100)
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(w: int) -> None:
        i = w
        while time.perf_counter() < deadline:
            with lock:
                if len(latencies) >= max_requests:
                    return
            start = (i * batch) % (len(histories) - batch)
            t0 = time.perf_counter()
            api.topk(histories[start : start + batch], caller=f"c{w % 8}")
            with lock:
                latencies.append(time.perf_counter() - t0)
            i += clients

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return summary(latencies, sum(api.usage.values()), time.perf_counter() - t0, 0, 0)


async def over_http(url: str, keys: dict[str, str], histories, batch: int, clients: int, max_requests: int,
                    seconds: float) -> dict:
    import httpx

    bodies = [[h.tolist() for h in histories[s : s + batch]] for s in range(0, len(histories) - batch, max(batch, 7))]
    names = list(keys)
    latencies: list[float] = []
    counts = {"queries": 0, "refused": 0, "lost": 0, "sent": 0}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def worker(w: int) -> None:
            i = w
            headers = {"Authorization": f"Bearer {keys[names[w % len(names)]]}"}
            while time.perf_counter() < deadline and counts["sent"] < max_requests:
                counts["sent"] += 1
                t0 = time.perf_counter()
                try:
                    resp = await client.post(f"{url}/v1/recommend", json={"histories": bodies[i % len(bodies)], "k": 100},
                                             headers=headers)
                except httpx.HTTPError:
                    counts["lost"] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                if resp.status_code == 200:
                    counts["queries"] += len(resp.json()["items"])
                else:
                    counts["refused"] += 1
                i += clients

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        elapsed = time.perf_counter() - t0
    return summary(latencies, counts["queries"], elapsed, counts["refused"], counts["lost"])


async def accounting(url: str, keys: dict[str, str], histories, total: int, batch: int = 100, clients: int = 32) -> dict:
    import httpx

    names = list(keys)
    answered = dict.fromkeys(names, 0)
    per_client = -(-total // (clients * batch))  # at least `total` queries in all
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as client:
        async def worker(w: int) -> None:
            name = names[w % len(names)]
            for r in range(per_client):
                start = ((w * per_client + r) * batch) % (len(histories) - batch)
                resp = await client.post(f"{url}/v1/recommend", json={
                    "histories": [h.tolist() for h in histories[start : start + batch]], "k": 10},
                    headers={"Authorization": f"Bearer {keys[name]}"})
                assert resp.status_code == 200, resp.text
                answered[name] += len(resp.json()["items"])
        await asyncio.gather(*(worker(w) for w in range(clients)))
    return answered


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="longest time per configuration")
    parser.add_argument("--requests", type=int, default=400, help="most requests per configuration")
    parser.add_argument("--accounting", type=int, default=100_000, help="queries of the 8-key accounting check")
    parser.add_argument("--server-threads", type=int, default=1, help="torch threads of the server process")
    args = parser.parse_args()

    from redteam.serving.launcher import ServerProcess
    from redteam.serving.ledger import Ledger
    from redteam.serving.serve_settings import ServeSettings

    victim, histories, cached = victim_and_histories(args.threads)
    print(f"SASRec, synthetic 2000x1000 ({'cached' if cached else 'trained now'}); in-process {args.threads} threads, "
          f"server {args.server_threads}; top-100; <= {args.requests} requests or {args.seconds:g} s per row")
    keys = {f"key{i}": secrets.token_urlsafe(24) for i in range(8)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        victim.save(model_dir)
        ledger_path = Path(tmp) / "ledger.sqlite"
        settings = ServeSettings(topk=100, ledger=ledger_path, max_batch=1024)
        with ServerProcess(model_dir, settings, keys=keys, threads=args.server_threads) as server:
            print(f"{'batch':>6}{'clients':>8}{'where':>11}{'queries/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'requests':>9}"
                  f"{'refused':>8}{'lost':>5}{'http/inproc':>12}")
            for batch in (1, 256):
                for clients in (1, 8, 32):
                    local = in_process(victim, histories, batch, clients, args.requests, args.seconds)
                    remote = asyncio.run(over_http(server.url, keys, histories, batch, clients, args.requests, args.seconds))
                    ratio = remote["qps"] / local["qps"]
                    for where, r in (("inprocess", local), ("http", remote)):
                        print(f"{batch:>6}{clients:>8}{where:>11}{r['qps']:>11.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                              f"{r['requests']:>9}{r['refused']:>8}{r['lost']:>5}"
                              f"{(f'{ratio:.2f}' if where == 'http' else ''):>12}", flush=True)
                        rows.append({"batch": batch, "clients": clients, "where": where, **r})
            before = Ledger(ledger_path).counts()
            t0 = time.perf_counter()
            answered = asyncio.run(accounting(server.url, keys, histories, args.accounting))
            secs = time.perf_counter() - t0
        after = Ledger(ledger_path).counts()
        exact = all(after[n]["used"] - before.get(n, {}).get("used", 0) == answered[n]
                    and after[n]["logged"] - before.get(n, {}).get("logged", 0) == answered[n] for n in keys)
        total = sum(answered.values())
        print(f"accounting: {total} queries from 8 keys in {secs:.1f} s ({total / secs:.0f}/s); per key counted = logged = "
              f"answered: {'exact' if exact else 'MISMATCH'} ({', '.join(f'{n} {answered[n]}' for n in keys)})")
        rows.append({"accounting": {"queries": total, "seconds": round(secs, 1), "exact": exact, "per_key": answered,
                                    "ledger": after}})
    emit(args.json_path, rows)
    if not exact:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
