"""The ``redteam`` command: run scenarios, list components, fetch data.

Exit codes: 0 every gate held; 1 a gate failed; 2 usage, configuration or data error.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from redteam.errors import RedteamError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Red-team sequential recommenders.")
data_app = typer.Typer(no_args_is_help=True, help="Fetch and inspect datasets.")
app.add_typer(data_app, name="data")


class ComponentKind(str, Enum):
    victims = "victims"
    attacks = "attacks"
    defenses = "defenses"


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
) -> None:
    """Run a scenario file and report attack success against clean accuracy."""
    from redteam.progress import Reporter
    from redteam.report import render
    from redteam.runner import run_scenario
    from redteam.scenario import load_scenario

    overrides = list(set_ or [])
    if threads is not None:
        overrides.append(f"runtime.threads={threads}")
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


@app.command("list")
def list_components(kind: Annotated[ComponentKind, typer.Argument(help="victims, attacks or defenses")]) -> None:
    """Show each registered component with its declared parameters."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from redteam.registry import describe

    table = Table(title=kind.value)
    table.add_column("name", style="bold")
    table.add_column("description")
    table.add_column("parameters (default)")
    for entry in describe(kind.value):
        params = "\n".join(f"{p['name']}: {p['type']} = {p['default']!r}" for p in entry["params"]) or "-"
        table.add_row(entry["alias"], escape(entry["summary"]), escape(params))
    Console().print(table)


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
    except Exception as exc:  # usage errors (click's, or the click typer >= 0.2x bundles)
        if any(cls.__name__ == "ClickException" for cls in type(exc).__mro__):
            exc.show()
            sys.exit(2)
        raise
    if isinstance(code, int) and not isinstance(code, bool) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
