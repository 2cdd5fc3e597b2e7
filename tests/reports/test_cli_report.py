"""``redteam report RUN_DIR --format F``: every format from a run directory, and one-line errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from redteam.reports import render


@pytest.mark.parametrize("fmt", ["html", "json", "junit", "md"])
def test_report_prints_each_format(fmt, run_cli, run_dir: Path, results: dict) -> None:
    result = run_cli("report", run_dir, "--format", fmt)
    assert result.code == 0, result
    assert result.stdout == render(results, fmt, source=str(run_dir / "results.json"))


def test_report_to_a_file_and_from_the_results_file(run_cli, run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ci" / "junit.xml"
    result = run_cli("report", run_dir, "-f", "junit", "-o", out)
    assert result.code == 0 and result.stdout == "" and result.stderr == f"wrote {out}\n", result
    assert len(ET.fromstring(out.read_text()).find("testsuite").findall("testcase")) == 4
    direct = run_cli("report", run_dir / "results.json", "-f", "md")
    assert direct.code == 0 and direct.stdout.startswith("### ❌ redteam `defense-comparison`")


def test_terminal_report_shows_tables_curves_and_roc(run_cli, run_dir: Path) -> None:
    result = run_cli("report", run_dir)
    assert result.code == 0, result
    for text in ("protocol", "defense-comparison", "poisoning.bandwagon", "lorec", "budget curve: agreement@10",
                 "20,000: 0.620", "detector ROC curves", "0.860", "FAILED", "no result row matches this gate"):
        assert text in result.stdout, text


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [
        (None, ["{tmp}/nope"], "error: run directory not found: {tmp}/nope"),
        ("empty", ["{tmp}/run"], "error: {tmp}/run: no results.json (not a run directory)"),
        ("broken", ["{tmp}/run"], "error: {tmp}/run/results.json: not valid JSON (line 1: "),
        ("no-rows", ["{tmp}/run"], "error: {tmp}/run/results.json: not a redteam results file (missing 'rows')"),
        ("bad-row", ["{tmp}/run", "-f", "html"], "error: {tmp}/run/results.json: rows[0] needs the keys victim, attack, defense, metrics"),
        ("malformed", ["{tmp}/run", "-f", "html"], "error: {tmp}/run/results.json: malformed results"),
        ("ok", ["{tmp}/run", "-o", "{tmp}/x.txt"], "error: --output: the terminal report goes to stdout"),
    ],
)
def test_report_bad_input_exits_2_with_one_line(setup, args, expected, run_cli, tmp_path: Path, results: dict) -> None:
    run = tmp_path / "run"
    if setup:
        run.mkdir()
        file = run / "results.json"
        if setup == "broken":
            file.write_text("{")
        elif setup == "no-rows":
            file.write_text(json.dumps({"scenario": {}}))
        elif setup == "bad-row":
            file.write_text(json.dumps({"scenario": {}, "rows": [{"victim": "v"}]}))
        elif setup == "malformed":
            results["rows"][0]["metrics"]["ndcg@10"] = {"ci_low": 0}  # no value
            file.write_text(json.dumps(results))
        elif setup == "ok":
            file.write_text(json.dumps(results))
    result = run_cli("report", *[a.format(tmp=tmp_path) for a in args])
    assert result.code == 2, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(expected.format(tmp=tmp_path)), result.stderr
    assert result.stdout == ""


def test_unknown_format_is_a_usage_error(run_cli, run_dir: Path) -> None:
    assert run_cli("report", run_dir, "--format", "pdf").code == 2


# --------------------------------------------------------------------------------------------
# --format figures: PNG and PDF per plot


PLOTS = ["tradeoff-agreement@10", "tradeoff-target_hr@50", "budget-agreement@10", "exposure-target_hr@50", "roc"]


def check_plot_files(folder: Path, keys: list[str]) -> None:
    from PIL import Image

    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{k}.{ext}" for k in keys for ext in ("png", "pdf"))
    for key in keys:
        png = (folder / f"{key}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000, key
        with Image.open(folder / f"{key}.png") as image:
            image.verify()  # decodes as a PNG
        assert (folder / f"{key}.pdf").read_bytes()[:5] == b"%PDF-", key


def test_figures_writes_png_and_pdf_per_plot_into_the_run_directory(run_cli, run_dir: Path) -> None:
    result = run_cli("report", run_dir, "--format", "figures")
    assert result.code == 0, result
    folder = run_dir / "figures"
    assert result.stdout == "" and result.stderr == f"wrote 5 plots (PNG and PDF) to {folder}\n"
    check_plot_files(folder, PLOTS)


def test_figures_to_another_folder_and_from_the_results_file(run_cli, run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "paper" / "figs"
    result = run_cli("report", run_dir / "results.json", "-f", "figures", "-o", out)
    assert result.code == 0 and result.stderr == f"wrote 5 plots (PNG and PDF) to {out}\n", result
    check_plot_files(out, PLOTS)
    assert not (run_dir / "figures").exists()
    direct = run_cli("report", run_dir / "results.json", "-f", "figures")  # next to the results file
    assert direct.code == 0, direct
    check_plot_files(run_dir / "figures", PLOTS)


def test_figures_of_a_run_without_plots_write_nothing(run_cli, tmp_path: Path, results: dict) -> None:
    run = tmp_path / "run"
    run.mkdir()
    results["rows"] = [r for r in results["rows"] if r["attack"] == "none"]
    results["curves"] = []
    (run / "results.json").write_text(json.dumps(results))
    result = run_cli("report", run, "-f", "figures")
    assert result.code == 0, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"no plots: {run / 'results.json'} has no attack rows")
    assert sorted(p.name for p in run.iterdir()) == ["results.json"]


def test_figures_bad_input_exits_2_with_one_line(run_cli, run_dir: Path, tmp_path: Path, results: dict) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = run_cli("report", run_dir, "-f", "figures", "-o", blocked)
    assert result.code == 2 and result.stderr.count("\n") == 1, result
    assert result.stderr.startswith(f"error: --output {blocked}: cannot write"), result.stderr

    results["rows"][3]["metrics"]["target_hr@50"] = {"ci_low": 0}  # no value
    (run_dir / "results.json").write_text(json.dumps(results))
    result = run_cli("report", run_dir, "-f", "figures")
    assert result.code == 2 and result.stderr.count("\n") == 1, result
    assert result.stderr.startswith(f"error: {run_dir / 'results.json'}: malformed results"), result.stderr
    assert not (run_dir / "figures").exists()
