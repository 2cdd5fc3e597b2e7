"""The terminal report (rich): protocol header, one table of result rows, budget and ROC curves,
gate outcomes. :mod:`redteam.report` re-exports it as ``render``."""

from __future__ import annotations

from typing import Any

from redteam.reports.summary import COUNTS, evaluation_notes, metric_columns, protocol_items, row_warnings, short_name

__all__ = ["format_metric", "render", "render_curves", "render_gcg_losses"]

STACK_BELOW = 120  # terminal width under which the result table turns to one block per row


def format_metric(m: dict[str, Any], name: str = "") -> str:
    value, low, high = m["value"], m["ci_low"], m["ci_high"]
    if name in COUNTS:
        return f"{value:,.0f}"
    seeds = m.get("per_seed") or []
    per_seed = f"\n[dim]seeds {' '.join(f'{v:.3f}' for v in seeds)}[/]" if len(seeds) > 1 else ""
    if low == high:
        return f"{value:.4f}{per_seed}"
    return f"{value:.4f}\n[dim][{low:.3f}, {high:.3f}][/]{per_seed}"


def render(results: dict[str, Any], console: Any) -> None:
    """Print the run's protocol header, result table, curves, gates and timing to ``console``."""
    from rich.panel import Panel

    proto = results["protocol"]
    if proto.get("family") == "sts":
        header = "\n".join([f"[bold]{results['scenario']['name']}[/]"]
                           + [f"{label}: {text}" for label, text in protocol_items(results)[:-2]])
    else:
        header = _sequence_header(results)
    console.print(Panel(header, title="protocol", expand=False))
    _render_rows(results, console)


def _sequence_header(results: dict[str, Any]) -> str:
    proto, ds = results["protocol"], results["dataset"]
    return "\n".join([
        f"[bold]{results['scenario']['name']}[/]  data: {ds['name']} ({ds['users']} users, {ds['items']} items, "
        f"{ds['interactions']} interactions, checksum {ds['checksum']})",
        f"split: {proto['split']}",
        f"ranking: {proto['ranking']}; excluded: {proto['excluded']}; ties: {proto['ties']}",
        f"test users: {proto['test_users']}"
        + (f" (the attacker's {proto['attacker_users']} few-shot users excluded)" if proto.get("attacker_users") else "")
        + f"; seeds: {proto['seeds']}; CI: {proto['ci']}",
        *(f"[yellow]evaluation of {victim}: {note}[/]" for victim, note in evaluation_notes(results)),
    ])


def _render_rows(results: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    metrics = metric_columns(results["rows"], success=results.get("attack_success", {}).values()) or _first_metrics(results["rows"])
    confidence = results["scenario"]["eval"]["confidence"]
    table = Table(title=f"results: value and {confidence:.0%} CI", show_lines=True)
    keys = [c for c in ("victim", "attack", "defense")
            if c != "defense" or any(r["defense"] != "none" for r in results["rows"])]
    if console.width < STACK_BELOW:
        table = _long_table(results, keys, metrics, title=table.title)
    else:
        for col in keys:
            table.add_column(col, style="bold" if col == "victim" else None, overflow="fold")
        for m in metrics:
            table.add_column(short_name(m), justify="right")
        trained = any("fit" in row["info"] for row in results["rows"])
        if trained:
            table.add_column("train", justify="right", overflow="fold")
        for row in results["rows"]:
            cells = [row[c] for c in keys]
            cells += [format_metric(row["metrics"][m], m) if m in row["metrics"] else "-" for m in metrics]
            if trained:
                cells.append(_fit_summary(row["info"].get("fit", [])))
            table.add_row(*cells)
    console.print(table)
    for text in row_warnings(results):
        from rich.markup import escape

        console.print(f"[yellow]warning[/] {escape(text)}")
    render_defense_effects(results, console)
    if results.get("curves"):
        render_curves(results["curves"], console)
    if results.get("gates"):
        gates = Table(title="gates")
        for col in ("gate", "row", "value", "outcome"):
            gates.add_column(col, overflow="fold")
        for g in results["gates"]:
            where = "/".join(str(g[k]) for k in ("victim", "attack", "defense") if k in g)
            value = f"{g['value']:.4f}" if g.get("value") is not None else "-"
            outcome = "[green]held[/]" if g["held"] else f"[red]FAILED[/] {g['reason']}"
            gates.add_row(g["gate"], where, value, outcome)
        console.print(gates)
    t = results["timings"]
    console.print(f"total {t['total_seconds']:.1f} s, {results['environment']['threads']} threads")


def _long_table(results: dict[str, Any], keys: list[str], metrics: list[str], *, title: Any) -> Any:
    """A narrow terminal's layout: one block per row, its labels stacked (victim / attack / defense),
    one line per metric with the value and interval; labels fold rather than get cut."""
    from rich.table import Table

    table = Table(title=title, show_lines=True)
    table.add_column(" / ".join(keys), overflow="fold", min_width=14)
    table.add_column("metric", overflow="fold")
    table.add_column("value [CI]", justify="right", overflow="fold")
    for row in results["rows"]:
        names = [m for m in metrics if m in row["metrics"]]
        values = []
        for m in names:
            one = format_metric(row["metrics"][m], m).replace("\n[dim]", " [dim]", 1).replace("\n", " ")
            values.append(one)
        fits = row["info"].get("fit", [])
        if fits:
            names.append("train")
            values.append(_fit_summary(fits).replace("\n", " "))
        labels = "\n".join(f"[bold]{row[c]}[/]" if c == "victim" else row[c] for c in keys)
        table.add_row(labels, "\n".join(short_name(m) if m != "train" else m for m in names) or "-",
                      "\n".join(values) or "-")
    return table


def render_defense_effects(results: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    from redteam.reports.defense_effects import ablation_effects, defense_effects

    confidence = results["scenario"]["eval"]["confidence"]
    for title, (head, rows), first_number in (
            (f"defenses against none: paired change over the same users, {confidence:.0%} CI", defense_effects(results), 2),
            (f"attack ablations: paired change against the row named by vs (same users and attacker draws), "
             f"{confidence:.0%} CI", ablation_effects(results), 5)):
        if not rows:
            continue
        table = Table(title=title, show_lines=True)
        for i, col in enumerate(head):
            table.add_column(col, justify="right" if i >= first_number else "left", overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)


def render_curves(curves: list[dict[str, Any]], console: Any) -> None:
    """Budget curves: one line per (victim, attack, seed), the metric at each budget point of one
    query stream. Detector ROC curves (``"metric": "roc"``): their AUC and number of points."""
    from rich.table import Table

    if any(c.get("metric") == "gcg_loss" for c in curves):
        render_gcg_losses([c for c in curves if c.get("metric") == "gcg_loss"], console)
    budget = [c for c in curves if c.get("metric") != "roc" and all("queries" in p for p in c.get("points", []))]
    for metric in dict.fromkeys(c["metric"] for c in budget):
        table = Table(title=f"budget curve: {metric} at queries used (prefixes of one query stream)")
        rows = [c for c in budget if c["metric"] == metric]
        defended = any("defense" in c for c in rows)  # a serving defense in front of the API
        for col in ("victim", "attack", *(("defense",) if defended else ()), "seed", f"queries -> {metric}"):
            table.add_column(col)
        for c in rows:
            points = "   ".join(f"{p['queries']:,}: {p[metric]:.3f}" for p in c["points"])
            where = (str(c.get("defense", "none")),) if defended else ()
            table.add_row(str(c.get("victim")), str(c.get("attack")), *where, str(c.get("seed")), points)
        console.print(table)
    roc = [c for c in curves if c.get("metric") == "roc"]
    if roc:
        from redteam.reports.figures import roc_auc

        table = Table(title="detector ROC curves")
        for col in ("victim", "attack", "defense", "points", "AUC"):
            table.add_column(col)
        for c in roc:
            auc = c.get("auc", roc_auc([(p["fpr"], p["tpr"]) for p in c["points"]]))
            table.add_row(*(str(c.get(k, "-")) for k in ("victim", "attack", "defense")), str(len(c["points"])), f"{auc:.3f}")
        console.print(table)


def render_gcg_losses(curves: list[dict[str, Any]], console: Any) -> None:
    """GCG loss at the first, middle and last step of each crafted STS."""
    from rich.table import Table

    table = Table(title="GCG loss by step (optimised on)")
    for col in ("optimised on", "attack", "target", "seed", "loss: first -> middle -> last"):
        table.add_column(col)
    for c in curves:
        pts = c["points"]
        picks = [pts[0], pts[len(pts) // 2], pts[-1]] if pts else []
        table.add_row(str(c.get("victim")), str(c.get("attack")), str(c.get("target", "-"))[:40], str(c.get("seed")),
                      " -> ".join(f"{p['loss']:.3f} (step {p['step']})" for p in picks))
    console.print(table)


def _first_metrics(rows: list[dict[str, Any]]) -> list[str]:
    """Rows with no headline metric at all: their first few metrics, by name."""
    return sorted({m for r in rows for m in r["metrics"]})[:6]


def _fit_summary(fits: list[dict[str, Any]]) -> str:
    if not fits:
        return "-"
    if all(f.get("cached") for f in fits):
        return "cached"
    secs = sum(f.get("seconds") or 0 for f in fits if not f.get("cached"))
    epochs = "/".join(str(f.get("epochs_run")) for f in fits)
    return f"{secs:.0f}s, {epochs} ep"
