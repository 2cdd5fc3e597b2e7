"""Progress display: rich bars per stage for people, nothing (events only) for machines."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


class Stage:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress, self._task = progress, task

    def update(self, *, completed: float | None = None, total: float | None = None, status: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, total=total, status=status)

    def advance(self, amount: float = 1, status: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=amount, status=status)


class Reporter:
    """``with reporter.stage("train sasrec", total=30) as s: s.advance()``."""

    def __init__(self, console: Any | None, *, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled and console is not None
        self._progress = None

    @contextmanager
    def session(self) -> Iterator["Reporter"]:
        if not self.enabled:
            yield self
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
            console=self.console, transient=False,
        )
        with self._progress:
            yield self
        self._progress = None

    @contextmanager
    def stage(self, description: str, total: float | None = None) -> Iterator[Stage]:
        if self._progress is None:
            yield Stage(None, None)
            return
        task = self._progress.add_task(description, total=total, status="")
        try:
            yield Stage(self._progress, task)
        finally:
            t = self._progress.tasks[task] if task < len(self._progress.tasks) else None
            if t is not None and t.total is not None:
                self._progress.update(task, completed=t.total)
            elif t is not None:
                self._progress.update(task, total=1, completed=1)

    def log(self, message: str) -> None:
        if self.enabled:
            self.console.print(message)
