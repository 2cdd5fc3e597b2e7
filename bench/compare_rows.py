"""Paired comparison of result rows inside one run: is one attack (or defense) really better?

    python bench/compare_rows.py RUN_DIR --metric agreement@10 --reference extraction.fewshot
    python bench/compare_rows.py RUN_DIR --metric target_hr@50 --reference 'sasrec|poisoning.random|none'

Reads ``per_user.npz`` (per-user values, one row per seed) and ``results.json`` from a run
directory. Each unit's values are averaged over seeds, then the reference row is compared with
every other row holding the metric: mean difference and 95% paired-bootstrap interval. Per-user
metrics resample users (with a p-value); (target, user) metrics such as ``target_hr@50`` resample
users as clusters, each bringing all its targets, and macro-average over targets. A row is named by
its attack (``--by attack``), its defense (``--by defense``), or in full as ``victim|attack|defense``;
a short name that matches several rows is refused with the full names to choose from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from redteam.metrics import bootstrap_ci_grouped, paired_bootstrap_diff


def rows_with(arrays: np.lib.npyio.NpzFile, metric: str) -> dict[str, str]:
    """Full row name ``victim|attack|defense`` -> its key in ``per_user.npz``."""
    return {key.rsplit("|", 1)[0]: key for key in arrays.files if key.endswith(f"|{metric}")}


def resolve(name: str, rows: dict[str, str], by: str) -> str:
    """The one full row name that ``name`` means (a full name, or an attack / defense label)."""
    if name in rows:
        return name
    field = 1 if by == "attack" else 2
    matches = [full for full in rows if full.split("|")[field] == name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SystemExit(f"no row '{name}' holds this metric; rows: {', '.join(rows)}")
    raise SystemExit(f"'{name}' names {len(matches)} rows ({', '.join(matches)}): give one in full")


def compare(ref: str, other: str, arrays, rng: np.random.Generator, resamples: int) -> tuple[float, float, float, float]:
    a, b = arrays[ref].mean(axis=0), arrays[other].mean(axis=0)
    if a.shape != b.shape:
        raise SystemExit(f"{ref} and {other} were measured on different units; they cannot be paired")
    if f"{ref}#groups" in arrays.files:
        groups, clusters = arrays[f"{ref}#groups"], arrays[f"{ref}#clusters"]
        if not (np.array_equal(groups, arrays[f"{other}#groups"]) and np.array_equal(clusters, arrays[f"{other}#clusters"])):
            raise SystemExit(f"{ref} and {other} hold different (target, user) units; they cannot be paired")
        diff, low, high = bootstrap_ci_grouped(a - b, groups, clusters, rng=rng, n_resamples=resamples)
        return diff, low, high, float("nan")
    return paired_bootstrap_diff(a, b, rng=rng, n_resamples=resamples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--metric", default="agreement@10")
    parser.add_argument("--reference", required=True, help="attack or defense label (see --by), or victim|attack|defense")
    parser.add_argument("--by", choices=["attack", "defense"], default="attack")
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()

    results = json.loads((args.run_dir / "results.json").read_text())
    arrays = np.load(args.run_dir / "per_user.npz", allow_pickle=False)
    rows = rows_with(arrays, args.metric)
    ref = resolve(args.reference, rows, args.by)
    print(f"{results['scenario']['name']}: {args.metric}, paired bootstrap ({args.resamples} resamples, users as clusters)")
    print(f"{'row':<44}{'mean':>9}{'ref - row':>11}{'95% CI':>22}{'p':>9}")
    print(f"{ref:<44}{arrays[rows[ref]].mean():>9.4f}")
    for name, key in rows.items():
        if name == ref:
            continue
        rng = np.random.default_rng(0)  # each comparison its own draw: adding a row moves no other
        diff, low, high, p = compare(rows[ref], key, arrays, rng, args.resamples)
        p_text = "-" if np.isnan(p) else f"{p:.4f}"
        print(f"{name:<44}{arrays[key].mean():>9.4f}{diff:>11.4f}{f'[{low:.4f}, {high:.4f}]':>22}{p_text:>9}")


if __name__ == "__main__":
    main()
