"""The terminal view of a run comparison (rich), for people; ``--json`` is the machines' view."""

from __future__ import annotations

from typing import Any

from redteam.reports.compare import Comparison, Delta
from redteam.reports.summary import short_name

STYLE = {"worse": "bold red", "better": "green", "changed": "yellow"}
ARROW = {"worse": "▲ worse", "better": "▼ better", "changed": "● changed"}


def _num(v: float, metric: str) -> str:
    if metric == "queries":
        return f"{v:,.0f}"
    if metric == "seconds":
        return f"{v:,.1f}"
    return f"{v:.4f}"


def _delta(d: Delta) -> str:
    if d.metric == "queries":
        return f"{d.delta:+,.0f}"
    return f"{d.delta:+.1f}" if d.metric == "seconds" else f"{d.delta:+.4f}"


def _ci(d: Delta) -> str:
    if d.low is None or d.high is None:
        return "-"
    return f"[{d.low:+.4f}, {d.high:+.4f}]"


def render_comparison(cmp: Comparison, console: Any, *, fail_on: list[str] | None = None, changed_only: bool = False) -> None:
    from rich import box
    from rich.panel import Panel
    from rich.table import Table

    mode = "paired bootstrap over users" if cmp.paired else "unpaired bootstrap (each run's users resampled separately)"
    console.print(Panel("\n".join([
        f"[bold]A[/] {cmp.a.label}",
        f"[bold]B[/] {cmp.b.label}",
        f"delta = B - A; {cmp.confidence:.0%} CI by {mode}, {cmp.resamples} resamples"
        " (no CI: the metric has no per-user values)",
        f"pairing: {cmp.pairing}",
        "significant: the interval excludes 0; worse/better for the defender (attack success up, clean accuracy down = worse)",
    ]), title="compare", expand=False))
    deltas = [d for d in cmp.deltas if d.change] if changed_only else cmp.deltas
    significant = sum(1 for d in cmp.deltas if d.significant)
    table = Table(title=f"metric deltas: {significant} significant of {len(cmp.deltas)}", box=box.SIMPLE_HEAD, pad_edge=False)
    with_defense = any(d.defense != "none" for d in cmp.deltas)
    table.add_column("row (victim / attack" + (" / defense)" if with_defense else ")"), overflow="fold", min_width=18)
    table.add_column("metric", no_wrap=True)
    table.add_column("change", no_wrap=True)
    for col in ("A", "B", "delta", f"{cmp.confidence:.0%} CI of delta", "p"):
        table.add_column(col, justify="right", no_wrap="CI" not in col)
    last = None
    for d in deltas:
        key = " / ".join((d.victim, d.attack, d.defense) if with_defense else (d.victim, d.attack))
        style = STYLE.get(d.change, "")
        change = f"[{style}]{ARROW[d.change]}[/]" if d.change else "[dim]-[/]"
        p = "-" if d.p_value is None or d.p_value != d.p_value else (
            f"<{2 / max(cmp.resamples, 1):.2g}" if d.p_value == 0 else f"{d.p_value:.3f}")
        delta = _delta(d)
        table.add_row("" if key == last else key, short_name(d.metric), change, _num(d.a, d.metric),
                      _num(d.b, d.metric), f"[{style}]{delta}[/]" if style else delta, _ci(d), p)
        last = key
    console.print(table)
    for name, keys in (("A", cmp.only_a), ("B", cmp.only_b)):
        if keys:
            console.print(f"rows only in {name}: " + ", ".join("/".join(k) for k in keys))
    if fail_on:
        regressions = cmp.regressions(fail_on)
        if regressions:
            console.print(f"[bold red]REGRESSION[/] {', '.join(fail_on)} significantly worse in "
                          f"{len(regressions)} row(s): " + "; ".join(
                              f"{'/'.join((d.victim, d.attack, d.defense))} {d.metric} {_delta(d)} {_ci(d)}" for d in regressions))
        else:
            console.print(f"[green]no significant regression[/] of {', '.join(fail_on)}")
