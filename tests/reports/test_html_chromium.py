"""The HTML report in a real browser: headless Chromium renders it with no console message, and
a screenshot shows every plot (ink and data colours inside each plot's box).

Needs a Chromium binary (Debian package ``chromium``; or set ``REDTEAM_CHROMIUM``): skipped with
a reason when there is none, unless ``REDTEAM_REQUIRE_CHROMIUM=1`` (as in ``.ci/run``), where a
missing browser fails. ``REDTEAM_SCREENSHOT_DIR`` keeps the screenshots (e.g. as CI artifacts).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from redteam.reports import render

WIDTH = 1300
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\]\s*(.*)")
MEASURE = """<script>
const plots = [];
for (const figure of document.querySelectorAll("figure[data-plot]")) {
  const r = figure.querySelector("svg").getBoundingClientRect();
  plots.push([figure.dataset.plot, r.left + scrollX, r.top + scrollY, r.width, r.height].join(","));
}
document.body.setAttribute("data-plots", plots.join(";"));
document.body.setAttribute("data-height", String(document.documentElement.scrollHeight));
</script></body>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    found = os.environ.get("REDTEAM_CHROMIUM") or next((p for p in map(shutil.which, NAMES) if p), None)
    if not found:
        if os.environ.get("REDTEAM_REQUIRE_CHROMIUM") == "1":
            pytest.fail("REDTEAM_REQUIRE_CHROMIUM=1 but no chromium binary found")
        pytest.skip("no chromium binary found: install the Debian package `chromium` or set REDTEAM_CHROMIUM")
    return found


def browse(binary: str, page: Path, tmp: Path, *args: str, height: int = 1000) -> subprocess.CompletedProcess:
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={tmp / 'profile'}",
           "--enable-logging=stderr", "--v=0", f"--window-size={WIDTH},{height}", *args, page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def console_messages(done: subprocess.CompletedProcess) -> list[str]:
    return [m.group(1) for line in done.stderr.splitlines() if (m := CONSOLE.search(line))]


def test_console_check_catches_errors(chromium: str, tmp_path: Path) -> None:
    """The console check is not vacuous: this browser logs a page's console errors to stderr."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>console.error('planted'); missing();</script></body></html>")
    messages = console_messages(browse(chromium, page, tmp_path, "--dump-dom"))
    assert any("planted" in m for m in messages) and any("missing is not defined" in m for m in messages), messages


def test_defense_comparison_report_renders_with_every_plot_visible(chromium: str, tmp_path: Path, results: dict) -> None:
    html = render(results, "html")
    boxes = check_rendering(chromium, html, tmp_path, name="defense-comparison",
                            expected=["tradeoff-agreement@10", "tradeoff-target_hr@50", "budget-agreement@10",
                                      "exposure-target_hr@50", "roc"])

    # The pixel checks see a missing plot: the same page with its charts hidden fails them.
    hidden = tmp_path / "hidden.html"
    hidden.write_text(html.replace("</head>", "<style>figure.plot svg { visibility: hidden; }</style></head>"), encoding="utf-8")
    blank, _ = screenshot(chromium, hidden, tmp_path, int(max(b[3] for b in boxes)) + 50)
    assert all(colour_pixels(blank, box) == 0 and ink_share(blank, box) < 0.01 for box in boxes)


def test_a_real_runs_report_renders(chromium: str, run_cli, tmp_path: Path) -> None:
    """The report.html a run writes (output.formats), from real results of a tiny extraction run."""
    scenario = {
        "name": "tiny-report", "seed": 2, "dataset": {"name": "synthetic", "users": 200, "items": 80},
        "victim": {"name": "sasrec", "hidden": 16, "epochs": 2}, "api": {"topk": 20, "budget": 400},
        "attacks": [{"name": "extraction.random", "distill_epochs": 1, "curve": [0.5]}],
        "eval": {"k": [10], "bootstrap": 20}, "gates": [{"metric": "agreement@10", "attack": "extraction.random", "max": 0.95}],
        "output": {"formats": ["json", "html"]}, "runtime": {"threads": 1},
    }
    check_rendering(chromium, written_report(run_cli, tmp_path, scenario), tmp_path, name="tiny-run",
                    expected=["tradeoff-agreement@10", "budget-agreement@10"])


def test_a_real_defense_comparisons_report_renders(chromium: str, run_cli, tmp_path: Path) -> None:
    """report.html of a real (tiny) attacks x defenses run: trade-off, exposure and ROC plots."""
    scenario = {
        "name": "tiny-defense-report", "seed": 3, "dataset": {"name": "synthetic", "users": 300, "items": 200},
        "victim": {"name": "sasrec", "hidden": 16, "epochs": 3}, "api": {"topk": 20, "budget": 400},
        "poisoning": {"fake_share": 0.05}, "attacks": [{"name": "poisoning.random"}],
        "defenses": [{"name": "none"}, {"name": "isolation_forest", "flag_share": 0.05}],
        "eval": {"k": [10], "bootstrap": 50}, "output": {"formats": ["json", "html"]}, "runtime": {"threads": 1},
    }
    check_rendering(chromium, written_report(run_cli, tmp_path, scenario), tmp_path, name="tiny-defense-run",
                    expected=["tradeoff-target_hr@50", "exposure-target_hr@50", "roc"])


def written_report(run_cli, tmp_path: Path, scenario: dict) -> str:
    """Run ``scenario`` through the CLI; the report.html it wrote."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = run_cli("run", path, "--out", tmp_path / "runs", "-q")
    assert result.code == 0, result
    (run_dir,) = (tmp_path / "runs").iterdir()
    return (run_dir / "report.html").read_text()


def check_rendering(chromium: str, html: str, tmp_path: Path, *, name: str, expected: list[str]) -> list[tuple]:
    """Render ``html``: no console message, every expected plot laid out, inside the page, apart
    from the others and visibly drawn (ink and data colours in its box). Returns the plot boxes."""
    pytest.importorskip("PIL.Image", reason="pillow (in the test extra) decodes the screenshot")
    page = tmp_path / f"{name}.html"
    page.write_text(html, encoding="utf-8")

    # 1. Where each plot is laid out (a copy of the page with a measuring script; same width).
    measure = tmp_path / f"{name}-measure.html"
    measure.write_text(html.replace("</body>", MEASURE), encoding="utf-8")
    dom = browse(chromium, measure, tmp_path, "--dump-dom").stdout
    plots = {}
    for item in filter(None, re.search(r'data-plots="([^"]*)"', dom).group(1).split(";")):
        key, *box = item.split(",")
        plots[key] = tuple(float(v) for v in box)
    height = int(re.search(r'data-height="(\d+)"', dom).group(1))
    assert list(plots) == expected

    # 2. The page itself (no script at all): a full-height screenshot and no console message.
    image, messages = screenshot(chromium, page, tmp_path, height)
    assert messages == []
    if os.environ.get("REDTEAM_SCREENSHOT_DIR"):
        keep = Path(os.environ["REDTEAM_SCREENSHOT_DIR"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / f"{name}.png", keep / f"{name}.png")
        shutil.copy(page, keep / f"{name}.html")
    assert image.shape == (height, WIDTH, 3)
    assert ink_share(image, (0, 0, WIDTH, height)) > 0.02  # not blank

    boxes = []
    for key, (left, top, width, box_height) in plots.items():
        assert width > 300 and box_height > 200, (key, width, box_height)
        box = (int(left), int(top), int(left + width), int(top + box_height))
        assert box[2] <= WIDTH and box[3] <= height, (key, box)  # inside the page, not cut off
        assert all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1] for b in boxes), key  # no overlap
        boxes.append(box)
        assert ink_share(image, box) > 0.015, key  # axes, grid, labels (a hidden chart has none)
        assert colour_pixels(image, box) > 150, key  # data marks in the palette's colours
    return boxes


def screenshot(binary: str, page: Path, tmp: Path, height: int):
    """The page as an [height, width, 3] uint8 array, and its console messages."""
    from PIL import Image

    shot = tmp / page.with_suffix(".png").name
    done = browse(binary, page, tmp, f"--screenshot={shot}", height=height)
    return np.asarray(Image.open(shot).convert("RGB")), console_messages(done)


def ink_share(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Share of pixels in ``box`` that are not (near) white."""
    left, top, right, bottom = box
    crop = image[top:bottom, left:right].astype(int)
    return float((crop.min(axis=2) < 235).mean()) if crop.size else 0.0


def colour_pixels(image: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """Saturated pixels in ``box``: the data (axes, grid and text are grey)."""
    left, top, right, bottom = box
    crop = image[top:bottom, left:right].astype(int)
    return int(((crop.max(axis=2) - crop.min(axis=2)) > 80).sum())
