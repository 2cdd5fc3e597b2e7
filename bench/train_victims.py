"""Train every victim on Amazon Beauty and print training cost and full-ranking test accuracy.

    python bench/train_victims.py [--victims sasrec,gru4rec] [--threads 2] [--epochs N]

Each victim trains in its own subprocess (so peak memory is its own). Leave-one-out split,
full ranking over all 12,101 items, padding the only excluded id. Trained models are written
to the model cache, so later runs of Beauty scenarios with the same settings reuse them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from common import REPO, base_parser, beauty, emit, peak_rss_mib

VICTIMS = ["popularity", "sasrec", "gru4rec", "narm", "bert4rec"]


def train_one(args) -> dict:
    from redteam.cache import ModelCache
    from redteam.environment import configure_torch
    from redteam.evaluation import ranking_values
    from redteam.fitting import fit_victim
    from redteam.scenario import ComponentSpec

    configure_torch(args.threads)
    dataset, split = beauty(args)
    options = {"epochs": args.epochs} if args.epochs is not None and args.victim != "popularity" else {}
    spec = ComponentSpec(name=args.victim, **options)
    t0 = time.perf_counter()
    def progress(epoch: int, total: int, metrics: dict) -> None:
        print(f"  {args.victim} epoch {epoch}: loss {metrics['loss']:.4f}, valid NDCG@10 "
              f"{metrics.get('valid_ndcg@10', float('nan')):.4f}, {metrics['seconds']:.1f} s", file=sys.stderr, flush=True)

    victim, info, _ = fit_victim(
        spec, train=split.train, valid=(split.valid_histories(), split.valid_targets()),
        n_items=dataset.n_items, seed=args.seed, cache=ModelCache(None, read=False), progress=progress,
    )
    wall = time.perf_counter() - t0
    values = ranking_values(victim.score, split.test_histories(), split.test_targets(), ks=[10, 50])
    return {
        "victim": args.victim, "threads": args.threads, "epochs_run": info.get("epochs_run"),
        "best_epoch": info.get("best_epoch"), "seconds_per_epoch": round(info.get("seconds_per_epoch") or 0, 2),
        "wall_seconds": round(wall, 1), "test_users": len(split.eval_users),
        "hr@10": round(float(values["hr@10"].mean()), 4), "ndcg@10": round(float(values["ndcg@10"].mean()), 4),
        "hr@50": round(float(values["hr@50"].mean()), 4), "peak_rss_mib": round(peak_rss_mib()),
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--victims", default=",".join(VICTIMS))
    parser.add_argument("--epochs", type=int, help="cap on epochs (default: each victim's own, with early stopping)")
    parser.add_argument("--victim", help=argparse_hidden())
    args = parser.parse_args()
    if args.victim:
        print(json.dumps(train_one(args)), flush=True)
        return
    rows = []
    print(f"{'victim':<11}{'s/epoch':>8}{'epochs':>8}{'best':>6}{'wall s':>8}{'HR@10':>8}{'NDCG@10':>9}{'HR@50':>8}{'peak MiB':>10}")
    for name in args.victims.split(","):
        cmd = [sys.executable, __file__, "--victim", name, "--threads", str(args.threads), "--seed", str(args.seed)]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        if args.epochs is not None:
            cmd += ["--epochs", str(args.epochs)]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)  # per-epoch lines go to stderr
        if out.returncode:
            print(f"{name}: failed (exit {out.returncode})")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{r['victim']:<11}{r['seconds_per_epoch']:>8}{r['epochs_run']:>8}{r['best_epoch']:>6}{r['wall_seconds']:>8}"
              f"{r['hr@10']:>8}{r['ndcg@10']:>9}{r['hr@50']:>8}{r['peak_rss_mib']:>10}", flush=True)
    emit(args.json_path, rows)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
