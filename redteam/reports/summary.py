"""Pieces every report format shares: metric names and columns, the protocol lines, gate verdicts.

The bottom of the report layer: it imports no other report module."""

from __future__ import annotations

import math
from typing import Any

#: Metrics shown by default in every report, in column order.
HEADLINE = ("hr@10", "ndcg@10", "hr@50", "ndcg@50", "agreement@1", "agreement@10", "target_hr@50", "top1_rate",
            "top1_rate_seen", "advantage", "disadvantage", "mean_rank", "detection_rate", "detector_auc", "precision", "recall", "fpr", "queries", "seconds", "train_seconds")
COUNTS = ("queries", "seconds", "train_seconds")  # shown as whole numbers, no CI
SHORT = {"agreement@": "agr@", "detector_auc": "det_auc", "train_seconds": "train_s"}
KEYS = ("victim", "attack", "defense")


def short_name(metric: str) -> str:
    """The metric's column title: long name parts shortened by ``SHORT``."""
    for long, short in SHORT.items():
        metric = metric.replace(long, short)
    return metric


def protocol_items(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) pairs of the evaluation protocol: data, split, K, candidates, seeds, versions."""
    p, ds = results.get("protocol", {}), results.get("dataset", {})
    sc = results.get("scenario", {})
    if p.get("family") == "sts":
        return _sts_items(results) + _run_items(results)
    api = results.get("attacker", {}).get("api") or sc.get("api") or {}
    attacker_seeds = (sc.get("attacker") or {}).get("seeds")
    items = [
        ("data", f"{ds.get('name')}: {_count(ds.get('users'))} users, {_count(ds.get('items'))} items, "
                 f"{_count(ds.get('interactions'))} interactions (checksum {ds.get('checksum', '?')})"),
        ("split", str(p.get("split", "?"))),
        ("candidates", f"{p.get('ranking', '?')}; excluded: {p.get('excluded', '?')}; ties: {p.get('ties', '?')}"),
        ("K", ", ".join(str(k) for k in p.get("k", [])) or "?"),
        ("test users", _count(p.get("test_users")) + (
            f" (the attacker's {_count(p['attacker_users'])} few-shot users excluded)" if p.get("attacker_users") else "")),
        ("seeds", f"run {p.get('seeds', '?')}" + (f"; attacker {attacker_seeds}" if attacker_seeds else "")),
        ("confidence intervals", str(p.get("ci", "?"))),
    ]
    items += [(f"evaluation of {victim}", text) for victim, text in evaluation_notes(results)]
    if api:
        budget = api.get("budget")
        items.append(("black-box API", f"top-{api.get('topk')} ids, budget "
                      f"{'unlimited' if budget is None else f'{budget:,} queries'}, scores "
                      f"{'exposed' if api.get('expose_scores') else 'hidden'}"
                      + ("; over HTTP (redteam serve in a child process)" if api.get("transport") == "http" else "")))
    return items + _run_items(results)


NOTE_KEYS = ("evaluation", "event_times")


def evaluation_notes(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(victim, note) for victims whose clean rows were scored in a way the reader must know: a
    remote victim's top-k lists (no full catalog), a time-aware victim with or without event times."""
    notes = {}
    for r in results.get("rows", []):
        info = r.get("info") if r.get("attack") == "none" else None
        text = "; ".join(info[k] for k in NOTE_KEYS if isinstance(info, dict) and info.get(k))
        if text:
            notes[r["victim"]] = text
    return sorted(notes.items())


def _sts_items(results: dict[str, Any]) -> list[tuple[str, str]]:
    p, ds, sts = results["protocol"], results.get("dataset", {}), results.get("sts", {})
    return [
        ("catalog", f"{ds.get('name')} ({ds.get('source')}): {_count(ds.get('items'))} products, "
                    f"{_count(ds.get('requests'))} shopper requests"),
        ("requests", str(p.get("split", "?"))),
        ("trials", f"{p.get('trials')} held-out trials per target" + (f" + {p['seen_trials']} on optimisation requests" if p.get("seen_trials") else "")
                   + f"; {p.get('ranking', '?')}"),
        ("targets", " | ".join(str(t) for t in p.get("targets", []))),
        ("seeds", f"attacker {p.get('seeds', '?')}"),
        ("confidence intervals", str(p.get("ci", "?"))),
        ("rankers", "; ".join(f"{k}: {v.get('model_id', v.get('victim'))}" for k, v in results.get("rankers", {}).items())),
    ] + ([("defenses", "; ".join(
        f"{k}: threshold {v.get('threshold', float('nan')):.4g} from {v.get('calibration_texts', '?')} {v.get('reference_source', 'reference texts')}, "
        f"FPR {v['fpr']:.3f} on {v.get('false_positive_texts', '?')} held-out texts (the catalog's own included)"
        for k, v in sts["defenses"].items() if "fpr" in v))] if sts.get("defenses") else [])


def _run_items(results: dict[str, Any]) -> list[tuple[str, str]]:
    env = results.get("environment", {})
    items = []
    items.append(("versions", ", ".join(f"{k} {env[k]}" for k in ("redteam", "code_version", "python", "torch", "numpy")
                                        if k in env) + f"; {env.get('threads', '?')} threads on {env.get('device', '?')}"))
    items.append(("run", f"fingerprint {results.get('fingerprint', '?')}, "
                         f"{results.get('timings', {}).get('total_seconds', float('nan')):.1f} s"))
    return items


def _count(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else "?" if v is None else str(v)


def metric_columns(rows: list[dict[str, Any]], *, all_metrics: bool = False, success: Any = ()) -> list[str]:
    """Headline metrics present in the rows, in the report's order, with each stage's attack-success
    metric (``results["attack_success"]``, e.g. a new family's) even when it is no headline (then
    the rest, if asked)."""
    present = list(dict.fromkeys(m for r in rows for m in r.get("metrics", {})))
    ordered = [m for m in HEADLINE if m in present]
    ordered += [m for m in dict.fromkeys(success) if m in present and m not in ordered]
    rest = [m for m in present if m not in ordered]
    return ordered + rest if all_metrics or not ordered else ordered


def key_columns(rows: list[dict[str, Any]]) -> list[str]:
    """victim, attack, defense (defense only when some row has one)."""
    return [k for k in KEYS if k != "defense" or any(r.get("defense", "none") != "none" for r in rows)]


def value_text(m: dict[str, Any] | None, metric: str = "", *, ci: bool = True, digits: int = 4) -> str:
    if m is None:
        return "-"
    value = m.get("value")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if metric in COUNTS:
        return f"{value:,.0f}" if metric == "queries" else f"{value:,.1f}"
    low, high = m.get("ci_low"), m.get("ci_high")
    if not ci or low is None or high is None or low == high:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def row_warnings(results: dict[str, Any]) -> list[str]:
    """``victim / attack / defense: text`` for every warning a stage put on a row (a stolen
    surrogate below the popularity ranking, ...)."""
    return [f"{row['victim']} / {row['attack']} / {row['defense']}: {text}"
            for row in results.get("rows", []) for text in (row.get("info") or {}).get("warnings", [])]


def gate_where(g: dict[str, Any]) -> str:
    return "/".join(str(g[k]) for k in KEYS if k in g) or "(no matching row)"


def gate_counts(results: dict[str, Any]) -> tuple[int, int]:
    """(held, failed) gate outcomes."""
    gates = results.get("gates") or []
    failed = sum(1 for g in gates if not g.get("held"))
    return len(gates) - failed, failed


def verdict(results: dict[str, Any]) -> str:
    held, failed = gate_counts(results)
    if held + failed == 0:
        return "no gates"
    if failed:
        return f"{failed} of {held + failed} gate checks FAILED"
    return "the one gate check held" if held == 1 else f"all {held} gate checks held"
