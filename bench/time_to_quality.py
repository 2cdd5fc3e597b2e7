"""Time to quality: the original training recipe of a victim and a faster one, side by side on Amazon Beauty.

    python bench/time_to_quality.py [--victim sasrec] [--threads 2] [--recipes original,default,p5=fast]
                                    [--set fast.negatives=2048 ...]

Each recipe trains in its own subprocess (its own peak memory), one after the other, with the
same seed and split. For each: seconds per epoch, epochs run, best epoch, wall seconds to the end
of the best epoch and in all, test HR@10 / NDCG@10 over every test user (full ranking,
leave-one-out) with 95% bootstrap intervals, the paired difference against the first recipe, and
peak resident memory. ``original`` pins the recipe every Beauty number in docs/results/ before
2026-12-05 was trained with, so the comparison stays meaningful if the victims' defaults change.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, base_parser, beauty, emit, peak_rss_mib

ORIGINAL = {"loss": "ce", "batch_size": 128, "lr": 1e-3, "eval_every": 1, "valid_users": 0, "patience": 5}
FAST = {"loss": "sampled", "negatives": 2048, "negative_sampler": "popularity", "sampler_power": 1.0,
        "batch_size": 128, "lr": 1e-3, "valid_users": 4096, "eval_every": 1, "patience": 5}
RECIPES = {"original": ORIGINAL, "fast": FAST, "default": {}}  # default: the victim's own declared settings


def parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def recipes_from(args) -> dict[str, dict]:
    chosen = {}
    for entry in args.recipes.split(","):
        name, _, base = entry.partition("=")  # "p5=fast": a recipe named p5 that starts as a copy of fast
        if (base or name) not in RECIPES:
            sys.exit(f"--recipes {entry}: unknown recipe '{base or name}' (one of {', '.join(RECIPES)}, or NEW=BASE)")
        chosen[name] = dict(RECIPES[base or name])
    for item in args.set:
        key, _, value = item.partition("=")
        name, _, field = key.partition(".")
        if name not in chosen or not field or not value:
            sys.exit(f"--set {item}: expected RECIPE.FIELD=VALUE with RECIPE one of {', '.join(chosen)}")
        chosen[name][field] = parse_value(value)
    return chosen


def train_one(args) -> None:
    import numpy as np

    from redteam.environment import configure_torch
    from redteam.evaluation import ranking_values
    from redteam.registry import resolve

    configure_torch(args.threads)
    dataset, split = beauty(args)
    victim = resolve("victims", args.victim)(**json.loads(args.child_recipe))

    def progress(epoch: int, total: int, metrics: dict) -> None:
        print(f"  epoch {epoch}: loss {metrics['loss']:.4f}, valid NDCG@10 {metrics.get('valid_ndcg@10', float('nan')):.4f}, "
              f"{metrics['seconds']:.1f} s", file=sys.stderr, flush=True)

    started = time.perf_counter()
    report = victim.fit(split.train, (split.valid_histories(), split.valid_targets()), n_items=dataset.n_items,
                        seed=args.seed, progress=progress)
    wall = time.perf_counter() - started
    values = ranking_values(victim.score, split.test_histories(), split.test_targets(), ks=[10])
    np.savez(args.child_out, **{k: np.asarray(v) for k, v in values.items()})
    to_best = sum(h["epoch_seconds"] for h in report.history[: report.best_epoch])
    print(json.dumps({
        "epochs_run": report.epochs_run, "best_epoch": report.best_epoch,
        "seconds_per_epoch": round(wall / max(1, report.epochs_run), 2),
        "seconds_to_best": round(to_best, 1), "wall_seconds": round(wall, 1),
        "peak_rss_mib": round(peak_rss_mib()), "threads": args.threads,
    }), flush=True)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--victim", default="sasrec")
    parser.add_argument("--recipes", default="original,fast", help="comma-separated names: original, fast, default (the victim's declared settings), or NEW=BASE (a copy of BASE to change with --set)")
    parser.add_argument("--set", action="append", default=[], metavar="RECIPE.FIELD=VALUE", help="change one setting of a recipe")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--child-recipe", help=argparse_hidden())
    parser.add_argument("--child-out", help=argparse_hidden())
    args = parser.parse_args()
    if args.child_recipe:
        train_one(args)
        return

    import numpy as np

    from redteam.metrics_bootstrap import bootstrap_ci, paired_bootstrap_diff

    recipes = recipes_from(args)
    rows, values = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, recipe in recipes.items():
            out = Path(tmp) / f"{name}.npz"
            cmd = [sys.executable, __file__, "--victim", args.victim, "--threads", str(args.threads), "--seed", str(args.seed),
                   "--child-recipe", json.dumps(recipe), "--child-out", str(out)]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            print(f"{name}: {json.dumps(recipe)}", file=sys.stderr, flush=True)
            done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
            if done.returncode:
                sys.exit(f"{name}: training failed (exit {done.returncode})")
            row = {"recipe": name, "settings": recipe, **json.loads(done.stdout.strip().splitlines()[-1])}
            with np.load(out) as saved:
                values[name] = {k: saved[k] for k in saved.files}
            rows.append(row)
    reference = next(iter(recipes))
    rng = np.random.default_rng(args.seed)
    print(f"{args.victim} on Amazon Beauty, {args.threads} threads, seed {args.seed}; test users: {len(values[reference]['ndcg@10'])}")
    print(f"{'recipe':<10}{'s/epoch':>8}{'epochs':>7}{'best':>5}{'s to best':>10}{'wall s':>8}"
          f"{'HR@10 [95% CI]':>24}{'NDCG@10 [95% CI]':>26}{'NDCG@10 vs ' + reference:>30}{'peak MiB':>9}")
    for row in rows:
        v = values[row["recipe"]]
        for metric in ("hr@10", "ndcg@10"):
            row[metric] = bootstrap_ci(v[metric], rng=rng, n_resamples=args.bootstrap)
        row["ndcg@10_vs_reference"] = paired_bootstrap_diff(v["ndcg@10"], values[reference]["ndcg@10"], rng=rng,
                                                              n_resamples=args.bootstrap)
        hr, nd, diff = row["hr@10"], row["ndcg@10"], row["ndcg@10_vs_reference"]
        print(f"{row['recipe']:<10}{row['seconds_per_epoch']:>8}{row['epochs_run']:>7}{row['best_epoch']:>5}"
              f"{row['seconds_to_best']:>10}{row['wall_seconds']:>8}"
              f"{hr[0]:>8.4f} [{hr[1]:.4f}, {hr[2]:.4f}]{nd[0]:>10.4f} [{nd[1]:.4f}, {nd[2]:.4f}]"
              f"{diff[0]:>+12.4f} [{diff[1]:+.4f}, {diff[2]:+.4f}]{row['peak_rss_mib']:>9}", flush=True)
    ref_wall = rows[0]["wall_seconds"]
    for row in rows[1:]:
        print(f"{row['recipe']}: {row['wall_seconds'] / ref_wall:.2f}x the wall time of {reference}, "
              f"{row['seconds_to_best'] / max(1e-9, rows[0]['seconds_to_best']):.2f}x its time to the best epoch")
    emit(args.json_path, rows)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
