"""Live progress on a terminal: a line per cell (phase, tests done) and a bar for the matrix.

Used only on an interactive terminal; in CI and in pipes the plain
:class:`~pytest_condamatrix.report.terminal.ProgressPrinter` lines are used instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console

from ..results import FAILING, CellResult, TestResult
from .terminal import STATUS_STYLE, ProgressPrinter

if TYPE_CHECKING:  # imported when used: ~20 ms that runs without a terminal never need
    from rich.progress import TaskID


def wants_live(console: Console) -> bool:
    """Live display only for a person at a terminal: not in CI, not with TERM=dumb.

    Colour is another matter (NO_COLOR, --color=no): a live display without colour is still
    a live display.
    """
    return console.is_terminal and not console.is_dumb_terminal and not os.environ.get("CI")


class LiveProgress:
    """A rich Progress with one task per cell and one for the whole matrix; thread-safe."""

    def __init__(self, console: Console, cells: Sequence[str]) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}", style="bold"),
            TextColumn("{task.fields[phase]}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]}", style="red"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._failed: dict[str, int] = {}
        self._overall = self.progress.add_task(
            "matrix", total=len(cells), phase="cells done", failed=""
        )
        for cell in cells:
            self._tasks[cell] = self.progress.add_task(
                cell, total=None, phase="pending", failed="", start=False
            )
            self._failed[cell] = 0

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def cell_phase(self, cell: str, phase: str) -> None:
        with self._lock:
            task = self._tasks[cell]
            self.progress.start_task(task)
            self.progress.update(task, phase=phase)

    def cell_collected(self, cell: str, count: int) -> None:
        with self._lock:
            self.progress.update(self._tasks[cell], total=count, phase="running")

    def test_done(self, cell: str, test: TestResult) -> None:
        with self._lock:
            task = self._tasks[cell]
            # one step per test: not a teardown error (a second report of one test), a
            # subtest, or a collection error
            if test.when in ("setup", "call") and not test.subtest:
                self.progress.advance(task)
            if test.outcome in FAILING:
                self._failed[cell] += 1
                self.progress.update(task, failed=f"{self._failed[cell]} failed")

    def cell_done(self, result: CellResult) -> None:
        with self._lock:
            task = self._tasks[result.cell]
            style = STATUS_STYLE.get(result.status, "")
            phase = f"[{style}]{result.status}[/]" if style else result.status
            total = self.progress.tasks[task].total or self.progress.tasks[task].completed
            self.progress.update(task, phase=phase, total=total, completed=total)
            self.progress.stop_task(task)
            self.progress.advance(self._overall)


def make_reporter(
    console: Console, cells: Sequence[str], verbosity: int
) -> LiveProgress | ProgressPrinter:
    if wants_live(console) and verbosity <= 0:
        return LiveProgress(console, cells)
    return ProgressPrinter(console, verbosity)
