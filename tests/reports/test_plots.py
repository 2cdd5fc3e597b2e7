"""The matplotlib plots: what each draws (checked on the Figure's artists), the inline SVG
(text as text, no prolog, same bytes for the same results), PNG and PDF files, and text that
never overlaps, also when every plot is crowded."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hand_built import crowded, defense_comparison

from redteam.reports import plots
from redteam.reports.figures import figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def svg_root(text: str) -> ET.Element:
    """The SVG as XML (it must be well-formed), namespace stripped from the tags."""
    root = ET.fromstring(text)
    for el in root.iter():
        el.tag = el.tag.split("}")[-1]
    return root


def svg_texts(text: str) -> list[str]:
    return ["".join(el.itertext()).strip() for el in svg_root(text).iter("text")]


def legend_texts(fig) -> list[str]:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def drawn_texts(fig) -> list[tuple[str, object]]:
    """(text, window extent) of every non-empty text the figure draws: titles, axis labels, tick
    labels inside the axis range, legend entries."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    outside = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * (hi - lo) <= tick.get_loc() <= hi + 1e-9 * (hi - lo):
                    outside.update((id(tick.label1), id(tick.label2)))  # not drawn
    return [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and id(t) not in outside]


def assert_readable(fig, name: str) -> None:
    """No two drawn texts intersect, and every one lies inside the picture."""
    texts = drawn_texts(fig)
    width, height = fig.canvas.get_width_height()
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        assert not box_a.overlaps(box_b), (name, a, b)
    for text, box in texts:
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, (name, text)


# --------------------------------------------------------------------------------------------
# Axis ranges


def test_limits_pad_and_stay_near_the_bounds() -> None:
    # 0.1..0.5 padded by 5% of 0.4 each side.
    assert plots.limits([0.1, 0.5], bounds=plots.UNIT) == pytest.approx((0.08, 0.52))
    # A rate stops 2% of the span past its bound (a marker on the bound stays whole).
    lo, hi = plots.limits([0.5, 1.0], bounds=plots.UNIT)
    assert hi == pytest.approx(1.01) and lo == pytest.approx(0.475)
    # Zero included for counts; None and NaN ignored; one value gets a range around it.
    assert plots.limits([750, 3000], bounds=plots.NON_NEGATIVE, include_zero=True) == pytest.approx((-60.0, 3150.0))
    lo, hi = plots.limits([0.25, None, float("nan")], bounds=plots.UNIT)
    assert lo < 0.25 < hi
    assert plots.limits([], bounds=plots.UNIT) == pytest.approx((-0.02, 1.02))


# --------------------------------------------------------------------------------------------
# What each plot draws


def two_points() -> list[plots.Point]:
    return [plots.Point(x=0.2, x_low=0.1, x_high=0.3, y=0.5, y_low=0.4, y_high=0.6, label="attack-a", group="none"),
            plots.Point(x=0.4, x_low=0.3, x_high=0.5, y=0.7, y_low=0.6, y_high=0.8, label="attack-b", group="lorec")]


def test_scatter_draws_each_point_with_its_ci_whiskers_and_names_it_in_the_legend() -> None:
    from matplotlib.container import ErrorbarContainer
    from matplotlib.figure import Figure

    fig = plots.scatter(two_points(), x_label="ndcg@10", y_label="agreement@10", title="t",
                        group_title="defense", label_title="attack")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(containers) == 2 and all(c.has_xerr and c.has_yerr for c in containers)
    for container, point in zip(containers, two_points()):
        line, _, (x_whisker, y_whisker) = container
        assert (line.get_xdata()[0], line.get_ydata()[0]) == (point.x, point.y)
        (x_segment,), (y_segment,) = x_whisker.get_segments(), y_whisker.get_segments()
        assert x_segment.ravel().tolist() == pytest.approx([point.x_low, point.y, point.x_high, point.y])
        assert y_segment.ravel().tolist() == pytest.approx([point.x, point.y_low, point.x, point.y_high])
    a, b = (c.lines[0] for c in containers)
    assert a.get_color() != b.get_color() and a.get_marker() != b.get_marker()  # colour = defense, marker = attack
    assert ax.get_xlabel() == "ndcg@10" and ax.get_ylabel() == "agreement@10" and ax.get_title() == "t"
    # Identified by the legend only (outside the axes), never by text next to a point.
    assert legend_texts(fig) == ["defense", "none", "lorec", "attack", "attack-a", "attack-b"]
    assert fig.legends and ax.get_legend() is None and not ax.texts
    assert ax.get_xlim() == pytest.approx(plots.limits([0.2, 0.1, 0.3, 0.4, 0.3, 0.5], bounds=plots.UNIT))


def test_scatter_without_intervals_draws_no_whiskers() -> None:
    fig = plots.scatter([plots.Point(x=0.3, y=0.2, label="<b>&x", group="g")], x_label="x", y_label="y", title="<t>")
    (container,) = fig.axes[0].containers
    assert not container.has_xerr and not container.has_yerr
    text = plots.to_svg(fig)
    assert "<b>&x" in svg_texts(text) and "<t>" in svg_texts(text)  # escaped in the source, parsed back


def test_lines_sort_by_x_and_roc_is_the_unit_square_with_the_chance_diagonal() -> None:
    fig = plots.lines([plots.Series("a", [(2000, 0.5), (1000, 0.4)]), plots.Series("b", [(1000, 0.3)])],
                      x_label="queries", y_label="agreement@10", title="t")
    a, b = fig.axes[0].get_lines()
    assert a.get_xdata().tolist() == [1000, 2000] and b.get_xdata().tolist() == [1000]
    assert fig.axes[0].get_legend() is not None and not fig.legends  # two entries: inside the axes
    assert fig.axes[0].get_xlim()[0] < 0 < 1000  # queries from zero

    roc = plots.lines([plots.Series("d", [(0.0, 0.0), (0.2, 0.8), (1.0, 1.0)])], x_label="fpr", y_label="tpr",
                      title="roc", unit_square=True, diagonal=True)
    ax = roc.axes[0]
    assert ax.get_xlim() == ax.get_ylim() == pytest.approx((-0.02, 1.02))
    assert [t for t in ax.get_xticks() if -1e-9 <= t <= 1 + 1e-9] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    diagonal = ax.get_lines()[-1]
    assert diagonal.get_label() == "chance (y = x)" and diagonal.get_xydata().ravel().tolist() == [0, 0, 1, 1]

    many = plots.lines([plots.Series(f"series {i}", [(0, i), (1, i)]) for i in range(5)], x_label="x",
                       y_label="y", title="t", y_bounds=(None, None))
    assert many.legends and many.axes[0].get_legend() is None  # five entries: right of the axes


def test_bars_rise_from_zero_with_whiskers_where_there_is_an_interval() -> None:
    from matplotlib.container import ErrorbarContainer
    from matplotlib.patches import Rectangle

    groups = [plots.BarGroup("p1", [plots.Bar(0.02, 0.01, 0.03), plots.Bar(0.4, 0.35, 0.45)]),
              plots.BarGroup("p2", [None, plots.Bar(0.1)])]
    fig = plots.bars(groups, ["before", "after"], y_label="target_hr@50", title="t")
    ax = fig.axes[0]
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [r.get_height() for r in rects] == pytest.approx([0.02, 0.4, 0.1])
    assert all(r.get_y() == 0 for r in rects) and ax.get_ylim()[0] == 0
    whiskers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert sum(len(c.lines[2][0].get_segments()) for c in whiskers) == 2  # the two bars with an interval
    assert [t.get_text() for t in ax.get_xticklabels()] == ["p1", "p2"]

    lying = plots.bars([plots.BarGroup(f"group {i}", [plots.Bar(0.1 * i)]) for i in range(8)], ["after"],
                       y_label="target_hr@50", title="t")
    ax = lying.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"group {i}" for i in range(8)]
    assert ax.get_xlabel() == "target_hr@50"


# --------------------------------------------------------------------------------------------
# SVG, PNG, PDF


def test_svg_is_one_inline_element_with_text_as_text(results) -> None:
    for fig in figures(results):
        text = fig.svg
        assert text.startswith("<svg ") and text.count("<svg") == 1 and text.rstrip().endswith("</svg>")
        assert "<?xml" not in text and "<!DOCTYPE" not in text and "<metadata" not in text
        root = svg_root(text)
        assert root.get("aria-label") == fig.title and root.get("role") == "img"
        drawn = fig.draw()
        ax = drawn.axes[0]
        texts = svg_texts(text)
        for label in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title(), *legend_texts(drawn)):
            assert all(line in texts for line in label.splitlines()), (fig.key, label)  # a <text> per line
        # Only ids something refers to, salted with the plot's key.
        ids = re.findall(r' id="([^"]*)"', text)
        assert all(f"#{i}" in text for i in ids), fig.key
    svgs = [fig.svg for fig in figures(results)]
    ids = [set(re.findall(r' id="([^"]*)"', s)) for s in svgs]
    assert all(not a & b for a, b in itertools.combinations(ids, 2))  # one page, no shared id


def test_svg_is_the_same_bytes_for_the_same_results(results) -> None:
    first = [f.svg for f in figures(results)]
    again = [f.svg for f in figures(defense_comparison())]
    assert first == again
    fig = figures(results)[0]
    assert plots.to_svg(fig.draw(), key=fig.key, title=fig.title) == fig.svg


def test_png_and_pdf_files(results, tmp_path: Path) -> None:
    from PIL import Image

    fig = next(f for f in figures(results) if f.key == "roc")
    drawn = fig.draw()
    png, pdf = plots.save(drawn, tmp_path, fig.key)
    assert (png.name, pdf.name) == ("roc.png", "roc.pdf")
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    with Image.open(png) as image:
        width, height = drawn.get_size_inches()
        assert image.size == (round(width * plots.PNG_DPI), round(height * plots.PNG_DPI))
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000


# --------------------------------------------------------------------------------------------
# Readability


@pytest.mark.parametrize("build", [defense_comparison, crowded], ids=["hand-built", "crowded"])
def test_no_text_overlaps_another_or_leaves_the_picture(build) -> None:
    figs = figures(build())
    assert figs
    for fig in figs:
        drawn = fig.draw()
        assert_readable(drawn, fig.key)
        ax = drawn.axes[0]
        assert ax.get_title() and (ax.get_xlabel() or fig.key.startswith("exposure")) and (ax.get_ylabel() or ax.get_xlabel())


def test_crowded_plots_move_the_legend_out_and_wrap_long_labels() -> None:
    figs = {f.key: f.draw() for f in figures(crowded())}
    for key in ("tradeoff-target_hr@50", "gcg-loss"):
        fig = figs[key]
        assert fig.legends and fig.axes[0].get_legend() is None, key
        texts = legend_texts(fig)
        assert any("\n" in t for t in texts), key  # long labels wrapped
        assert all(len(line) <= plots.LEGEND_WRAP for t in texts for line in t.splitlines()), key
        # The legend is right of the axes, not over them.
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        assert fig.legends[0].get_window_extent(renderer).x0 >= fig.axes[0].get_window_extent(renderer).x1
    exposure = figs["exposure-target_hr@50"]
    assert len(exposure.axes[0].get_yticklabels()) > plots.VERTICAL_GROUPS  # bars lie down: labels one per row


def test_matplotlib_is_imported_only_when_a_plot_is_drawn() -> None:
    code = ("import sys, redteam, redteam.reports, redteam.reports.html, redteam.reports.figures, redteam.reports.plots; "
            "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
