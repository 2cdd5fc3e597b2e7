"""Print the victims-quality table (Markdown) from the results.json of `scenarios/victims_quality.yaml` runs.

One line per victim: test HR@10 and NDCG@10 with the run's interval, the per-seed values, the
t-interval over the seed means, and the training cost from each seed's fit report (seconds per
epoch, best epoch of epochs run, seconds to the best epoch).

    python bench/victims_table.py RUN_DIR/results.json [...]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from common import interval_text, print_run_tables

from redteam.metrics_seeds import t_interval_over_seeds



def seed_line(metric: dict) -> str:
    per_seed = metric.get("per_seed") or [metric["value"]]
    mean, low, high = t_interval_over_seeds(per_seed)
    spread = " / ".join(f"{v:.4f}" for v in per_seed)
    return spread + ("" if np.isnan(low) else f" (t: [{low:.4f}, {high:.4f}])")


def cost(fits: list[dict]) -> str:
    if not fits or all(not f.get("epochs_run") for f in fits):
        return "- | - | -"  # not trained by epochs (popularity) or a row scored with another's model
    fresh = [f for f in fits if not f.get("cached")]
    if not fresh:
        return "cached | - | -"
    per_epoch = np.mean([f["seconds_per_epoch"] for f in fresh])
    to_best = np.mean([f["seconds_per_epoch"] * f["best_epoch"] for f in fresh])
    epochs = ", ".join(f"{f['best_epoch']}/{f['epochs_run']}" for f in fresh)
    return f"{per_epoch:.1f} | {epochs} | {to_best:.0f}"


def table(path: Path) -> list[str]:
    results = json.loads(path.read_text())
    lines = [f"**{results['dataset']['name']}** ({path})", "",
             "| victim | HR@10 [CI] | NDCG@10 [CI] | NDCG@10 per seed (t-interval) | s/epoch | best/run epochs | s to best |",
             "|---|---|---|---|---:|---|---:|"]
    for row in results["rows"]:
        m = row["metrics"]
        lines.append(f"| {row['victim']} | {interval_text(m['hr@10'])} | {interval_text(m['ndcg@10'])} | {seed_line(m['ndcg@10'])} | "
                     f"{cost(row['info'].get('fit', []))} |")
    return lines


def main() -> None:
    print_run_tables(__doc__, table)


if __name__ == "__main__":
    main()
