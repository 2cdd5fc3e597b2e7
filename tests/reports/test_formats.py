"""Report formats rendered from a hand-built results.json: JUnit, Markdown, HTML, JSON; and the
run directory getting the formats a scenario's ``output.formats`` asks for."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from redteam.reports import render
from redteam.reports.figures import figures, roc_auc

FAILED = {("target_hr@50 <= 0.2 [attack=poisoning.bandwagon]", "sasrec/poisoning.bandwagon/none"),
          ("ndcg@10 >= 0.1 [defense=dp]", "")}


# --------------------------------------------------------------------------------------------
# JUnit


def test_junit_has_one_case_per_gate_and_a_failure_for_each_failed_one(results) -> None:
    root = ET.fromstring(render(results, "junit"))
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "2", "0")
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "redteam.defense-comparison" and suite.get("tests") == "4" and suite.get("failures") == "2"
    cases = suite.findall("testcase")
    assert len(cases) == len(results["gates"]) == 4
    assert len({c.get("name") for c in cases}) == 4  # each gate outcome its own, distinguishable case
    for case, gate in zip(cases, results["gates"]):
        assert case.get("classname") == "redteam.defense-comparison"
        assert case.get("name").startswith(gate["gate"])
        where = "/".join(gate[k] for k in ("victim", "attack", "defense") if k in gate)
        assert where in case.get("name")  # which defense failed which bound
        failures = case.findall("failure")
        if gate["held"]:
            assert failures == []
        else:
            (failure,) = failures
            assert failure.get("message") == gate["reason"] and failure.get("type") == "GateFailed"
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["target_hr@50 <= 0.2 [attack=poisoning.bandwagon] :: sasrec/poisoning.bandwagon/none",
                      "ndcg@10 >= 0.1 [defense=dp]"]
    assert "target_hr@50 = 0.4000 [0.3500, 0.4500]" in cases[1].find("failure").text
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["dataset_checksum"] == "0123456789abcdef" and props["fingerprint"] == "abc123def0"


def test_junit_without_gates_is_an_empty_suite(results) -> None:
    results["gates"] = []
    root = ET.fromstring(render(results, "junit"))
    assert root.get("tests") == "0" and root.find("testsuite").findall("testcase") == []


# --------------------------------------------------------------------------------------------
# Markdown


def md_tables(text: str) -> list[list[list[str]]]:
    """Each Markdown table as rows of cells (separator line dropped)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if not set(line) <= set("|-: "):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_markdown_summary_has_verdict_protocol_results_and_gates(results) -> None:
    text = render(results, "md")
    first = text.splitlines()[0]
    assert first == "### ❌ redteam `defense-comparison`: 2 of 4 gate checks FAILED"
    assert "full ranking over all 1000 items" in text and "test users: 1,800" in text and "checksum 0123456789abcdef" in text
    rows, gates = md_tables(text)
    assert rows[0] == ["victim", "attack", "defense", "hr@10", "ndcg@10", "agr@10", "target_hr@50", "queries", "seconds"]
    assert len(rows) == 1 + 5
    assert rows[4][:3] == ["sasrec", "poisoning.bandwagon", "none"]
    assert rows[4][6] == "0.400 [0.350, 0.450]" and rows[3][7] == "20,000"
    assert gates[0] == ["outcome", "gate", "row", "value", "reason"] and len(gates) == 1 + 4
    assert [g[0] for g in gates[1:]] == ["✅ held", "❌ failed", "✅ held", "❌ failed"]
    assert gates[2][2] == "sasrec/poisoning.bandwagon/none" and gates[2][4] == "0.4 > max 0.2"
    assert "<details><summary>Protocol and versions</summary>" in text and "torch 2.13.0+cpu" in text


def test_markdown_escapes_pipes_and_reports_held_gates(results) -> None:
    results["rows"][0]["victim"] = "a|b"
    results["gates"] = [g for g in results["gates"] if g["held"]]
    text = render(results, "md")
    assert text.splitlines()[0] == "### ✅ redteam `defense-comparison`: all 2 gate checks held"
    assert "| a\\|b | none |" in text


# --------------------------------------------------------------------------------------------
# HTML (static checks; tests/reports/test_html_chromium.py renders it)


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.figures: list[str] = []
        self.svgs_in_figures = 0
        self._in_figure = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "figure":
            self.figures.append(attrs.get("data-plot"))
            self._in_figure += 1
        if tag == "svg" and self._in_figure:
            self.svgs_in_figures += 1

    def handle_endtag(self, tag):
        if tag == "figure":
            self._in_figure -= 1


def test_html_is_self_contained_and_holds_protocol_tables_and_every_plot(results) -> None:
    text = render(results, "html")
    page = Page()
    page.feed(text)
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    for _, attrs in page.tags:
        assert "src" not in attrs and not str(attrs.get("href", "#")).startswith(("http", "//"))
    lowered = text.lower()
    assert "@import" not in lowered and not re.search(r"url\((?!#)", lowered)  # url(#id): a clip path in the page
    namespaces = ('xmlns="http://www.w3.org/2000/svg"', 'xmlns:xlink="http://www.w3.org/1999/xlink"')
    assert lowered.count("http") == sum(lowered.count(n) for n in namespaces)  # only the SVG namespaces
    for label in ("data", "split", "candidates", "K", "test users", "seeds", "versions"):
        assert f"<dt>{label}</dt>" in text
    assert "full ranking over all 1000 items (no sampled negatives)" in text and "torch 2.13.0+cpu" in text
    assert 'class="verdict failed"' in text and "2 of 4 gate checks FAILED" in text
    assert page.figures == ["tradeoff-agreement@10", "tradeoff-target_hr@50", "budget-agreement@10",
                            "exposure-target_hr@50", "roc"]
    assert page.svgs_in_figures == 5  # one <svg> per plot
    assert "<?xml" not in text and "<!doctype svg" not in lowered
    # Text as text: the axis labels and legend entries of the plots are on the page.
    for label in ("clean accuracy: victim ndcg@10", "attack success: target_hr@50", "queries used",
                  "false-positive rate", "before attack", "after attack", "lorec", "chance (y = x)"):
        assert f">{label}</text>" in text, label
    assert text.count('<tr class="failed">') == 2 and "no result row matches this gate" in text


def test_figures_read_the_documented_results_keys(results) -> None:
    figs = {f.key: f for f in figures(results)}
    # Extraction: x is the victim's own clean row (0.30), not the surrogate's ndcg (0.25).
    head, rows = figs["tradeoff-agreement@10"].table
    assert rows == [["extraction.fewshot", "none", "0.3000 [0.2700, 0.3300]", "0.6200 [0.6000, 0.6400]"]]
    # Poisoning: one point per defense, x = the attacked row's own ndcg@10.
    head, rows = figs["tradeoff-target_hr@50"].table
    assert [(r[0], r[1], r[3][:6]) for r in rows] == [("poisoning.bandwagon", "none", "0.4000"),
                                                      ("poisoning.bandwagon", "lorec", "0.1000")]
    (ax,) = figs["tradeoff-target_hr@50"].draw().axes
    assert [(c.lines[0].get_xdata()[0], c.lines[0].get_ydata()[0]) for c in ax.containers] == [(0.29, 0.40), (0.27, 0.10)]
    # Exposure: before = the clean row of the same defense.
    head, rows = figs["exposure-target_hr@50"].table
    assert rows == [["poisoning.bandwagon", "0.0200 [0.0100, 0.0300]", "0.4000 [0.3500, 0.4500]"],
                    ["poisoning.bandwagon / lorec", "0.0200 [0.0100, 0.0300]", "0.1000 [0.0700, 0.1300]"]]
    (ax,) = figs["exposure-target_hr@50"].draw().axes
    assert sorted(round(p.get_height(), 4) for p in ax.patches) == [0.02, 0.02, 0.1, 0.4]
    assert "AUC\u00a00.860" in figs["roc"].svg  # a no-break space: wrapping never splits it
    assert [r[1] for r in figs["budget-agreement@10"].table[1]] == ["5,000", "10,000", "20,000"]


def test_plots_appear_only_for_what_the_run_holds(results) -> None:
    results["curves"] = [c for c in results["curves"] if c["metric"] != "roc"]
    results["rows"] = [r for r in results["rows"] if not r["attack"].startswith("poisoning")]
    for r in results["rows"]:
        r["metrics"].pop("target_hr@50", None)
    assert [f.key for f in figures(results)] == ["tradeoff-agreement@10", "budget-agreement@10"]
    results["rows"] = [r for r in results["rows"] if r["attack"] == "none"]
    results["curves"] = []
    assert figures(results) == []
    assert "No plots: this run has no attack rows" in render(results, "html")


def test_roc_auc_by_trapezoids() -> None:
    assert roc_auc([(0.0, 1.0)]) == pytest.approx(1.0)
    assert roc_auc([(0.5, 0.5)]) == pytest.approx(0.5)
    assert roc_auc([(0.2, 0.6)]) == pytest.approx(0.2 * 0.3 + 0.8 * 0.8)


def test_json_format_is_the_results_file_itself(results) -> None:
    assert json.loads(render(results, "json")) == results


# --------------------------------------------------------------------------------------------
# output.formats through a run


SCENARIO = {
    "name": "formats",
    "seed": 1,
    "dataset": {"name": "synthetic", "users": 200, "items": 80},
    "victims": [{"name": "popularity"}],
    "eval": {"k": [10], "bootstrap": 20},
    "gates": [{"metric": "ndcg@10", "min": 0.0}, {"metric": "ndcg@10", "max": 0.0001}],
    "runtime": {"threads": 1},
}


def test_run_writes_the_formats_the_scenario_asks_for(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SCENARIO, "output": {"formats": ["json", "html", "junit", "md"]}}))
    result = run_cli("run", path, "--out", tmp_path / "runs", "-q")
    assert result.code == 1, result  # the second gate fails: the reports are still written
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert {"results.json", "report.html", "junit.xml", "report.md"} <= {p.name for p in run_dir.iterdir()}
    results = json.loads((run_dir / "results.json").read_text())
    # Projections of the file: rendering results.json again gives the same bytes.
    source = f"{run_dir.name}/results.json"
    assert (run_dir / "report.html").read_text() == render(results, "html", source=source)
    assert (run_dir / "report.md").read_text() == render(results, "md")
    junit = ET.fromstring((run_dir / "junit.xml").read_text())
    assert (junit.get("tests"), junit.get("failures")) == ("2", "1")

    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({**SCENARIO, "name": "plain", "gates": []}))
    assert run_cli("run", plain, "--out", tmp_path / "plain-runs", "-q").code == 0
    (run_dir,) = (tmp_path / "plain-runs").iterdir()
    assert not {"report.html", "junit.xml", "report.md"} & {p.name for p in run_dir.iterdir()}


def test_unknown_output_format_is_a_config_error(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SCENARIO, "output": {"formats": ["pdf"]}}))
    result = run_cli("run", path, "--out", tmp_path / "runs", "-q")
    assert result.code == 2 and result.stderr.count("\n") == 1, result
    assert "output.formats.0: Input should be 'json', 'html', 'junit' or 'md'" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_clean_accuracy_falls_back_to_the_runs_smallest_ndcg(results) -> None:
    for r in results["rows"]:
        if "ndcg@10" in r["metrics"]:
            r["metrics"]["ndcg@20"] = r["metrics"].pop("ndcg@10")
    fig = next(f for f in figures(results) if f.key == "tradeoff-agreement@10")
    assert "clean accuracy (ndcg@20)" in fig.title and fig.table[1][0][2].startswith("0.3000")


def test_a_failing_report_does_not_cost_the_run(run_cli, tmp_path: Path, monkeypatch) -> None:
    import redteam.reports.markdown as markdown

    def broken(results):
        raise RuntimeError("boom")

    monkeypatch.setattr(markdown, "render_markdown", broken)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SCENARIO, "gates": [], "output": {"formats": ["json", "md", "junit"]}}))
    result = run_cli("run", path, "--out", tmp_path / "runs", "-q")
    assert result.code == 0, result
    assert result.stderr == ("warning: report.md not written (RuntimeError: boom); "
                             "render it later with `redteam report RUN_DIR --format md`\n")
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert {p.name for p in run_dir.iterdir()} >= {"results.json", "junit.xml"} and not (run_dir / "report.md").exists()


def test_the_terminal_report_reads_in_80_columns(results) -> None:
    """Row labels are stacked and folded, never cut: every attack's full name is on screen."""
    import io

    from rich.console import Console

    from redteam.reports.terminal import render as render_terminal

    out = io.StringIO()
    render_terminal(results, Console(file=out, width=80, color_system=None))
    text = out.getvalue()
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    for name in ("extraction.fewshot", "poisoning.bandwagon", "lorec"):
        assert name in text
