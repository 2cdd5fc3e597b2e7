"""Progress display: rich bars per stage in a terminal, one plain line per finished stage when the
output is a file or a pipe (a background run's log, CI), nothing (events only) for machines."""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator


class Stage:
    def __init__(self, progress: Any, task: Any, *, sized: bool = False) -> None:
        self._progress, self._task = progress, task
        self.sized = sized  # opened with a total of its own

    def update(self, *, completed: float | None = None, total: float | None = None, status: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, total=total, status=status)

    def advance(self, amount: float = 1, status: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=amount, status=status)


class LineStage(Stage):
    """A stage outside a terminal: remembers its count and status for the line written when it ends."""

    def __init__(self, total: float | None) -> None:
        super().__init__(None, None, sized=total is not None)
        self.completed, self.total, self.status = 0.0, total, ""

    def update(self, *, completed: float | None = None, total: float | None = None, status: str = "") -> None:
        self.completed = self.completed if completed is None else completed
        self.total = self.total if total is None else total
        self.status = status or self.status

    def advance(self, amount: float = 1, status: str = "") -> None:
        self.completed += amount
        self.status = status or self.status

    def summary(self) -> str:
        count = f"{self.completed:g}/{self.total:g}" if self.total and self.completed else ""  # a cache hit counts nothing
        return "  ".join(part for part in (count, self.status) if part)


_OPEN: ContextVar[Stage | None] = ContextVar("redteam_open_stage", default=None)
_IDLE = Stage(None, None)


def unsized_stage() -> Stage:
    """The innermost open stage if it was opened without a total, else a stage that shows nothing.

    Lets a long inner loop (scoring users in batches) give such a stage a bar, items done and
    time left without every caller passing a callback; a stage that counts its own units
    (epochs, queries) is never overwritten.
    """
    stage = _OPEN.get()
    return stage if stage is not None and not stage.sized else _IDLE


class Reporter:
    """``with reporter.stage("train sasrec", total=30) as s: s.advance()``."""

    def __init__(self, console: Any | None, *, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled and console is not None
        self._progress = None
        self._lines_since: float | None = None  # outside a terminal: start of the session

    @contextmanager
    def session(self) -> Iterator["Reporter"]:
        if not self.enabled:
            yield self
            return
        if not self.console.is_terminal:
            self._lines_since = time.perf_counter()
            try:
                yield self
            finally:
                self._lines_since = None
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
        if self._lines_since is not None:
            line = LineStage(total)
            token = _OPEN.set(line)
            try:
                yield line
            finally:
                _OPEN.reset(token)
                elapsed = time.perf_counter() - self._lines_since
                self.console.print(f"{elapsed:7.0f} s  {description}  {line.summary()}".rstrip(), highlight=False,
                                   markup=False, soft_wrap=True)
                self.console.file.flush()  # a log file is block-buffered: `tail -f` should see each line as it ends
            return
        if self._progress is None:
            yield Stage(None, None, sized=total is not None)
            return
        task = self._progress.add_task(description, total=total, status="")
        token = _OPEN.set(Stage(self._progress, task, sized=total is not None))
        try:
            yield _OPEN.get()
        finally:
            _OPEN.reset(token)
            t = self._progress.tasks[task] if task < len(self._progress.tasks) else None
            if t is not None and t.total is not None:
                self._progress.update(task, completed=t.total)
            elif t is not None:
                self._progress.update(task, total=1, completed=1)

    def log(self, message: str) -> None:
        if self.enabled:
            self.console.print(message)
