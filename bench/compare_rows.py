"""Paired comparison of result rows inside one run: is one attack (or defense) really better?

    python bench/compare_rows.py RUN_DIR --metric agreement@10 --reference extraction.fewshot

Reads ``per_user.npz`` (per-user values, one row per seed) and ``results.json`` from a run
directory. Each user's values are averaged over seeds, then the reference row is compared with
every other row holding the metric: mean difference, 95% paired-bootstrap interval, p-value.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from redteam.metrics import paired_bootstrap_diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--metric", default="agreement@10")
    parser.add_argument("--reference", required=True, help="attack label (or defense, with --by defense) of the reference row")
    parser.add_argument("--by", choices=["attack", "defense"], default="attack")
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()

    results = json.loads((args.run_dir / "results.json").read_text())
    arrays = np.load(args.run_dir / "per_user.npz", allow_pickle=False)
    field = 1 if args.by == "attack" else 2
    found = {key.split("|")[field]: arrays[key].mean(axis=0) for key in arrays.files if key.endswith(f"|{args.metric}")}
    if args.reference not in found:
        raise SystemExit(f"no row '{args.reference}' with {args.metric} in {args.run_dir}; rows: {', '.join(found)}")
    ref = found[args.reference]
    rng = np.random.default_rng(0)
    print(f"{results['scenario']['name']}: {args.metric}, {ref.size} users, paired bootstrap ({args.resamples} resamples)")
    print(f"{'row':<28}{'mean':>9}{'ref - row':>11}{'95% CI':>22}{'p':>9}")
    print(f"{args.reference:<28}{ref.mean():>9.4f}")
    for name, values in found.items():
        if name == args.reference:
            continue
        diff, low, high, p = paired_bootstrap_diff(ref, values, rng=rng, n_resamples=args.resamples)
        print(f"{name:<28}{values.mean():>9.4f}{diff:>11.4f}{f'[{low:.4f}, {high:.4f}]':>22}{p:>9.4f}")


if __name__ == "__main__":
    main()
