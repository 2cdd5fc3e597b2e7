"""Shared set-up of the benchmark scripts: real data location, threads, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def data_dir(arg: str | None) -> Path:
    for candidate in (arg, os.environ.get("REDTEAM_DATA_DIR"), str(REPO.parent / "shared" / "data")):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    sys.exit("real data not found: pass --data-dir or set REDTEAM_DATA_DIR (a folder like ../shared/data)")


def beauty(args: argparse.Namespace):
    """Amazon Beauty from the real data folder and its leave-one-out split: ``(dataset, split)``."""
    from redteam.data.dataset import LeaveOneOutSplit
    from redteam.data.registry import DatasetConfig, load_dataset

    dataset = load_dataset(DatasetConfig(name="amazon-beauty", path=data_dir(args.data_dir) / "amazon-beauty"), seed=args.seed)
    return dataset, LeaveOneOutSplit.of(dataset)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", help="parent folder of amazon-beauty/ etc. (default: REDTEAM_DATA_DIR or ../shared/data)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_path", help="also write the figures to this JSON file")
    return parser


def interval_text(metric: dict) -> str:
    """``value [low, high]`` of one results.json metric, four decimals."""
    return f"{metric['value']:.4f} [{metric['ci_low']:.4f}, {metric['ci_high']:.4f}]"


def print_run_tables(doc: str, table, **options: str) -> None:
    """The main of a table script: ``table(path, **options)`` (Markdown lines) for every
    results.json named on the command line; ``options`` are ``--name`` flags with their defaults."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    for name, default in options.items():
        parser.add_argument(f"--{name}", default=default)
    args = vars(parser.parse_args())
    for path in args.pop("results"):
        print("\n".join(table(path, **args)) + "\n")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(path: str | None, payload: object) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2))
