"""Print an extraction run's table (Markdown) from its results.json: per attack, Agreement@10 with
its interval and per-seed values, the paired change against the row its `vs` names, the
surrogate's own test NDCG@10 next to the victim's and the popularity warning, and distillation
epochs (best / run) per attacker seed.

    python bench/extraction_table.py RUN_DIR/results.json [--metric agreement@10]
"""

from __future__ import annotations

import json
from pathlib import Path

from common import interval_text, print_run_tables



def table(path: Path, metric: str) -> list[str]:
    results = json.loads(path.read_text())
    rows = results["rows"]
    victim = {r["victim"]: r for r in rows if r["attack"] == "none" and r["defense"] == "none"}
    lines = [f"**{results['dataset']['name']}** ({path})", "",
             f"| victim | attack | {metric} [CI] | per attacker seed | paired change [CI] (vs) | surrogate NDCG@10 (victim) | distil epochs best/run | warnings |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        m = row["metrics"]
        if metric not in m:
            continue
        paired = row.get("paired_attack")
        change = "-"
        if paired and metric in paired["metrics"]:
            d = paired["metrics"][metric]
            change = f"{d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] (vs {paired['vs']})"
        seeds = " / ".join(f"{v:.4f}" for v in m[metric].get("per_seed", [m[metric]["value"]]))
        own = victim.get(row["victim"], {}).get("metrics", {}).get("ndcg@10", {}).get("value")
        surrogate = f"{m['ndcg@10']['value']:.4f}" + ("" if own is None else f" ({own:.4f})") if "ndcg@10" in m else "-"
        epochs = ", ".join(f"{e.get('best_epoch')}/{e.get('distill_epochs')}" for e in row["info"].get("extraction", []))
        lines.append(f"| {row['victim']} | {row['attack']} | {interval_text(m[metric])} | {seeds} | {change} | {surrogate} | "
                     f"{epochs or '-'} | {len(row['info'].get('warnings', []))} |")
    return lines


def main() -> None:
    print_run_tables(__doc__, table, metric="agreement@10")


if __name__ == "__main__":
    main()
