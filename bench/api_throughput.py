"""Black-box API throughput: top-100 queries per second for SASRec on Amazon Beauty histories.

    python bench/api_throughput.py [--threads 2] [--queries 20000]

Uses the cached Beauty SASRec (trained by bench/train_victims.py with the same seed), or trains
it first. Queries are real users' test histories, asked in batches of several sizes.
"""

from __future__ import annotations

import time

from common import base_parser, beauty, emit


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--batches", default="1,64,512")
    args = parser.parse_args()

    from redteam.api import BlackBoxAPI
    from redteam.cache import ModelCache
    from redteam.environment import configure_torch
    from redteam.fitting import fit_victim
    from redteam.scenario import ComponentSpec

    configure_torch(args.threads)
    dataset, split = beauty(args)
    victim, _, cached = fit_victim(
        ComponentSpec(name="sasrec"), train=split.train, valid=(split.valid_histories(), split.valid_targets()),
        n_items=dataset.n_items, seed=args.seed, cache=ModelCache(None),
    )
    histories = split.test_histories()
    rows = []
    print(f"SASRec on Beauty ({'cached' if cached else 'trained now'}), {args.threads} threads, top-100, {dataset.n_items} items")
    print(f"{'batch':>6}{'queries':>9}{'seconds':>9}{'queries/s':>11}")
    for batch in map(int, args.batches.split(",")):
        n = min(args.queries, len(histories)) if batch > 1 else min(2000, args.queries)
        api = BlackBoxAPI(victim.score, n_items=dataset.n_items, topk=100, batch_size=max(batch, 1), log_queries=False)
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            api.topk(histories[start : start + batch])
        secs = time.perf_counter() - t0
        rows.append({"batch": batch, "queries": api.queries_used, "seconds": round(secs, 2), "qps": round(api.queries_used / secs)})
        print(f"{batch:>6}{api.queries_used:>9}{secs:>9.2f}{api.queries_used / secs:>11.0f}", flush=True)
    emit(args.json_path, rows)


if __name__ == "__main__":
    main()
