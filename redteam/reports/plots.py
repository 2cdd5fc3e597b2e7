"""The report's plots, drawn with matplotlib: functions from numbers to one matplotlib Figure.

Each plot function builds a :class:`matplotlib.figure.Figure` directly on an Agg canvas, never
through pyplot, so no figure is kept in global state. matplotlib is imported inside the functions:
importing ``redteam`` or ``redteam.reports.*`` does not import it. :func:`to_svg` gives a figure as
one ``<svg>`` element to inline in the HTML report (text kept as text, no metadata, ids salted
with the plot's key: the same results give the same bytes, and two plots on one page never share
an id); :func:`save` writes it as PNG (200 dpi) and PDF.

Readability rules: every plot has axis labels and a title; a legend of more than
``INLINE_LEGEND`` entries sits right of the axes (the picture grows taller when it needs to);
long labels are wrapped; scatter points are told apart by the legend (colour per group, marker
per label), never by text next to them; ``constrained`` layout keeps every text inside the
picture and apart from the axes. More than ``VERTICAL_GROUPS`` bar groups lie down.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")
MUTED, INK, AXIS, GRID = "#8c8c8c", "#222222", "#555555", "#e3e3e3"
SIZE = (6.4, 4.2)  # inches
SQUARE = (5.4, 4.8)
WRAP = 44  # characters per line of a legend inside the axes
LEGEND_WRAP = 28  # characters per line of a legend right of the axes
INLINE_LEGEND = 3  # more entries than this: the legend goes outside the axes
PNG_DPI = 200

STYLE: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "axes.edgecolor": AXIS,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.framealpha": 0.9,
    "legend.edgecolor": GRID,
    "svg.fonttype": "none",  # text stays text: searchable, selectable, styled by the page's fonts
    "svg.hashsalt": "redteam",
    "pdf.fonttype": 42,  # TrueType in the PDF: text stays editable in a paper's figure
}

Bounds = tuple[float | None, float | None]
UNIT: Bounds = (0.0, 1.0)
NON_NEGATIVE: Bounds = (0.0, None)


@contextmanager
def _styled(**extra: Any) -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context({**STYLE, **extra}):
        yield


def _new(size: tuple[float, float]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finite(*values: float | None) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def limits(values: Sequence[float | None], *, bounds: Bounds = (None, None), pad: float = 0.05,
           include_zero: bool = False) -> tuple[float, float]:
    """An axis range covering ``values`` (None/NaN ignored), padded by ``pad`` of the span each
    side and kept inside ``bounds`` widened by 2% of the span (markers at a bound stay whole)."""
    finite = [float(v) for v in values if _finite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (bounds[0] or 0.0, 1.0 if bounds[1] is None else bounds[1])
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        half = abs(hi) * 0.1 or 0.1
        lo, hi = lo - half, hi + half
    span = hi - lo
    lo, hi = lo - pad * span, hi + pad * span
    low, high = bounds
    if low is not None:
        lo = max(lo, low - 0.02 * span)
    if high is not None:
        hi = min(hi, high + 0.02 * span)
    return lo, hi


def wrap(text: str, width: int = WRAP, max_lines: int | None = None) -> str:
    return textwrap.fill(str(text), width=width, max_lines=max_lines, placeholder=" …") if len(str(text)) > width else str(text)


def _assign(keys: Sequence[str], pool: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in keys:
        if key not in out:
            out[key] = pool[len(out) % len(pool)]
    return out


def _decorate(ax: Any, x_label: str, y_label: str, title: str) -> None:
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(wrap(title, 64))


def _thousands(axis: Any, values: Sequence[float]) -> None:
    """Large counts (queries) as 20,000 rather than 2e4, with few enough ticks to stay apart."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if values and max(abs(v) for v in values) >= 1000:
        axis.set_major_locator(MaxNLocator(nbins=6))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _legend(fig: Figure, ax: Any, handles: list, labels: list[str], *, outside: bool = False,
            headers: Sequence[str] = ()) -> None:
    """Up to INLINE_LEGEND entries inside the axes (where they hide the least data), more to the
    right of the axes, labels wrapped to LEGEND_WRAP characters; the picture grows taller when
    the legend needs it. ``headers``: labels drawn as bold section titles (their handles are blank)."""
    if not handles:
        return
    if not outside and len(handles) <= INLINE_LEGEND:
        legend = ax.legend(handles, [wrap(label) for label in labels], loc="best")
    else:
        labels = [wrap(label, LEGEND_WRAP, max_lines=3) for label in labels]
        extra = sum(label.count("\n") for label in labels)
        width, height = fig.get_size_inches()
        need = 1.3 + 0.21 * len(labels) + 0.15 * extra
        if need > height:
            fig.set_size_inches(width, need)
        legend = fig.legend(handles, labels, loc="outside right upper")
    for text in legend.get_texts():
        if text.get_text() in headers:
            text.set_fontweight("bold")


def _header(label: str) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], linestyle="none", marker="none", label=label)


# --------------------------------------------------------------------------------------------
# Plots


@dataclass(frozen=True)
class Point:
    """One result row: x and y with their confidence intervals (None: no interval)."""

    x: float
    y: float
    label: str
    group: str = ""
    x_low: float | None = None
    x_high: float | None = None
    y_low: float | None = None
    y_high: float | None = None


def _err(value: float, low: float | None, high: float | None) -> list[list[float]] | None:
    """An asymmetric error bar for ``errorbar`` (None: no interval, or an empty one)."""
    if not _finite(low, high) or low == high:
        return None
    return [[max(0.0, value - low)], [max(0.0, high - value)]]


def scatter(points: Sequence[Point], *, x_label: str, y_label: str, title: str, x_bounds: Bounds = UNIT,
            y_bounds: Bounds = UNIT, group_title: str = "group", label_title: str = "row") -> Figure:
    """One marker per point with horizontal and vertical CI whiskers; colour = ``group``, marker =
    ``label``; one legend (outside the axes) names both."""
    from matplotlib.lines import Line2D

    points = [p for p in points if _finite(p.x, p.y)]
    colors = _assign([p.group for p in points], PALETTE)
    markers = _assign([p.label for p in points], MARKERS)
    with _styled():
        fig = _new(SIZE)
        ax = fig.add_subplot()
        for p in points:
            ax.errorbar([p.x], [p.y], xerr=_err(p.x, p.x_low, p.x_high), yerr=_err(p.y, p.y_low, p.y_high),
                        fmt=markers[p.label], color=colors[p.group], markersize=7, markeredgecolor="white",
                        markeredgewidth=0.8, elinewidth=1.3, capsize=3, label="_nolegend_")
        ax.set_xlim(*limits([v for p in points for v in (p.x, p.x_low, p.x_high)], bounds=x_bounds))
        ax.set_ylim(*limits([v for p in points for v in (p.y, p.y_low, p.y_high)], bounds=y_bounds))
        _decorate(ax, x_label, y_label, title)
        handles = [_header(group_title)]
        handles += [Line2D([], [], linestyle="none", marker="o", markersize=7, color=c, label=g) for g, c in colors.items()]
        handles.append(_header(label_title))
        handles += [Line2D([], [], linestyle="none", marker=m, markersize=7, color=AXIS, label=k) for k, m in markers.items()]
        _legend(fig, ax, handles, [h.get_label() for h in handles], outside=True, headers=(group_title, label_title))
    return fig


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False


def lines(series: Sequence[Series], *, x_label: str, y_label: str, title: str, x_bounds: Bounds = NON_NEGATIVE,
          y_bounds: Bounds = UNIT, include_zero_x: bool = True, include_zero_y: bool = False,
          unit_square: bool = False, diagonal: bool = False) -> Figure:
    """One line with markers per series (points sorted by x). ``unit_square``: both axes 0..1 in
    steps of 0.2 (ROC); ``diagonal``: a dotted y = x (chance)."""
    from matplotlib.ticker import MultipleLocator

    cleaned = [Series(s.label, sorted((x, y) for x, y in s.points if _finite(x, y)), s.dashed) for s in series]
    with _styled():
        fig = _new(SQUARE if unit_square else SIZE)
        ax = fig.add_subplot()
        for i, s in enumerate(cleaned):
            xs, ys = [x for x, _ in s.points], [y for _, y in s.points]
            ax.plot(xs, ys, color=PALETTE[i % len(PALETTE)], marker=MARKERS[i % len(MARKERS)], markersize=4,
                    markevery=max(1, len(xs) // 20), linewidth=1.8, linestyle="--" if s.dashed else "-", label=s.label)
        if diagonal:
            ax.plot([0, 1], [0, 1], color=MUTED, linestyle=":", linewidth=1.2, label="chance (y = x)")
        xs = [x for s in cleaned for x, _ in s.points]
        ys = [y for s in cleaned for _, y in s.points]
        if unit_square:
            for axis, set_lim in ((ax.xaxis, ax.set_xlim), (ax.yaxis, ax.set_ylim)):
                set_lim(-0.02, 1.02)
                axis.set_major_locator(MultipleLocator(0.2))
        else:
            ax.set_xlim(*limits(xs, bounds=x_bounds, include_zero=include_zero_x))
            ax.set_ylim(*limits(ys, bounds=y_bounds, include_zero=include_zero_y))
            _thousands(ax.xaxis, xs)
        _decorate(ax, x_label, y_label, title)
        handles, labels = ax.get_legend_handles_labels()
        _legend(fig, ax, handles, labels)
    return fig


@dataclass(frozen=True)
class Bar:
    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class BarGroup:
    label: str
    bars: Sequence[Bar | None] = field(default_factory=tuple)  # one per series name, None: missing


VERTICAL_GROUPS = 6  # more groups than this: horizontal bars, one label per line


def bars(groups: Sequence[BarGroup], series: Sequence[str], *, y_label: str, title: str,
         colors: Sequence[str] | None = None, y_bounds: Bounds = UNIT) -> Figure:
    """Grouped bars from zero (one group per label, one bar per series) with CI whiskers. Up to
    VERTICAL_GROUPS groups stand upright with wrapped labels; more lie down, labels on the y-axis."""
    palette = list(colors or (MUTED, *PALETTE[1:]))
    horizontal = len(groups) > VERTICAL_GROUPS
    width = 0.8 / max(1, len(series))
    values = [v for g in groups for b in g.bars if b is not None for v in (b.value, b.low, b.high)]
    with _styled():
        fig = _new((SIZE[0], max(SIZE[1], 1.4 + 0.32 * len(groups))) if horizontal else SIZE)
        ax = fig.add_subplot()
        for si, name in enumerate(series):
            bars_ = [(gi, g.bars[si]) for gi, g in enumerate(groups)
                     if si < len(g.bars) and g.bars[si] is not None and _finite(g.bars[si].value)]
            pos = [gi - 0.4 + width * (si + 0.5) for gi, _ in bars_]
            vals = [b.value for _, b in bars_]
            color = palette[si % len(palette)]
            if horizontal:
                ax.barh(pos, vals, height=width * 0.9, color=color, label=name)
            else:
                ax.bar(pos, vals, width=width * 0.9, color=color, label=name)
            ci = [(x, b) for x, (_, b) in zip(pos, bars_) if _err(b.value, b.low, b.high)]
            if ci:
                err = [[b.value - b.low for _, b in ci], [b.high - b.value for _, b in ci]]
                err = [[max(0.0, e) for e in side] for side in err]
                at, vs = [x for x, _ in ci], [b.value for _, b in ci]
                kw = dict(fmt="none", ecolor=INK, elinewidth=1.1, capsize=3)
                if horizontal:
                    ax.errorbar(vs, at, xerr=err, **kw)
                else:
                    ax.errorbar(at, vs, yerr=err, **kw)
        lo, hi = limits(values, bounds=y_bounds, include_zero=True)
        lo = 0.0 if all(v >= 0 for v in values if _finite(v)) else lo
        ticks = list(range(len(groups)))
        if horizontal:
            ax.set_xlim(lo, hi)
            ax.set_yticks(ticks, [wrap(g.label, 32, max_lines=2) for g in groups])
            ax.set_ylim(len(groups) - 0.5, -0.5)  # first group on top
            ax.grid(False, axis="y")
            ax.set_xlabel(y_label)
            ax.set_title(wrap(title, 64))
        else:
            ax.set_ylim(lo, hi)
            chars = max(8, int(66 / max(1, len(groups))) - 2)
            ax.set_xticks(ticks, [wrap(g.label, chars, max_lines=3) for g in groups])
            ax.set_xlim(-0.6, len(groups) - 0.4)
            ax.grid(False, axis="x")
            _decorate(ax, "", y_label, title)
        handles, labels = ax.get_legend_handles_labels()
        _legend(fig, ax, handles, labels, outside=horizontal)  # inside, it would cover a bar
    return fig


# --------------------------------------------------------------------------------------------
# Output

SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_ID = re.compile(r' id="([^"]*)"')
_REFERENCE = re.compile(r'(?:url\(#|href="#)([^)"]+)')


def to_svg(fig: Figure, *, key: str = "plot", title: str = "") -> str:
    """``fig`` as one ``<svg>`` element for an HTML page: no XML declaration or doctype, no
    metadata, text as ``<text>``, only the ids something refers to (salted with ``key``, so
    the same figure gives the same bytes and plots of one page never share an id)."""
    buf = io.StringIO()
    with _styled(**{"svg.hashsalt": f"redteam:{key}"}):
        fig.savefig(buf, format="svg", metadata=SVG_METADATA)
    text = buf.getvalue()
    text = text[text.index("<svg"):].strip()
    used = set(_REFERENCE.findall(text))
    text = _ID.sub(lambda m: m.group(0) if m.group(1) in used else "", text)
    label = f' role="img" aria-label="{escape(title, quote=True)}"' if title else ""
    return text.replace("<svg ", f'<svg class="chart"{label} ', 1) + "\n"


def save(fig: Figure, folder: Path, name: str) -> list[Path]:
    """Write ``folder/name.png`` (PNG_DPI) and ``folder/name.pdf``; the paths written."""
    png, pdf = folder / f"{name}.png", folder / f"{name}.pdf"
    with _styled():
        fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
        fig.savefig(pdf, format="pdf", metadata={"Creator": None, "Producer": None, "CreationDate": None})
    return [png, pdf]
