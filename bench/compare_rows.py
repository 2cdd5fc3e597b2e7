"""Paired comparison of result rows inside one run: is one attack (or defense) really better?

    python bench/compare_rows.py RUN_DIR --metric agreement@10 --reference extraction.fewshot
    python bench/compare_rows.py RUN_DIR --metric target_hr@50 --reference 'sasrec|poisoning.random|none'

Reads ``per_user.npz`` (per-user values, one row per seed) and ``results.json`` from a run
directory. The reference row is compared with every other row holding the metric, with the same
paired interval as the reports' defense and ablation tables (:mod:`redteam.paired`): the mean
difference and a 95% bootstrap interval over users with one seed, over seeds then users with
several (so the seeds' variance is in it). (target, user) metrics such as ``target_hr@50``
resample users as clusters, each bringing all its targets, and macro-average over targets. A row is
named by its attack (``--by attack``), its defense (``--by defense``), or in full as ``victim|attack|defense``;
a short name that matches several rows is refused with the full names to choose from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from redteam.paired import paired_metrics
from redteam.results import Row


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


def as_row(name: str, key: str, arrays, metric: str) -> Row:
    """A result row rebuilt from ``per_user.npz``: one array per seed, with its (target, user) units."""
    row = Row("run", *name.split("|"))
    groups = arrays[f"{key}#groups"] if f"{key}#groups" in arrays.files else None
    clusters = arrays[f"{key}#clusters"] if groups is not None else None
    for values in arrays[key]:
        row.add(metric, values, groups=groups, clusters=clusters)
    return row


def compare(ref: Row, other: Row, metric: str, resamples: int) -> tuple[float, float, float, float] | None:
    """``ref - other`` with the reports' paired interval (:mod:`redteam.paired`): over users with
    one seed, over seeds and users together with several; None when the rows hold different units
    or numbers of seeds."""
    change = paired_metrics(ref, other, seed=0, n_resamples=resamples, confidence=0.95, kind="compare").get(metric)
    return None if change is None else (change["diff"], change["ci_low"], change["ci_high"], change["p"])


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
    print(f"{results['scenario']['name']}: {args.metric}, paired bootstrap ({args.resamples} resamples; users as "
          "clusters; with several seeds, seeds then users)")
    print(f"{'row':<44}{'mean':>9}{'ref - row':>11}{'95% CI':>22}{'p':>9}")
    reference = as_row(ref, rows[ref], arrays, args.metric)
    print(f"{ref:<44}{arrays[rows[ref]].mean():>9.4f}")
    for name, key in rows.items():
        if name == ref:
            continue  # each comparison starts a fresh generator (reference key and metric): adding a row moves no other
        change = compare(reference, as_row(name, key, arrays, args.metric), args.metric, args.resamples)
        if change is None:
            print(f"{name:<44}{arrays[key].mean():>9.4f}  not paired: other units or another number of seeds")
            continue
        diff, low, high, p = change
        p_text = "-" if np.isnan(p) else f"{p:.4f}"
        print(f"{name:<44}{arrays[key].mean():>9.4f}{diff:>11.4f}{f'[{low:.4f}, {high:.4f}]':>22}{p_text:>9}")


if __name__ == "__main__":
    main()
