"""The terminal report, as the CLI calls it: ``render(results, console)``.

A thin top layer over the reports package: the renderer lives in :mod:`redteam.reports.terminal`
and the metric names and column titles in :mod:`redteam.reports.summary`. Nothing in
``redteam.reports`` imports this module.
"""

from __future__ import annotations

from redteam.reports.summary import COUNTS, HEADLINE, SHORT, short_name
from redteam.reports.terminal import format_metric, render, render_curves, render_gcg_losses

__all__ = ["COUNTS", "HEADLINE", "SHORT", "format_metric", "render", "render_curves", "render_gcg_losses", "short_name"]
