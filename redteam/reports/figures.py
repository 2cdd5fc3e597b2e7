"""The plots of a run, chosen from what its ``results.json`` holds.

* trade-off: attack success against clean accuracy, one point per (attack, defense) row, one
  plot per attack-success metric (extraction ``agreement@10``, poisoning ``target_hr@50``, text
  attacks ``top1_rate``), CI whiskers on both axes;
* budget curve: every ``curves`` entry whose points carry ``queries`` (metric vs queries used);
* target exposure before/after: attack rows with ``target_hr@K`` next to the same metric of the
  clean reference row (same victim, attack ``none``, same defense, else defense ``none``);
* detector ROC: ``curves`` entries with ``"metric": "roc"`` and points ``{"fpr", "tpr"}``
  (optional ``"auc"``; computed by the trapezoid rule when absent);
* GCG loss: ``curves`` entries with ``"metric": "gcg_loss"`` (points ``{"step", "loss"}``), one
  line per crafted strategic text sequence.

Each plot is also given as a small data table (the numbers behind it). A :class:`Figure` keeps
how to draw its plot (:mod:`redteam.reports.plots`, matplotlib): ``svg`` for the HTML page,
``draw()`` for a fresh matplotlib figure (``redteam report RUN --format figures``: PNG and PDF).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

from redteam.reports import plots
from redteam.reports.roles import (
    attack_families, clean_accuracy, clean_metric, clean_reference, row_family, success_metric, success_order,
)

EXPOSURE_PREFERENCE = ("target_hr@50", "target_hr@10", "target_hr@20", "target_hr@100")


@dataclass
class Figure:
    key: str
    title: str
    caption: str
    draw: Callable[[], Any]  # a new matplotlib Figure of the plot each call
    table: tuple[list[str], list[list[str]]] = field(default_factory=lambda: ([], []))

    @cached_property
    def svg(self) -> str:
        """The plot as one inline ``<svg>`` element (the same results give the same bytes)."""
        return plots.to_svg(self.draw(), key=self.key, title=self.title)


def figures(results: dict[str, Any]) -> list[Figure]:
    return [*tradeoff_figures(results), *budget_figures(results), *exposure_figures(results), *roc_figures(results),
            *gcg_figures(results)]


def gcg_figures(results: dict[str, Any]) -> list[Figure]:
    curves = [c for c in results.get("curves", []) or [] if c.get("metric") == "gcg_loss" and c.get("points")]
    if not curves:
        return []
    series = [plots.Series(f"{c.get('attack')} on {c.get('victim')}: {str(c.get('target', ''))[:30]} (seed {c.get('seed')})",
                         [(p["step"], p["loss"]) for p in c["points"]]) for c in curves]
    table = [[s.label, f"{s.points[0][1]:.3f}", f"{s.points[-1][1]:.3f}", str(len(s.points))]
             for s in series]
    return [Figure(
        key="gcg-loss",
        title="GCG loss by step",
        caption=("The loss of the candidate GCG kept at each step (each step draws its own catalog order and "
                 "requests, so the curve is noisy); lower means the ranker is more likely to put the target first."),
        draw=partial(plots.lines, series, x_label="GCG step", y_label="loss", title="GCG loss by step",
                     y_bounds=plots.NON_NEGATIVE, include_zero_y=True),
        table=(["STS", "first loss", "last loss", "steps"], table),
    )]


def _row_name(row: dict[str, Any], *, victims: int) -> str:
    return row["attack"] if victims <= 1 else f"{row['victim']}: {row['attack']}"


def _ci(m: dict[str, Any] | None) -> str:
    if not m:
        return "-"
    if m.get("ci_low") == m.get("ci_high"):
        return f"{m['value']:.4f}"
    return f"{m['value']:.4f} [{m['ci_low']:.4f}, {m['ci_high']:.4f}]"


def tradeoff_figures(results: dict[str, Any]) -> list[Figure]:
    rows = results.get("rows", [])
    families = attack_families(results)
    victims = len({r["victim"] for r in rows})
    accuracy = clean_metric(rows)
    by_metric: dict[str, list[tuple[plots.Point, list[str]]]] = {}
    for row in rows:
        if row["attack"] == "none":
            continue
        family = row_family(row, families)
        metric = success_metric(row, family)
        clean = clean_accuracy(row, rows, family, accuracy) if metric else None
        if not metric or not clean:
            continue
        y = row["metrics"][metric]
        name = _row_name(row, victims=victims)
        point = plots.Point(x=clean["value"], x_low=clean.get("ci_low"), x_high=clean.get("ci_high"),
                          y=y["value"], y_low=y.get("ci_low"), y_high=y.get("ci_high"), label=name, group=row["defense"])
        by_metric.setdefault(metric, []).append((point, [name, row["defense"], _ci(clean), _ci(y)]))
    out = []
    for metric in sorted(by_metric, key=success_order):
        points = [p for p, _ in by_metric[metric]]
        surrogate = any(f == "extraction" for f in families.values()) and metric.startswith("agreement@")
        x_label = f"clean accuracy: victim {accuracy}" if surrogate else f"clean accuracy: {accuracy}"
        out.append(Figure(
            key=f"tradeoff-{metric}",
            title=f"Attack success ({metric}) vs clean accuracy ({accuracy}) per defense",
            caption=("One point per attack row, coloured by defense; whiskers are the confidence intervals on both "
                     "axes. Down is better for the defender (less attack success), right is better (more clean accuracy)."
                     + (" For extraction the clean accuracy is the victim's own (with the same defense), since the row "
                        "scores the stolen surrogate." if surrogate else "")),
            draw=partial(plots.scatter, points, x_label=x_label, y_label=f"attack success: {metric}",
                         title=f"{metric} vs {accuracy}", group_title="defense",
                         label_title="attack" if victims <= 1 else "victim: attack"),
            table=(["row", "defense", x_label, metric], [t for _, t in by_metric[metric]]),
        ))
    return out


def _curve_name(c: dict[str, Any], curves: list[dict[str, Any]]) -> str:
    parts = []
    if len({x.get("victim") for x in curves}) > 1:
        parts.append(str(c.get("victim")))
    parts.append(str(c.get("attack")))
    if c.get("defense", "none") != "none":
        parts.append(f"defense {c['defense']}")
    if len({x.get("seed") for x in curves if x.get("attack") == c.get("attack")}) > 1:
        parts.append(f"seed {c.get('seed')}")
    return " / ".join(parts)


def budget_figures(results: dict[str, Any]) -> list[Figure]:
    curves = [c for c in results.get("curves", []) or []
              if c.get("metric") != "roc" and c.get("points") and all("queries" in p for p in c["points"])]
    out = []
    for metric in dict.fromkeys(c["metric"] for c in curves):
        group = [c for c in curves if c["metric"] == metric]
        series = [plots.Series(_curve_name(c, group), [(p["queries"], p[metric]) for p in c["points"] if metric in p])
                  for c in group]
        table = [[s.label, f"{x:,.0f}", f"{y:.4f}"] for s in series for x, y in sorted(s.points)]
        out.append(Figure(
            key=f"budget-{metric}",
            title=f"Extraction budget curve: {metric} by queries used",
            caption=("Each line re-distils the surrogate on prefixes of one attack's query stream: how much of the "
                     "final attack success the first queries already buy. The y-axis starts at 0."),
            draw=partial(plots.lines, series, x_label="queries used", y_label=metric, title=f"{metric} by queries used",
                         y_bounds=plots.UNIT, include_zero_y=True),
            table=(["attack", "queries", metric], table),
        ))
    return out


def exposure_figures(results: dict[str, Any]) -> list[Figure]:
    rows = results.get("rows", [])
    present = {m for r in rows if r["attack"] != "none" for m in r["metrics"]}
    metric = next((m for m in EXPOSURE_PREFERENCE if m in present),
                  next((m for m in sorted(present) if m.startswith("target_hr@")), None))
    if metric is None:
        return []
    victims = len({r["victim"] for r in rows})
    groups, table = [], []
    for row in rows:
        if row["attack"] == "none" or metric not in row["metrics"]:
            continue
        ref = clean_reference(row, rows)
        before = ref["metrics"].get(metric) if ref else None
        after = row["metrics"][metric]
        name = _row_name(row, victims=victims) + ("" if row["defense"] == "none" else f" / {row['defense']}")
        groups.append(plots.BarGroup(name, [
            plots.Bar(before["value"], before.get("ci_low"), before.get("ci_high")) if before else None,
            plots.Bar(after["value"], after.get("ci_low"), after.get("ci_high")),
        ]))
        table.append([name, _ci(before), _ci(after)])
    return [Figure(
        key=f"exposure-{metric}",
        title=f"Target exposure before and after each attack ({metric})",
        caption=("How often the attack's target items reach the top list: before (the clean row of the same victim "
                 "and defense) and after the attack, with confidence intervals."),
        draw=partial(plots.bars, groups, ["before attack", "after attack"], y_label=metric,
                     title=f"{metric} before / after"),
        table=(["attack", f"before ({metric})", f"after ({metric})"], table),
    )]


def roc_auc(points: list[tuple[float, float]]) -> float:
    """Area under (fpr, tpr) points by the trapezoid rule, with (0, 0) and (1, 1) added."""
    pts = sorted({(0.0, 0.0), (1.0, 1.0), *points})
    return float(sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(pts, pts[1:])))


def roc_figures(results: dict[str, Any]) -> list[Figure]:
    curves = [c for c in results.get("curves", []) or [] if c.get("metric") == "roc" and c.get("points")]
    if not curves:
        return []
    series, table = [], []
    for c in curves:
        pts = [(float(p["fpr"]), float(p["tpr"])) for p in c["points"]]
        auc = c.get("auc", roc_auc(pts))
        name = str(c.get("defense") or "detector")
        if c.get("attack") not in (None, "none"):
            name += f" on {c['attack']}"
        label = f"{name} (AUC {auc:.3f})"
        series.append(plots.Series(label.replace("AUC ", "AUC\u00a0"), pts))  # a wrapped label keeps "AUC 0.9" whole
        table.append([label, str(len(pts)), f"{auc:.4f}"])
    return [Figure(
        key="roc",
        title="Detector ROC curves",
        caption="True-positive rate (fake profiles or texts caught) against false-positive rate (real ones flagged).",
        draw=partial(plots.lines, series, x_label="false-positive rate", y_label="true-positive rate",
                     title="detector ROC", unit_square=True, diagonal=True),
        table=(["detector", "points", "AUC"], table),
    )]
