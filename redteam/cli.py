"""The ``redteam`` command: run scenarios, list components, fetch data.

Exit codes:

* 0: every gate held (or the command succeeded);
* 1: a gate failed (``run``), or a regression was found (``compare --fail-on-regression``);
* 2: a usage, configuration or data error, reported as one line ``error: ...``;
* 3: an internal error (a bug in the engine or a component): one line ``internal error: ...``
  naming the file under ``<cache dir>/tracebacks/`` that holds the full traceback.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from redteam.errors import RedteamError
from redteam.limits import MAX_BOOTSTRAP

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Red-team sequential recommenders.")
data_app = typer.Typer(no_args_is_help=True, help="Fetch and inspect datasets.")
app.add_typer(data_app, name="data")


class ComponentKind(str, Enum):
    victims = "victims"
    attacks = "attacks"
    defenses = "defenses"
    catalogs = "catalogs"
    keys = "keys"


def _console(quiet: bool):
    from rich.console import Console

    return Console(stderr=False, quiet=quiet)


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override a key: a.b.c=value (repeatable)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="retrain victims instead of loading cached ones")] = False,
    threads: Annotated[Optional[int], typer.Option(help="torch threads (default: scenario runtime.threads)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="parent folder of the run directory (default: output.dir)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars or tables")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print results.json to stdout (implies --quiet)")] = False,
    executor: Annotated[Optional[str], typer.Option(help="serial (default) or ray: runtime.executor")] = None,
    address: Annotated[Optional[str], typer.Option(help="with --executor ray: an existing cluster (auto or HOST:PORT)")] = None,
) -> None:
    """Run a scenario file and report attack success against clean accuracy."""
    from redteam.progress import Reporter
    from redteam.report import render
    from redteam.runner import run_scenario
    from redteam.scenario import load_scenario

    overrides = list(set_ or [])
    if threads is not None:
        overrides.append(f"runtime.threads={threads}")
    overrides += [f"runtime.{key}={value}" for key, value in (("executor", executor), ("address", address)) if value]
    spec = load_scenario(scenario, overrides)
    console = _console(quiet or json_out)
    outcome = run_scenario(spec, reporter=Reporter(console, enabled=not (quiet or json_out)),
                           use_cache=False if no_cache else None, out_root=out)
    if json_out:
        sys.stdout.write(json.dumps(outcome.results, default=str) + "\n")
    else:
        render(outcome.results, console)
        console.print(f"run directory: {outcome.out_dir}")
    raise typer.Exit(outcome.exit_code)


class ReportFormat(str, Enum):
    terminal = "terminal"
    html = "html"
    json = "json"
    junit = "junit"
    md = "md"
    figures = "figures"


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="a run directory (or its results.json)")],
    format_: Annotated[ReportFormat, typer.Option(
        "--format", "-f", help="terminal (rich tables), html, json, junit, md or figures (PNG and PDF per plot)")] = ReportFormat.terminal,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="write to this file instead of stdout (figures: this folder instead of RUN_DIR/figures)")] = None,
) -> None:
    """Render a finished run's results.json: html (one self-contained page with plots), json,
    junit (one test case per gate), md (a pull-request comment), figures (each plot of the html
    page as RUN_DIR/figures/<plot>.png and .pdf) or the terminal report."""
    from redteam.errors import ConfigError, DataError
    from redteam.reports import FIGURES_DIR, write_figures
    from redteam.reports import render as render_format
    from redteam.reports.run_dir import load_results, results_file

    results = load_results(run_dir)
    source = results_file(run_dir)
    try:
        if format_ is ReportFormat.figures:
            folder = output if output is not None else source.parent / FIGURES_DIR
            try:
                written = write_figures(results, folder)
            except OSError as exc:
                where = f"--output {folder}" if output is not None else str(folder)
                raise ConfigError(f"{where}: cannot write ({exc.strerror or exc})") from None
            if written:
                sys.stderr.write(f"wrote {len(written) // 2} plots (PNG and PDF) to {folder}\n")
            else:
                sys.stderr.write(f"no plots: {source} has no attack rows, budget curves or detector results; "
                                 "nothing written\n")
            return
        if format_ is ReportFormat.terminal:
            if output is not None:
                raise ConfigError("--output: the terminal report goes to stdout; pick --format html, json, junit or md")
            from redteam.report import render

            render(results, _console(False))
            return
        text = render_format(results, format_.value, source=str(source))
    except (KeyError, TypeError) as exc:
        raise DataError(f"{source}: malformed results ({type(exc).__name__}: {exc})") from None
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--output {output}: cannot write ({exc.strerror})") from None
    sys.stderr.write(f"wrote {output}\n")


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="the baseline run directory (A)")],
    run_b: Annotated[Path, typer.Argument(help="the new run directory (B); deltas are B - A")],
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", metavar="METRIC", help="compare only this metric (repeatable)")] = None,
    fail_on: Annotated[Optional[list[str]], typer.Option(
        "--fail-on-regression", metavar="METRIC",
        help="exit 1 when METRIC got significantly worse in any row of both runs (repeatable)")] = None,
    bootstrap: Annotated[int, typer.Option(min=1, max=MAX_BOOTSTRAP, help="bootstrap resamples per delta")] = 1000,
    confidence: Annotated[Optional[float], typer.Option(min=0.5, max=0.9999, help="CI level (default: run B's eval.confidence)")] = None,
    changed: Annotated[bool, typer.Option("--changed", help="list only significant changes")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no output; the exit code says it")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the comparison as JSON (implies --quiet)")] = False,
) -> None:
    """Metric deltas between two runs with bootstrap CIs (paired when both scored the same users),
    significant changes marked worse/better for the defender."""
    from redteam.errors import ConfigError
    from redteam.progress import Reporter
    from redteam.registry import did_you_mean
    from redteam.reports.compare import Run, compare_runs
    from redteam.reports.compare_table import render_comparison
    from redteam.reports.roles import worse_direction

    a, b = Run.load(run_a), Run.load(run_b)
    fail_on = list(dict.fromkeys(fail_on or []))
    wanted = None if not metric else list(dict.fromkeys([*metric, *fail_on]))
    rows_a, rows_b = a.rows(), b.rows()
    present = {m for key in rows_a if key in rows_b for m in rows_a[key]["metrics"] if m in rows_b[key]["metrics"]}
    for m in [*(metric or []), *fail_on]:
        if m not in present:
            raise ConfigError(f"{'--fail-on-regression' if m in fail_on else '--metric'} {m}: no row of both runs "
                              f"has this metric{did_you_mean(m, present)}")
    for m in fail_on:
        if worse_direction(m) is None:
            raise ConfigError(f"--fail-on-regression {m}: neither direction of '{m}' is a regression")
    from rich.console import Console

    reporter = Reporter(Console(stderr=True), enabled=not (quiet or json_out))
    with reporter.session(), reporter.stage("compare: bootstrap deltas") as stage:
        cmp = compare_runs(a, b, metrics=wanted, n_resamples=bootstrap, confidence=confidence,
                           progress=lambda done, total, what: stage.update(completed=done, total=total, status=what))
    if json_out:
        sys.stdout.write(json.dumps(cmp.to_json(fail_on), default=str) + "\n")
    elif not quiet:
        render_comparison(cmp, _console(False), fail_on=fail_on, changed_only=changed)
    raise typer.Exit(1 if fail_on and cmp.regressions(fail_on) else 0)


@app.command("list")
def list_components(kind: Annotated[ComponentKind, typer.Argument(help="victims, attacks, defenses, catalogs or keys")]) -> None:
    """Show each registered component with its declared parameters (or the built-in STS catalogs, or every scenario key)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from redteam.registry import describe

    if kind is ComponentKind.catalogs:
        Console().print(_catalog_table())
        return
    if kind is ComponentKind.keys:
        Console().print(_keys_table())
        return

    table = Table(title=kind.value)
    table.add_column("name", style="bold")
    table.add_column("description")
    table.add_column("parameters (default)")
    for entry in describe(kind.value):
        params = "\n".join(f"{p['name']}: {p['type']} = {_short_default(p['default'])}" for p in entry["params"]) or "-"
        table.add_row(entry["alias"], escape(entry["summary"]), escape(params))
    Console().print(table)


def _catalog_table() -> Any:
    """Built-in catalogs for STS scenarios: name, where the products come from, sizes."""
    from rich.table import Table

    from redteam.catalog_sources import builtin_catalogs, load_catalog
    from redteam.errors import RedteamError

    table = Table(title="catalogs (catalog.name)")
    for col in ("name", "products", "requests", "source"):
        table.add_column(col)
    for name in builtin_catalogs():
        try:
            cat = load_catalog(name)
            table.add_row(name, str(len(cat.products)), str(len(cat.requests)), cat.source)
        except RedteamError:
            table.add_row(name, "-", "-", "amazon-scientific: needs catalog.data_dir or $REDTEAM_DATA_DIR")
    return table


def _keys_table() -> Any:
    """Every scenario key with its type, default and meaning (docs/scenario_keys.md in the terminal)."""
    from rich.markup import escape
    from rich.table import Table

    from redteam.scenario_reference import key_rows

    table = Table(title="scenario keys (--set key=value)")
    for col in ("key", "type", "default", "meaning"):
        table.add_column(col, style="bold" if col == "key" else None)
    for row in key_rows():
        table.add_row(escape(row.key), escape(row.type), escape(row.default), escape(row.description))
    return table


def _short_default(value: object) -> str:
    """A default as one short line: nested settings by class name, long texts cut."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return f"{type(value).__name__}(...)"
    text = repr(value)
    return text if len(text) <= 32 else text[:29] + "...'"


@app.command()
def serve(
    source: Annotated[Path, typer.Argument(help="a saved model folder, a cache entry, or a run directory")],
    victim: Annotated[Optional[str], typer.Option(help="in a run directory: the victim's label")] = None,
    seed: Annotated[Optional[int], typer.Option("--run-seed", help="in a run directory: the victim's run seed")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML file of serve settings (options below override it)")] = None,
    host: Annotated[Optional[str], typer.Option(help="interface to bind [default: 127.0.0.1]")] = None,
    port: Annotated[Optional[int], typer.Option(help="TCP port, 0 for any free one [default: 8000]")] = None,
    topk: Annotated[Optional[int], typer.Option(help="longest list returned [default: 100]")] = None,
    budget: Annotated[Optional[int], typer.Option(help="queries allowed per key [default: unlimited]")] = None,
    rate: Annotated[Optional[float], typer.Option(help="requests per second per key [default: unlimited]")] = None,
    expose_scores: Annotated[Optional[bool], typer.Option("--expose-scores/--hide-scores", help="return scores too")] = None,
    ledger: Annotated[Optional[Path], typer.Option(help="SQLite file of usage and the query log [default: in memory]")] = None,
    defense: Annotated[Optional[list[str]], typer.Option(help="a serving defense as YAML, e.g. '{name: topk_truncation}' (repeatable)")] = None,
    keys_file: Annotated[Optional[Path], typer.Option(help="API keys, one 'name: key' per line")] = None,
    keys_env: Annotated[str, typer.Option(help="environment variable holding comma-separated keys")] = "REDTEAM_API_KEYS",
    no_auth: Annotated[bool, typer.Option("--no-auth", help="serve without API keys (loopback demos only)")] = False,
    ready_file: Annotated[Optional[Path], typer.Option(hidden=True)] = None,
    parent_pid: Annotated[Optional[int], typer.Option(hidden=True)] = None,
    threads: Annotated[Optional[int], typer.Option(help="torch threads")] = None,
) -> None:
    """Serve a trained victim over HTTP: POST /v1/recommend, GET /v1/info, GET /healthz, /openapi.json."""
    from redteam.serving.serve_cli import serve_command

    serve_command(source, victim=victim, run_seed=seed, config=config, keys_file=keys_file, keys_env=keys_env,
                  no_auth=no_auth, ready_file=ready_file, parent_pid=parent_pid, threads=threads,
                  overrides={"host": host, "port": port, "topk": topk, "budget": budget, "rate": rate,
                             "expose_scores": expose_scores, "ledger": ledger},
                  defenses=list(defense or []))


@data_app.command("download")
def data_download(
    name: Annotated[str, typer.Argument(help="ml-100k or ml-1m")],
    cache_dir: Annotated[Optional[Path], typer.Option(help="default: $REDTEAM_CACHE_DIR/data or ~/.cache/redteam/data")] = None,
) -> None:
    """Fetch an official MovieLens archive, verify its checksum, unpack it into the cache."""
    from redteam.data.download import default_cache_dir, download

    path = download(name, cache_dir=cache_dir or default_cache_dir())
    typer.echo(f"{name}: {path}")


@data_app.command("info")
def data_info(
    name: Annotated[str, typer.Argument(help="dataset name, e.g. synthetic or amazon-beauty")],
    path: Annotated[Optional[Path], typer.Option(help="the dataset's folder")] = None,
) -> None:
    """Load a dataset and print its size and checksum."""
    from redteam.data.registry import DatasetConfig, load_dataset

    dataset = load_dataset(DatasetConfig(name=name, path=path), seed=0)
    typer.echo(json.dumps(dataset.summary(), indent=2))


def main() -> None:
    """Entry point: run the app and turn every outcome into one of the documented exit codes."""
    try:
        code = app(standalone_mode=False)  # returns the code of a raised typer.Exit in this mode
    except RedteamError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except Exception as exc:
        if _is_usage_error(exc):
            exc.show()
            sys.exit(2)
        sys.stderr.write(_internal_error_line(exc, _save_traceback(exc)) + "\n")
        sys.exit(3)
    if isinstance(code, int) and not isinstance(code, bool) and code:
        sys.exit(code)


def _is_usage_error(exc: BaseException) -> bool:
    """Click's usage errors (or those of the click copy newer typers bundle): exit 2 as today."""
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def _traceback_dirs() -> list[Path]:
    """Where traceback files go, in order of preference: the cache, then the system temp dir."""
    import tempfile

    from redteam.cache import default_cache_dir

    return [default_cache_dir() / "tracebacks", Path(tempfile.gettempdir()) / "redteam-tracebacks"]


def _save_traceback(exc: BaseException) -> Path | str:
    """Write ``exc``'s full traceback to a new file named by UTC time and pid; its path, or the
    reason no folder could take it."""
    import os
    import traceback
    from datetime import datetime, timezone

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    reason = "no folder to write it to"
    for folder in _traceback_dirs():
        file = folder / f"{stamp}-{os.getpid()}.txt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            file.write_text(f"redteam {' '.join(sys.argv[1:])}\n\n{text}", encoding="utf-8")
            return file
        except OSError as err:
            reason = f"cannot write {file}: {err.strerror or err}"
    return reason


def _internal_error_line(exc: BaseException, saved: Path | str) -> str:
    """``internal error: Type: first line of the message (traceback: path)``, one line."""
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else ""
    if len(message) > 300:
        message = message[:297] + "..."
    where = f"traceback: {saved}" if isinstance(saved, Path) else f"traceback not saved: {saved}"
    return f"internal error: {type(exc).__name__}{': ' + message if message else ''} ({where})"


if __name__ == "__main__":
    main()
