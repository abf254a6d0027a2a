"""Feedback for people: progress bars on a terminal, nothing extra in cron or the worker.

Stages (`fetch`, `send`) report their size and each step through a `Progress`. The base
class ignores them, so cron and the worker log plain lines only; `BarProgress` draws rich
bars on stderr when it is a terminal, and log lines go through the same console so that
they print above the bars instead of through them.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

#: stage name -> what its bar says
LABELS = {"fetch": "fetching sources", "send": "sending digests"}


class Progress:
    """Where pipeline stages report how far they are; this base reports nothing."""

    enabled = False

    def start(self, stage: str, total: int) -> None:
        """A stage begins with `total` steps."""

    def advance(self, stage: str, item: str = "") -> None:
        """One step of a stage is done (`item` names it: a source, a recipient)."""

    def finish(self, stage: str) -> None:
        """A stage is over (its bar may go away)."""


#: the silent default
NO_PROGRESS = Progress()


class BarProgress(Progress):
    """Rich progress bars on a terminal; each stage's bar is removed when it ends."""

    enabled = True

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bars = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[item]}", style="dim"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, TaskID] = {}

    def start(self, stage: str, total: int) -> None:
        """Show a bar for the stage."""
        if not self._tasks:
            self._bars.start()
        self._tasks[stage] = self._bars.add_task(LABELS.get(stage, stage), total=total, item="")

    def advance(self, stage: str, item: str = "") -> None:
        """Move the stage's bar one step."""
        if stage in self._tasks:
            self._bars.update(self._tasks[stage], advance=1, item=item)

    def finish(self, stage: str) -> None:
        """Remove the stage's bar (and stop drawing when none is left)."""
        task = self._tasks.pop(stage, None)
        if task is not None:
            self._bars.remove_task(task)
        if not self._tasks:
            self._bars.stop()


def progress_for(stream: TextIO | None = None, *, quiet: bool = False) -> Progress:
    """Bars when `stream` (default stderr) is a terminal and not `--quiet`, else nothing."""
    stream = stream or sys.stderr
    if quiet or not stream.isatty():
        return NO_PROGRESS
    return BarProgress(Console(file=stream))


class _ConsoleHandler(logging.Handler):
    """Log lines printed through the bars' console, so they appear above the bars."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        except Exception:  # logging must never break the run
            self.handleError(record)


def log_handler(progress: Progress) -> logging.Handler | None:
    """A handler that prints log lines above the bars (None: keep plain stderr lines)."""
    if not isinstance(progress, BarProgress):
        return None
    handler = _ConsoleHandler(progress.console)
    handler.setFormatter(logging.Formatter("paperbot: %(message)s"))
    return handler
