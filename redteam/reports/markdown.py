"""A Markdown summary of ``results.json`` fit for a pull-request comment."""

from __future__ import annotations

from typing import Any

from redteam.reports.defense_effects import ablation_effects, defense_effects
from redteam.reports.summary import (
    gate_counts, gate_where, key_columns, metric_columns, protocol_items, row_warnings, short_name, value_text, verdict,
)

SHORT_PROTOCOL = ("data", "candidates", "K", "test users", "seeds", "confidence intervals")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(head: list[str], rows: list[list[str]], *, right: set[int] = frozenset()) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in head) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    name = results.get("scenario", {}).get("name", "run")
    held, failed = gate_counts(results)
    icon = "❌" if failed else ("✅" if held else "ℹ️")
    items = dict(protocol_items(results))
    out = [f"### {icon} redteam `{name}`: {verdict(results)}", ""]
    out.append(" · ".join(f"{label}: {items[label]}" for label in SHORT_PROTOCOL if label in items))
    out.append("")
    rows = results.get("rows", [])
    if rows:
        keys, metrics = key_columns(rows), metric_columns(rows, success=results.get("attack_success", {}).values())
        body = [[str(r.get(k, "")) for k in keys] + [value_text(r["metrics"].get(m), m, digits=3) for m in metrics]
                for r in rows]
        out += table(keys + [short_name(m) for m in metrics], body, right=set(range(len(keys), len(keys) + len(metrics))))
        out.append("")
    warnings = row_warnings(results)
    if warnings:
        out += ["**Warnings**", "", *(f"- ⚠️ {_cell(text)}" for text in warnings), ""]
    effect_head, effect_rows = defense_effects(results)
    if effect_rows:
        out += ["**Defenses against none** (paired change over the same users)", ""]
        out += table(effect_head, effect_rows, right=set(range(2, len(effect_head))))
        out.append("")
    ablation_head, ablation_rows = ablation_effects(results)
    if ablation_rows:
        out += ["**Attack ablations** (paired change against the row named by `vs`: same users, same attacker draws)", ""]
        out += table(ablation_head, ablation_rows, right={5, 6})
        out.append("")
    gates = results.get("gates") or []
    if gates:
        out.append("**Gates**")
        out.append("")
        body = [["✅ held" if g.get("held") else "❌ failed", g.get("gate", ""), gate_where(g),
                 f"{g['value']:.4f}" if isinstance(g.get("value"), (int, float)) else "-", g.get("reason", "")]
                for g in gates]
        out += table(["outcome", "gate", "row", "value", "reason"], body, right={3})
        out.append("")
    out += ["<details><summary>Protocol and versions</summary>", ""]
    out += [f"- **{label}**: {text}" for label, text in protocol_items(results)]
    out += ["", "</details>", ""]
    return "\n".join(out)
