"""The SVG charts: axis rules and coordinates checked against values worked out by hand."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from redteam.reports import svg


def parse(text: str) -> ET.Element:
    """The chart as XML (it must be well-formed), namespace stripped from the tags."""
    root = ET.fromstring(text)
    for el in root.iter():
        el.tag = el.tag.split("}")[-1]
    return root


def by_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [el for el in root.iter(tag) if cls in el.get("class", "").split()]


def f(el: ET.Element, name: str) -> float:
    return float(el.get(name))


def test_nice_axis_pads_rounds_and_clamps() -> None:
    # 0.1..0.5 padded by 5% of 0.4 -> 0.08..0.52; smallest nice step >= 0.44 / 8 = 0.055 is 0.1.
    axis = svg.nice_axis([0.1, 0.5], bounds=svg.UNIT)
    assert (axis.lo, axis.hi, axis.step) == (0.0, 0.6, 0.1)
    assert axis.ticks == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    # Queries from zero: 0..3000 -> 0..3150, step >= 393.75 -> 500.
    assert svg.nice_axis([750, 3000], bounds=svg.NON_NEGATIVE, include_zero=True).hi == 3500
    # A rate never goes past its bounds, a single value gets a range around it, NaN/None are ignored.
    assert svg.nice_axis([0.97, 1.0], bounds=svg.UNIT).hi == 1.0
    single = svg.nice_axis([0.25, None, float("nan")], bounds=svg.UNIT)
    assert single.lo < 0.25 < single.hi
    assert svg.nice_axis([], bounds=svg.UNIT).ticks == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert svg.tick_label(2500.0, 500.0) == "2,500" and svg.tick_label(0.25, 0.05) == "0.25"
    assert svg.tick_label(0.125, 0.025) == "0.125"


def test_scatter_two_points_with_ci_whiskers_at_hand_computed_coordinates() -> None:
    points = [
        svg.Point(x=0.2, x_low=0.1, x_high=0.3, y=0.5, y_low=0.4, y_high=0.6, label="attack-a", group="none"),
        svg.Point(x=0.4, x_low=0.3, x_high=0.5, y=0.7, y_low=0.6, y_high=0.8, label="attack-b", group="lorec"),
    ]
    root = parse(svg.scatter(points, x_label="ndcg@10", y_label="agreement@10", title="t"))
    # Frame(): plot area x 72..616 (544 wide), y 16..344 (328 high).
    # x axis 0.0..0.6 (0.1..0.5 padded, step 0.1); y axis 0.3..0.9 (0.4..0.8 padded, step 0.1).
    def px(v: float) -> float:
        return 72 + 544 * (v - 0.0) / 0.6

    def py(v: float) -> float:
        return 344 - 328 * (v - 0.3) / 0.6

    groups = by_class(root, "g", "point")
    assert [g.get("data-label") for g in groups] == ["attack-a", "attack-b"]
    assert len(by_class(root, "circle", "marker")) == 2
    expected = {"attack-a": (0.2, 0.1, 0.3, 0.5, 0.4, 0.6, "#0072B2"), "attack-b": (0.4, 0.3, 0.5, 0.7, 0.6, 0.8, "#D55E00")}
    for g in groups:
        x, xl, xh, y, yl, yh, color = expected[g.get("data-label")]
        (marker,) = by_class(g, "circle", "marker")
        assert f(marker, "cx") == pytest.approx(px(x), abs=0.01) and f(marker, "cy") == pytest.approx(py(y), abs=0.01)
        assert marker.get("fill") == color
        (ci_x,) = by_class(g, "line", "ci-x")
        assert [f(ci_x, k) for k in ("x1", "x2", "y1", "y2")] == pytest.approx([px(xl), px(xh), py(y), py(y)], abs=0.01)
        (ci_y,) = by_class(g, "line", "ci-y")
        assert [f(ci_y, k) for k in ("x1", "x2", "y1", "y2")] == pytest.approx([px(x), px(x), py(yl), py(yh)], abs=0.01)
        assert len(by_class(g, "line", "ci-cap")) == 4
    # Point a by hand: cx = 72 + 544/3 = 253.33, cy = 344 - 328/3 = 234.67; its x whisker spans 162.67..344.
    (a,) = [g for g in groups if g.get("data-label") == "attack-a"]
    assert f(by_class(a, "circle", "marker")[0], "cx") == pytest.approx(253.33, abs=0.01)
    assert f(by_class(a, "line", "ci-x")[0], "x1") == pytest.approx(162.67, abs=0.01)
    # Tick labels of both axes and a legend entry per defense.
    ticks = [t.text for t in by_class(root, "text", "tick")]
    assert ticks == ["0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6"]
    legend = [t.text for g in by_class(root, "g", "legend") for t in g.iter("text")]
    assert legend == ["none", "lorec"]


def test_scatter_without_intervals_draws_no_whiskers_and_escapes_labels() -> None:
    root = parse(svg.scatter([svg.Point(x=0.3, y=0.2, label="<b>&x", group="g")], x_label="x", y_label="y", title="<t>"))
    assert not by_class(root, "line", "ci-x") and not by_class(root, "line", "ci-y")
    assert by_class(root, "text", "point-label")[0].text == "<b>&x"  # escaped in the source, parsed back


def test_lines_and_bars() -> None:
    root = parse(svg.lines([svg.Series("a", [(2000, 0.5), (1000, 0.4)]), svg.Series("b", [(1000, 0.3)])],
                           x_label="queries", y_label="agreement@10", title="t"))
    series = by_class(root, "g", "series")
    assert [s.get("data-label") for s in series] == ["a", "b"]
    points = series[0].find("polyline").get("points").split()
    assert len(points) == 2 and float(points[0].split(",")[0]) < float(points[1].split(",")[0])  # sorted by x
    assert len(by_class(root, "circle", "marker")) == 3

    roc = parse(svg.lines([svg.Series("d", [(0.0, 0.0), (0.2, 0.8), (1.0, 1.0)])], x_label="fpr", y_label="tpr",
                          title="roc", x_axis=svg.fixed_axis(0, 1, 0.2), y_axis=svg.fixed_axis(0, 1, 0.2), diagonal=True))
    (diag,) = by_class(roc, "line", "diagonal")
    frame = svg.Frame()
    assert [f(diag, k) for k in ("x1", "y1", "x2", "y2")] == pytest.approx([frame.x0, frame.y1, frame.x1, frame.y0])

    root = parse(svg.bars([svg.BarGroup("p1", [svg.Bar(0.02, 0.01, 0.03), svg.Bar(0.4, 0.35, 0.45)]),
                           svg.BarGroup("p2", [None, svg.Bar(0.1)])], ["before", "after"], y_label="target_hr@50", title="t"))
    rects = by_class(root, "rect", "bar")
    assert [r.get("data-series") for r in rects] == ["before", "after", "after"]
    # Axis 0..0.5 (0..0.45 padded to 0.4725, step >= 0.059 -> 0.1); the 0.4 bar rises from y1=344 to 344 - 328 * 0.8.
    assert f(rects[1], "y") == pytest.approx(344 - 328 * 0.4 / 0.5, abs=0.01)
    assert f(rects[1], "height") == pytest.approx(328 * 0.4 / 0.5, abs=0.01)
    assert len(by_class(root, "line", "ci-y")) == 2  # the two bars with an interval
