"""Combine runs of one scenario that differ only in the attacker seed into one table.

A long benchmark (Amazon Beauty, 100k queries per attack) runs one attacker seed per process so
that each part finishes in under an hour; this prints, per (victim, attack, defense) row, the
paired change against the undefended row of the same victim and attack in every run, and over the
runs the mean value and the mean change, each with a t-interval over the per-seed values (seed
variance, which the per-user bootstrap of one run leaves out). An attack with ``vs:`` in the
scenario (autoregressive vs few-shot extraction, surrogate-guided vs random fakes) also gets a
second table: its paired change against the attack it names (``rows[].paired_attack``), the same way.

    python bench/seed_table.py runs/a/results.json runs/b/results.json ... [--metric agreement@10]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats


def load(paths: list[Path]) -> list[dict]:
    runs = []
    for path in paths:
        data = json.loads(path.read_text())
        seeds = data["scenario"]["attacker"]["seeds"]
        runs.append({"seeds": seeds, "rows": {(r["victim"], r["attack"], r["defense"]): r for r in data["rows"]},
                     "fingerprint": {k: v for k, v in data["scenario"].items() if k not in ("attacker", "output")}})
    first = runs[0]["fingerprint"]
    for path, run in zip(paths, runs):
        if run["fingerprint"] != first:
            sys.exit(f"error: {path}: not the same scenario as {paths[0]} (apart from attacker seeds)")
    return runs


def t_interval(values: list[float]) -> tuple[float, float, float]:
    arr = np.asarray(values, dtype=np.float64)
    mean = float(arr.mean())
    if len(arr) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / np.sqrt(len(arr)))
    return mean, mean - half, mean + half


def table(runs: list[dict], metric: str, field: str = "paired") -> list[str]:
    """Markdown lines: each (victim, attack, defense) row's value and its ``field`` change in every
    run, the mean value and the mean change over the runs with their t-intervals, and how many
    runs' per-user intervals clear 0; ``field="paired_attack"`` adds the attack named by ``vs``
    and keeps only rows that have one. No lines when no row has ``metric`` (and, for ``paired_attack``, that change)."""
    ablation = field == "paired_attack"
    keys: list[tuple] = []
    for run in runs:  # every run's rows, in the order they first appear
        keys += [k for k, r in run["rows"].items() if k not in keys and metric in r["metrics"]
                 and (not ablation or metric in (r.get(field) or {}).get("metrics", {}))]
    if not keys:
        return []
    seeds = [",".join(map(str, r["seeds"])) for r in runs]
    lines = [f"| victim | attack | {'vs | ' if ablation else ''}defense | "
             f"{' | '.join(f'seed {s}: value (paired change [95% CI])' for s in seeds)} "
             f"| mean value over seeds [t 95%] | mean change over seeds [t 95%] | per-user CIs clear of 0 |",
             "|---|---|" + "---|" * ablation + "---|" + "---|" * len(runs) + "---|---|---|"]
    for key in keys:
        cells, values, diffs, clear, vs = [], [], [], 0, "-"
        for run in runs:
            row = run["rows"].get(key)
            if row is None or metric not in row["metrics"]:
                cells.append("-")
                continue
            value = row["metrics"][metric]["value"]
            values.append(value)
            paired = (row.get(field) or {}).get("metrics", {}).get(metric)
            if paired is None:
                cells.append(f"{value:.4f}")
                continue
            vs = row[field].get("vs", vs)
            diffs.append(paired["diff"])
            clear += paired["ci_high"] < 0 or paired["ci_low"] > 0
            cells.append(f"{value:.4f} ({paired['diff']:+.4f} [{paired['ci_low']:+.4f}, {paired['ci_high']:+.4f}])")
        if diffs:
            mean, lo, hi = t_interval(diffs)
            summary, clears = f"{mean:+.4f} [{lo:+.4f}, {hi:+.4f}]", f"{clear} of {len(diffs)}"
        else:
            summary, clears = "-", "-"
        mean, lo, hi = t_interval(values)
        level = f"{mean:.4f} [{lo:.4f}, {hi:.4f}]" if len(values) > 1 else "-"
        names = [key[0], key[1], *([vs] if ablation else []), key[2]]
        lines.append(f"| {' | '.join(names)} | {' | '.join(cells)} | {level} | {summary} | {clears} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.json of each run")
    parser.add_argument("--metric", action="append", help="metric to tabulate (repeatable; default agreement@10 "
                        "and ndcg@10)")
    args = parser.parse_args()
    for path in args.results:
        if not path.is_file():
            sys.exit(f"error: {path}: no such file")
    runs = load(args.results)
    for metric in args.metric or ["agreement@10", "ndcg@10"]:
        print(f"\n### {metric}\n")
        print("\n".join(table(runs, metric)) or f"no row reports {metric}")
        ablation = table(runs, metric, "paired_attack")
        if ablation:
            print(f"\n### {metric}: attack vs the attack its `vs` names (paired_attack)\n")
            print("\n".join(ablation))


if __name__ == "__main__":
    main()
