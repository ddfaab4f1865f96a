"""Progress bars on stderr: shown on a terminal, silent when quiet or piped."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from jiasu.ui.console import console


def stderr_console() -> Console:
    return console(stderr=True)


def progress_enabled(quiet: bool) -> bool:
    """Progress bars only for a person watching a terminal."""
    return not quiet and sys.stderr.isatty()


class TaskProgress:
    """A progress bar with an estimate of time left; a no-op when disabled.

    >>> with TaskProgress(enabled=False) as bar:
    ...     bar.start("epoch 1/5", total=100)
    ...     bar.advance(10)
    """

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> TaskProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}", style="bold", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}", markup=False),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=stderr_console(),
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, tb)

    def start(self, description: str, total: int) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total, status="")

    def advance(self, steps: int = 1, status: str | None = None) -> None:
        if self._progress is None or self._task is None:
            return
        if status is None:
            self._progress.advance(self._task, steps)
        else:
            self._progress.update(self._task, advance=steps, status=status)

    def log(self, message: str) -> None:
        """Print a line above the bar (or to stderr when the bar is off and not quiet)."""
        if self._progress is not None:
            self._progress.console.print(message)
