"""Hand-written inline SVG charts: pure functions from numbers to one ``<svg>`` string.

No JavaScript, no fonts or styles to fetch. Coordinates follow fixed, documented rules so a test
can compute them by hand: a :class:`Frame` gives the plot area, :func:`nice_axis` the domain of
each axis (data range padded by 5% each side, kept inside the metric's bounds, then widened to
whole multiples of the smallest 1/2/2.5/5 x 10^k step that splits it into at most 8 parts), and a value ``v`` maps linearly onto the plot area::

    px = frame.x0 + (v - axis.lo) / (axis.hi - axis.lo) * (frame.x1 - frame.x0)
    py = frame.y1 - (v - axis.lo) / (axis.hi - axis.lo) * (frame.y1 - frame.y0)

A legend, when there is one, sits below the frame and makes the picture taller, never the plot
area smaller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MUTED = "#8c8c8c"
GRID, AXIS, INK = "#e3e3e3", "#555555", "#222222"
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\""
CHAR_WIDTH = 6.6  # estimated width of one character at 12px, for layout only
LEGEND_ROW = 18

Bounds = tuple[float | None, float | None]
UNIT: Bounds = (0.0, 1.0)
NON_NEGATIVE: Bounds = (0.0, None)


@dataclass(frozen=True)
class Frame:
    """The picture's size and the margins around the plot area (in SVG user units)."""

    width: float = 640
    height: float = 400
    left: float = 72
    right: float = 24
    top: float = 16
    bottom: float = 56

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        return self.top

    @property
    def y1(self) -> float:
        return self.height - self.bottom


@dataclass(frozen=True)
class Axis:
    lo: float
    hi: float
    ticks: tuple[float, ...]
    step: float

    def x(self, value: float, frame: Frame) -> float:
        return frame.x0 + (value - self.lo) / (self.hi - self.lo) * (frame.x1 - frame.x0)

    def y(self, value: float, frame: Frame) -> float:
        return frame.y1 - (value - self.lo) / (self.hi - self.lo) * (frame.y1 - frame.y0)


def nice_step(span: float, target: int = 8) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k that is at least ``span / target``."""
    raw = span / target
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * magnitude >= raw * (1 - 1e-9):
            return m * magnitude
    return 10.0 * magnitude


def nice_axis(values: Sequence[float | None], *, bounds: Bounds = (None, None), pad: float = 0.05,
              include_zero: bool = False, target: int = 8) -> Axis:
    """An axis covering ``values`` (None/NaN ignored): padded, rounded to nice ticks, clamped."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        half = abs(hi) * 0.1 or 0.1
        lo, hi = lo - half, hi + half
    span = hi - lo
    lo, hi = _clamp(lo - pad * span, bounds), _clamp(hi + pad * span, bounds)
    step = nice_step(hi - lo, target)
    lo = _clamp(math.floor(lo / step + 1e-9) * step, bounds)
    hi = _clamp(math.ceil(hi / step - 1e-9) * step, bounds)
    n = int(round((hi - lo) / step))
    ticks = tuple(round(lo + i * step, 10) for i in range(n + 1) if lo + i * step <= hi + step * 1e-9)
    return Axis(lo=round(lo, 10), hi=round(hi, 10), ticks=ticks, step=step)


def fixed_axis(lo: float, hi: float, step: float) -> Axis:
    n = int(round((hi - lo) / step))
    return Axis(lo=lo, hi=hi, ticks=tuple(round(lo + i * step, 10) for i in range(n + 1)), step=step)


def _clamp(v: float, bounds: Bounds) -> float:
    low, high = bounds
    if low is not None:
        v = max(v, low)
    if high is not None:
        v = min(v, high)
    return v


def tick_label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(step / 10.0 ** math.floor(math.log10(step) + 1e-9) - 2.5) < 1e-9:
        decimals += 1
    return f"{value:,.{decimals}f}"


def _n(v: float) -> str:
    """A coordinate with two decimals at most."""
    return f"{round(v, 2):g}"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


# --------------------------------------------------------------------------------------------
# Pieces


def _open(frame: Frame, legend_rows: int, title: str, kind: str) -> tuple[str, float]:
    total = frame.height + (legend_rows * LEGEND_ROW + 8 if legend_rows else 0)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" viewBox="0 0 {_n(frame.width)} {_n(total)}" '
            f'width="{_n(frame.width)}" height="{_n(total)}" role="img" {FONT} font-size="12">'
            f"<title>{_e(title)}</title>")
    return head, total


def _axes(frame: Frame, xa: Axis | None, ya: Axis, x_label: str, y_label: str) -> str:
    parts = ['<g class="axes">']
    for t in ya.ticks:
        y = ya.y(t, frame)
        parts.append(f'<line class="grid" x1="{_n(frame.x0)}" x2="{_n(frame.x1)}" y1="{_n(y)}" y2="{_n(y)}" stroke="{GRID}"/>')
        parts.append(f'<text class="tick" x="{_n(frame.x0 - 6)}" y="{_n(y + 4)}" text-anchor="end" fill="{AXIS}" '
                     f'font-size="11">{_e(tick_label(t, ya.step))}</text>')
    if xa is not None:
        for t in xa.ticks:
            x = xa.x(t, frame)
            parts.append(f'<line class="grid" x1="{_n(x)}" x2="{_n(x)}" y1="{_n(frame.y0)}" y2="{_n(frame.y1)}" stroke="{GRID}"/>')
            parts.append(f'<text class="tick" x="{_n(x)}" y="{_n(frame.y1 + 16)}" text-anchor="middle" fill="{AXIS}" '
                         f'font-size="11">{_e(tick_label(t, xa.step))}</text>')
    parts.append(f'<line class="axis" x1="{_n(frame.x0)}" x2="{_n(frame.x1)}" y1="{_n(frame.y1)}" y2="{_n(frame.y1)}" stroke="{AXIS}"/>')
    parts.append(f'<line class="axis" x1="{_n(frame.x0)}" x2="{_n(frame.x0)}" y1="{_n(frame.y0)}" y2="{_n(frame.y1)}" stroke="{AXIS}"/>')
    parts.append(f'<text class="label" x="{_n((frame.x0 + frame.x1) / 2)}" y="{_n(frame.height - 14)}" '
                 f'text-anchor="middle" fill="{INK}">{_e(x_label)}</text>')
    cy = (frame.y0 + frame.y1) / 2
    parts.append(f'<text class="label" x="16" y="{_n(cy)}" text-anchor="middle" fill="{INK}" '
                 f'transform="rotate(-90 16 {_n(cy)})">{_e(y_label)}</text>')
    parts.append("</g>")
    return "".join(parts)


def _legend_layout(entries: Sequence[tuple[str, str]], frame: Frame) -> list[tuple[float, int, str, str]]:
    """(x, row, label, color) for each entry, wrapped to the frame's width."""
    out, x, row = [], frame.x0, 0
    for label, color in entries:
        width = 14 + 6 + CHAR_WIDTH * len(label) + 18
        if x > frame.x0 and x + width > frame.width - 4:
            x, row = frame.x0, row + 1
        out.append((x, row, label, color))
        x += width
    return out


def _legend(layout: list[tuple[float, int, str, str]], frame: Frame, *, dashed: Sequence[str] = ()) -> str:
    parts = ['<g class="legend">']
    for x, row, label, color in layout:
        y = frame.height + 4 + row * LEGEND_ROW + LEGEND_ROW / 2
        dash = ' stroke-dasharray="5 3"' if label in dashed else ""
        parts.append(f'<line x1="{_n(x)}" x2="{_n(x + 14)}" y1="{_n(y)}" y2="{_n(y)}" stroke="{color}" stroke-width="3"{dash}/>')
        parts.append(f'<text x="{_n(x + 20)}" y="{_n(y + 4)}" fill="{INK}">{_e(label)}</text>')
    parts.append("</g>")
    return "".join(parts)


def _colors(keys: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in keys:
        if key not in out:
            out[key] = PALETTE[len(out) % len(PALETTE)]
    return out


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


# --------------------------------------------------------------------------------------------
# Charts


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


def scatter(points: Sequence[Point], *, x_label: str, y_label: str, title: str, frame: Frame = Frame(),
            x_bounds: Bounds = UNIT, y_bounds: Bounds = UNIT, group_title: str = "") -> str:
    """One marker per point with horizontal and vertical CI whiskers; colour = ``group``."""
    points = [p for p in points if _finite(p.x, p.y)]
    xa = nice_axis([v for p in points for v in (p.x, p.x_low, p.x_high)], bounds=x_bounds)
    ya = nice_axis([v for p in points for v in (p.y, p.y_low, p.y_high)], bounds=y_bounds)
    colors = _colors([p.group for p in points])
    layout = _legend_layout([(f"{group_title}{g}", c) for g, c in colors.items()], frame)
    head, _ = _open(frame, max((r for _, r, _, _ in layout), default=-1) + 1, title, "scatter")
    parts = [head, _axes(frame, xa, ya, x_label, y_label), '<g class="points">']
    for p in points:
        cx, cy, color = xa.x(p.x, frame), ya.y(p.y, frame), colors[p.group]
        tip = f"{p.label} [{p.group}]: {x_label} {p.x:.4f}, {y_label} {p.y:.4f}"
        parts.append(f'<g class="point" data-label="{_e(p.label)}" data-group="{_e(p.group)}"><title>{_e(tip)}</title>')
        if _finite(p.x_low, p.x_high) and p.x_low != p.x_high:
            lo, hi = xa.x(p.x_low, frame), xa.x(p.x_high, frame)
            parts.append(f'<line class="ci-x" x1="{_n(lo)}" x2="{_n(hi)}" y1="{_n(cy)}" y2="{_n(cy)}" stroke="{color}" stroke-width="1.5"/>')
            for x in (lo, hi):
                parts.append(f'<line class="ci-cap" x1="{_n(x)}" x2="{_n(x)}" y1="{_n(cy - 4)}" y2="{_n(cy + 4)}" stroke="{color}"/>')
        if _finite(p.y_low, p.y_high) and p.y_low != p.y_high:
            lo, hi = ya.y(p.y_low, frame), ya.y(p.y_high, frame)
            parts.append(f'<line class="ci-y" x1="{_n(cx)}" x2="{_n(cx)}" y1="{_n(lo)}" y2="{_n(hi)}" stroke="{color}" stroke-width="1.5"/>')
            for y in (lo, hi):
                parts.append(f'<line class="ci-cap" x1="{_n(cx - 4)}" x2="{_n(cx + 4)}" y1="{_n(y)}" y2="{_n(y)}" stroke="{color}"/>')
        parts.append(f'<circle class="marker" cx="{_n(cx)}" cy="{_n(cy)}" r="5" fill="{color}" stroke="white" stroke-width="1"/>')
        right = cx > frame.x1 - CHAR_WIDTH * len(p.label) - 12
        tx = cx - 8 if right else cx + 8
        parts.append(f'<text class="point-label" x="{_n(tx)}" y="{_n(cy - 7)}" text-anchor="{"end" if right else "start"}" '
                     f'fill="{INK}" font-size="11">{_e(p.label)}</text></g>')
    parts.append("</g>")
    parts.append(_legend(layout, frame))
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False


def lines(series: Sequence[Series], *, x_label: str, y_label: str, title: str, frame: Frame = Frame(),
          x_axis: Axis | None = None, y_axis: Axis | None = None, x_bounds: Bounds = NON_NEGATIVE,
          y_bounds: Bounds = UNIT, include_zero_x: bool = True, diagonal: bool = False) -> str:
    """One polyline with markers per series (points sorted by x); ``diagonal``: a dashed y = x."""
    cleaned = [Series(s.label, sorted((x, y) for x, y in s.points if _finite(x, y)), s.dashed) for s in series]
    xa = x_axis or nice_axis([x for s in cleaned for x, _ in s.points], bounds=x_bounds, include_zero=include_zero_x)
    ya = y_axis or nice_axis([y for s in cleaned for _, y in s.points], bounds=y_bounds)
    colors = _colors([s.label for s in cleaned])
    entries = [(s.label, colors[s.label]) for s in cleaned]
    if diagonal:
        entries.append(("chance (y = x)", MUTED))
    layout = _legend_layout(entries, frame)
    head, _ = _open(frame, max((r for _, r, _, _ in layout), default=-1) + 1, title, "lines")
    parts = [head, _axes(frame, xa, ya, x_label, y_label)]
    if diagonal:
        lo, hi = max(xa.lo, ya.lo), min(xa.hi, ya.hi)
        parts.append(f'<line class="diagonal" x1="{_n(xa.x(lo, frame))}" y1="{_n(ya.y(lo, frame))}" '
                     f'x2="{_n(xa.x(hi, frame))}" y2="{_n(ya.y(hi, frame))}" stroke="{MUTED}" stroke-dasharray="5 3"/>')
    parts.append('<g class="series-all">')
    for s in cleaned:
        color = colors[s.label]
        coords = " ".join(f"{_n(xa.x(x, frame))},{_n(ya.y(y, frame))}" for x, y in s.points)
        dash = ' stroke-dasharray="6 3"' if s.dashed else ""
        parts.append(f'<g class="series" data-label="{_e(s.label)}"><title>{_e(s.label)}</title>'
                     f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for x, y in s.points:
            parts.append(f'<circle class="marker" cx="{_n(xa.x(x, frame))}" cy="{_n(ya.y(y, frame))}" r="3.5" fill="{color}">'
                         f"<title>{_e(f'{s.label}: {x_label} {x:,.4g}, {y_label} {y:.4f}')}</title></circle>")
        parts.append("</g>")
    parts.append("</g>")
    parts.append(_legend(layout, frame, dashed=[s.label for s in cleaned if s.dashed] + (["chance (y = x)"] if diagonal else [])))
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Bar:
    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class BarGroup:
    label: str
    bars: Sequence[Bar | None] = field(default_factory=tuple)  # one per series name, None: missing


def bars(groups: Sequence[BarGroup], series: Sequence[str], *, y_label: str, title: str, frame: Frame = Frame(),
         colors: Sequence[str] | None = None, y_bounds: Bounds = UNIT) -> str:
    """Grouped bars (one group per label, one bar per series) with CI whiskers, from zero."""
    palette = list(colors or (MUTED, *PALETTE[1:]))
    values = [v for g in groups for b in g.bars if b is not None for v in (b.value, b.low, b.high)]
    ya = nice_axis(values, bounds=y_bounds, include_zero=True)
    layout = _legend_layout([(name, palette[i % len(palette)]) for i, name in enumerate(series)], frame)
    head, _ = _open(frame, max((r for _, r, _, _ in layout), default=-1) + 1, title, "bars")
    parts = [head, _axes(frame, None, ya, "", y_label), '<g class="groups">']
    slot = (frame.x1 - frame.x0) / max(1, len(groups))
    width = min(36.0, slot * 0.8 / max(1, len(series)))
    base = ya.y(max(ya.lo, 0.0), frame)
    max_chars = max(4, int(slot / CHAR_WIDTH))
    for gi, group in enumerate(groups):
        center = frame.x0 + slot * (gi + 0.5)
        start = center - width * len(series) / 2
        parts.append(f'<g class="group" data-label="{_e(group.label)}"><title>{_e(group.label)}</title>')
        for si, bar in enumerate(group.bars):
            if bar is None or not _finite(bar.value):
                continue
            x, top, color = start + si * width, ya.y(bar.value, frame), palette[si % len(palette)]
            tip = f"{group.label}, {series[si]}: {bar.value:.4f}"
            parts.append(f'<rect class="bar" data-series="{_e(series[si])}" x="{_n(x + 1)}" y="{_n(min(top, base))}" '
                         f'width="{_n(width - 2)}" height="{_n(abs(base - top))}" fill="{color}"><title>{_e(tip)}</title></rect>')
            if _finite(bar.low, bar.high) and bar.low != bar.high:
                cx, lo, hi = x + width / 2, ya.y(bar.low, frame), ya.y(bar.high, frame)
                parts.append(f'<line class="ci-y" x1="{_n(cx)}" x2="{_n(cx)}" y1="{_n(lo)}" y2="{_n(hi)}" stroke="{INK}"/>')
                for y in (lo, hi):
                    parts.append(f'<line class="ci-cap" x1="{_n(cx - 4)}" x2="{_n(cx + 4)}" y1="{_n(y)}" y2="{_n(y)}" stroke="{INK}"/>')
        text = group.label if len(group.label) <= max_chars else group.label[: max_chars - 1] + "…"
        parts.append(f'<text class="group-label" x="{_n(center)}" y="{_n(frame.y1 + 16)}" text-anchor="middle" '
                     f'fill="{INK}" font-size="11">{_e(text)}</text></g>')
    parts.append("</g>")
    parts.append(_legend(layout, frame))
    parts.append("</svg>")
    return "".join(parts)
