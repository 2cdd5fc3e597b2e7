"""Reports are projections of a run's ``results.json``, never a second source of truth.

``render(results, fmt)`` gives one format as text; ``write_reports`` writes the formats a
scenario's ``output.formats`` asks for into its run directory (``results.json`` itself is always
written by the runner). ``redteam report RUN_DIR --format F`` renders any of them later, and
``--format figures`` writes each plot of the HTML report as PNG and PDF (``write_figures``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

FORMATS = ("json", "html", "junit", "md")
FILENAMES = {"json": "results.json", "html": "report.html", "junit": "junit.xml", "md": "report.md"}
FIGURES_DIR = "figures"  # `redteam report RUN_DIR --format figures`: RUN_DIR/figures/<plot>.png and .pdf


def render(results: dict[str, Any], fmt: str, *, source: str = "results.json") -> str:
    if fmt == "json":
        return json.dumps(results, indent=2) + "\n"
    if fmt == "html":
        from redteam.reports.html import render_html

        return render_html(results, source=source)
    if fmt == "junit":
        from redteam.reports.junit import render_junit

        return render_junit(results)
    if fmt == "md":
        from redteam.reports.markdown import render_markdown

        return render_markdown(results)
    raise ValueError(f"unknown report format {fmt!r}; known: {', '.join(FORMATS)}")


def write_reports(results: dict[str, Any], run_dir: Path, formats: list[str], *, source: str = "results.json") -> list[Path]:
    """Write every format but json (the runner's own ``results.json``) into ``run_dir``;
    ``results`` is that file read back, so every report is a projection of it."""
    written = []
    for fmt in dict.fromkeys(formats):
        if fmt == "json":
            continue
        path = run_dir / FILENAMES[fmt]
        try:
            text = render(results, fmt, source=source)
        except Exception as exc:  # a report bug must not cost the run: results.json is the record
            sys.stderr.write(f"warning: {FILENAMES[fmt]} not written ({type(exc).__name__}: {exc}); "
                             f"render it later with `redteam report RUN_DIR --format {fmt}`\n")
            continue
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def write_figures(results: dict[str, Any], folder: Path) -> list[Path]:
    """Write every plot of the HTML report as ``folder/<key>.png`` and ``folder/<key>.pdf``; the
    paths written (none, and no folder made, when the run has no plots)."""
    from redteam.reports.figures import figures
    from redteam.reports.plots import save

    figs = figures(results)
    if not figs:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fig in figs:
        written += save(fig.draw(), folder, re.sub(r"[^\w@.+-]", "_", fig.key).lstrip("."))
    return written
