"""Terminal output: progress lines while cells run, then one table for the whole matrix.

Rendering goes through a rich Console; without a terminal (CI logs, pipes) it prints plain
text, so the same report reads well in both places. Colour follows pytest's conventions
(:func:`color_choice`).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import IO, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..matrix import axis_label
from ..results import (
    FAILING,
    Category,
    CellResult,
    CellStatus,
    EnvState,
    RunResult,
    TestResult,
    count_text,
)
from .differential import differences
from .failures import group_failures, group_messages
from .summary import collected_listing, short_summary

PLAIN_WIDTH = 120
#: how each status shows: bad ones red (but an interruption), the rest yellow, passed green
STATUS_STYLE = {
    status: "green"
    if status is CellStatus.PASSED
    else "red"
    if status.bad and status is not CellStatus.INTERRUPTED
    else "yellow"
    for status in CellStatus
}

# Phases too brief or too frequent for a line of their own in plain output.
QUIET_PHASES = ("checking cache", "waiting for lock", "ready", "waiting for the GPU")


def color_choice(color: str | None = None) -> bool | None:
    """Colour on (True), off (False) or the terminal's call (None), as pytest decides it.

    pytest's ``--color=yes|no`` wins, then ``PY_COLORS=1|0``. Otherwise a non-empty
    ``NO_COLOR`` removes colour (an empty one is ignored, as no-color.org says), and
    ``FORCE_COLOR`` makes rich take the output for a terminal.
    """
    if color in ("yes", "no"):
        return color == "yes"
    py_colors = os.environ.get("PY_COLORS")
    if py_colors in ("1", "0"):
        return py_colors == "1"
    return None


def make_console(
    file: IO[str] | None = None, *, width: int | None = None, color: str | None = None
) -> Console:
    """The console of every report; ``color`` is pytest's ``--color`` (yes, no, auto)."""
    choice = color_choice(color)
    # An explicit colour system colours a pipe too without making it a terminal, so the live
    # display (which needs one) stays off there; None renders no styles at all.
    system: Literal["auto", "standard"] | None = (
        "auto" if choice is None else "standard" if choice else None
    )
    if choice and _isatty(file or sys.stdout):
        system = "auto"  # a real terminal: let rich find its best colours
    # soft_wrap: long messages stay one line (grep-able logs); tables still fit the width
    console = Console(
        file=file,
        width=width,
        highlight=False,
        soft_wrap=True,
        color_system=system,
        # --color=yes outranks NO_COLOR; an empty NO_COLOR is ignored (rich < 13.8 took it)
        no_color=os.environ.get("NO_COLOR", "") != "" if choice is None else not choice,
    )
    if width is None and not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PLAIN_WIDTH  # CI logs and pipes are wider than rich's 80 columns
    return console


def _isatty(file: IO[str]) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


class ProgressPrinter:
    """One line per phase change of a cell; thread-safe. ``verbosity`` follows pytest's -q/-v."""

    def __init__(self, console: Console, verbosity: int = 0) -> None:
        self.console = console
        self.verbosity = verbosity
        self._lock = threading.Lock()
        self._phase: dict[str, str] = {}

    def __enter__(self) -> ProgressPrinter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def _line(self, cell: str, text: str, style: str = "") -> None:
        if self.verbosity < 0:
            return
        with self._lock:
            line = Text(f"[{cell}] ", style="bold")
            line.append(text, style=style)
            self.console.print(line)

    def cell_phase(self, cell: str, phase: str) -> None:
        if self._phase.get(cell) == phase or phase in QUIET_PHASES:
            self._phase[cell] = phase
            return
        self._phase[cell] = phase
        self._line(cell, phase + ("" if phase == "running" else " ..."))

    def cell_collected(self, cell: str, count: int) -> None:
        self._line(cell, f"collected {count} items")

    def test_done(self, cell: str, test: TestResult) -> None:
        if self.verbosity > 0 or test.outcome in FAILING:
            name = f"{test.nodeid} {test.subtest}".rstrip()
            self._line(cell, f"{name} {test.outcome.upper()}", _outcome_style(test.outcome))

    def cell_done(self, result: CellResult) -> None:
        counts = count_text(result.counts())
        summary = f"{result.status}" + (f" ({counts})" if counts else "")
        summary += f" in {format_seconds(result.duration)}"
        if result.message and result.status not in (CellStatus.PASSED, CellStatus.NOT_RUN):
            summary += " - " + result.message.partition("\n")[0]  # the whole note follows
        self._line(result.cell, summary, STATUS_STYLE.get(result.status, ""))


def _outcome_style(outcome: str) -> str:
    return OUTCOME_STYLE.get(outcome, "")


OUTCOME_STYLE: dict[str, str] = {
    Category.PASSED: "green",
    Category.FAILED: "red",
    Category.ERROR: "red",
    Category.SKIPPED: "yellow",
}


def env_text(cell: CellResult) -> str:
    """``built (why)``, or ``reused`` with what else was done (the project's wheel rebuilt)."""
    if cell.env_status in (EnvState.BUILT, EnvState.REUSED) and cell.env_reason:
        return f"{cell.env_status} ({cell.env_reason})"
    return str(cell.env_status) or "-"


#: the columns every table shows, in pytest's order; other categories get a column when seen
BASE_COLUMNS = tuple(
    c.value for c in (Category.PASSED, Category.FAILED, Category.SKIPPED, Category.ERROR)
)


def count_columns(run: RunResult) -> list[str]:
    """The categories to show: pytest's usual ones, then any a cell reported."""
    seen: dict[str, None] = {}
    for cell in run.cells:
        seen.update(dict.fromkeys(cell.counts()))
    return [*BASE_COLUMNS, *(k for k in seen if k not in BASE_COLUMNS)]


def summary_table(run: RunResult, *, collect_only: bool = False) -> Table:
    table = Table(title="conda matrix", title_justify="left", show_lines=False)
    table.add_column("cell", style="bold", no_wrap=True)
    table.add_column("env", overflow="fold", min_width=len("reused"))
    columns = ["collected", "error"] if collect_only else count_columns(run)
    for name in columns:
        table.add_column("errors" if name == "error" else name, justify="right")
    table.add_column("time", justify="right")
    table.add_column("status", no_wrap=True)
    for cell in run.cells:
        counts = cell.counts()
        if collect_only:
            counts = {**counts, "collected": len(cell.collected_ids or ())}
        table.add_row(
            Text(cell.cell),  # Text, not str: a str is read as rich markup ("pkg[build=x]")
            Text(env_text(cell)),
            *(str(counts.get(name, 0)) for name in columns),
            format_seconds(cell.duration),
            Text(cell.status, style=STATUS_STYLE.get(cell.status, "")),
        )
    return table


def grid_table(run: RunResult) -> Table:
    """Python rows x CUDA columns, each cell showing its status and counts."""
    pythons = list(dict.fromkeys(c.python for c in run.cells))
    cudas = list(dict.fromkeys(c.cuda for c in run.cells))
    by_axes = {(c.python, c.cuda): c for c in run.cells}
    table = Table(title="python x cuda", title_justify="left")
    table.add_column("python", style="bold")
    for cuda in cudas:
        table.add_column(axis_label("cuda", cuda))
    for python in pythons:
        row: list[Text | str] = [axis_label("python", python)]
        for cuda in cudas:
            cell = by_axes.get((python, cuda))
            if cell is None:
                row.append("-")
                continue
            counts = cell.counts()
            text = Text(cell.status, style=STATUS_STYLE.get(cell.status, ""))
            text.append(
                f" {counts.get('passed', 0)}/{counts.get('failed', 0)}/{counts.get('skipped', 0)}"
            )
            row.append(text)
        table.add_row(*row)
    table.caption = "status passed/failed/skipped"
    return table


def render_failures(console: Console, run: RunResult, verbosity: int = 0) -> None:
    """Each distinct failure once, with the cells where it happened."""
    groups = group_failures(run.cells)
    if not groups:
        return
    console.rule("failures")
    for group in groups:
        console.print(
            Text(f"{group.nodeid} {group.subtest}".rstrip() + " ", style="bold red")
            + Text(f"{group.outcome} on {', '.join(group.cells)}")
        )
        text = group.longrepr if verbosity >= 0 else group.message
        if text:
            console.print(Text(text.rstrip()), soft_wrap=True)
        console.print()


def render_differences(console: Console, run: RunResult) -> None:
    diffs = differences(run.cells)
    if not diffs:
        return
    console.rule("what fails where")
    for diff in diffs:
        console.print(Text(f"{diff.nodeid}: ", style="bold") + Text(diff.description, style="red"))
        for line in diff.context:
            console.print(Text(f"    {line}", style="dim"))


def render_run(
    console: Console,
    run: RunResult,
    *,
    notes: Sequence[str] = (),
    verbosity: int = 0,
    reportchars: str = "fE",
    collect_only: bool = False,
) -> None:
    """The final report: failures, what fails where, the table, notes, totals, exit code."""
    if collect_only:
        for line in collected_listing(run.cells):
            console.print(Text(line))
    render_failures(console, run, verbosity)
    render_differences(console, run)
    lines = short_summary(run.cells, reportchars)
    if lines:
        console.rule("short test summary info")
        for line in lines:
            console.print(Text(line))
    console.print()
    console.print(summary_table(run, collect_only=collect_only))
    if len({c.cuda for c in run.cells}) > 1 and len({c.python for c in run.cells}) > 1:
        console.print(grid_table(run))
    for cells, message in group_messages(run.cells):
        console.print(Text(f"{', '.join(cells)}: ", style="bold") + Text(message, style="yellow"))
    for note in notes:
        console.print(Text(note, style="dim"))
    if run.cells and all(c.status == CellStatus.NOT_RUN for c in run.cells):
        console.print(
            Text(
                "warning: no cell ran here: every cell was skipped by the CUDA policy",
                style="bold yellow",
            )
        )
    if collect_only:
        total = sum(len(c.collected_ids or ()) for c in run.cells)
        totals = f"{total} tests collected" + (
            f", {count_text({'error': run.totals().get('error', 0)})}"
            if run.totals().get("error")
            else ""
        )
    else:
        totals = count_text(run.totals()) or "no tests ran"
    by_status: dict[str, int] = {}
    for cell in run.cells:
        by_status[cell.status] = by_status.get(cell.status, 0) + 1
    statuses = ", ".join(f"{n} {s}" for s, n in by_status.items())
    code = int(run.exit_code)
    console.print(
        Text(
            f"{len(run.cells)} cells ({statuses}); {totals} in {format_seconds(run.duration)}"
            f" - exit code {code}",
            style="bold " + ("green" if code == 0 else "red"),
        )
    )
