"""JUnit XML from ``results.json``: one test case per gate outcome, a failure for each failed one.

A gate that matches several rows has one outcome (one test case) per row, so a CI test view says
which victim/attack/defense failed which bound; a gate that matches no row is one failed case.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from redteam.reports.summary import KEYS, gate_counts, value_text


def render_junit(results: dict[str, Any]) -> str:
    name = str(results.get("scenario", {}).get("name", "run"))
    gates = results.get("gates") or []
    held, failed = gate_counts(results)
    seconds = f"{results.get('timings', {}).get('total_seconds', 0.0):.3f}"
    suites = ET.Element("testsuites", name="redteam", tests=str(len(gates)), failures=str(failed), errors="0", time=seconds)
    suite = ET.SubElement(suites, "testsuite", name=f"redteam.{name}", tests=str(len(gates)), failures=str(failed),
                          errors="0", skipped="0", time=seconds)
    props = ET.SubElement(suite, "properties")
    ds, env = results.get("dataset", {}), results.get("environment", {})
    for key, value in (("fingerprint", results.get("fingerprint")), ("dataset", ds.get("name")),
                       ("dataset_checksum", ds.get("checksum")), ("test_users", results.get("protocol", {}).get("test_users")),
                       ("seeds", results.get("protocol", {}).get("seeds")), ("redteam", env.get("redteam")),
                       ("code_version", env.get("code_version"))):
        if value is not None:
            ET.SubElement(props, "property", name=key, value=str(value))
    rows = {tuple(r.get(k) for k in ("dataset", *KEYS)): r for r in results.get("rows", [])}
    for g in gates:
        where = "/".join(str(g[k]) for k in KEYS if k in g)
        case = ET.SubElement(suite, "testcase", classname=f"redteam.{name}", time="0",
                             name=f"{g.get('gate', '?')} :: {where}" if where else str(g.get("gate", "?")))
        row = rows.get(tuple(g.get(k) for k in ("dataset", *KEYS)))
        metric = (row or {}).get("metrics", {}).get(g.get("metric", ""))
        measured = f"{g.get('metric')} = {value_text(metric, g.get('metric', ''))}" if metric else ""
        if g.get("relative_drop") is not None:
            measured += f"; relative drop {g['relative_drop']:.2%}"
        if g.get("held"):
            if measured:
                ET.SubElement(case, "system-out").text = measured
            continue
        failure = ET.SubElement(case, "failure", type="GateFailed", message=str(g.get("reason") or "gate failed"))
        failure.text = "\n".join(x for x in (f"gate: {g.get('gate')}", f"row: {where or '(none)'}", measured,
                                             f"reason: {g.get('reason')}") if x)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
