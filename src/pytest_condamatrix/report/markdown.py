"""Markdown summary for ``$GITHUB_STEP_SUMMARY``: grid, differential view, folded failures."""

from __future__ import annotations

import re
from pathlib import Path

from .. import atomic
from ..matrix import axis_label
from ..results import CellResult, CellStatus, RunResult, count_text
from .differential import differences
from .failures import FailureGroup, group_failures

ICONS = {
    CellStatus.PASSED: "✅",
    CellStatus.FAILED: "❌",
    CellStatus.ENV_ERROR: "💥",
    CellStatus.CRASHED: "💥",
    CellStatus.TIMEOUT: "⏱️",
    CellStatus.ERROR: "💥",
    CellStatus.INTERRUPTED: "⚠️",
    CellStatus.NO_TESTS: "⚪",
    CellStatus.NOT_RUN: "⏭️",
    CellStatus.PENDING: "⏳",
    CellStatus.RUNNING: "⏳",
}
MAX_FAILURE_CHARS = 4000
#: GitHub refuses a step summary over 1 MiB: failures past this many bytes are left out
MAX_BYTES = 1_000_000
#: characters that make links, images, HTML, emphasis, code or table cells of running text
#: (a heading needs a line of its own: values never start one, their newlines go)
_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_[]!~"})


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(text: str) -> str:
    """A value as plain text in Markdown: no heading, link, image or HTML can come of it."""
    return _html(_clean(text).translate(_MARKDOWN)).replace("\n", " ")


def _code(text: str) -> str:
    """A value shown as code (an id, a node id): HTML-escaped in <code>, which no backtick
    in the value can end."""
    return f"<code>{_html(_clean(text))}</code>"


def _clean(text: str) -> str:
    """Text that UTF-8 can write: a lone surrogate (from a test's bytes) becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _cell_summary(cell: CellResult) -> str:
    parts = [f"{ICONS.get(cell.status, '')} {_escape(cell.status)}"]
    numbers = count_text(cell.counts())
    if numbers:
        parts.append(_escape(numbers))
    return " · ".join(parts)


def grid(run: RunResult) -> list[str]:
    """Python rows x CUDA columns (a single column for a CPU-only matrix)."""
    pythons = list(dict.fromkeys(c.python for c in run.cells))
    cudas = list(dict.fromkeys(c.cuda for c in run.cells))
    by_axes = {(c.python, c.cuda): c for c in run.cells}
    lines = ["| Python | " + " | ".join(_escape(axis_label("cuda", v)) for v in cudas) + " |"]
    lines.append("|---|" + "---|" * len(cudas))
    for python in pythons:
        row = [
            _cell_summary(by_axes[(python, cuda)]) if (python, cuda) in by_axes else "—"
            for cuda in cudas
        ]
        lines.append(f"| {_escape(axis_label('python', python))} | " + " | ".join(row) + " |")
    return lines


def to_markdown(run: RunResult) -> str:
    code = int(run.exit_code)
    totals = count_text(run.totals()) or "no tests"
    lines = [
        f"## {'✅' if code == 0 else '❌'} conda matrix: {len(run.cells)} cells, "
        + _escape(totals),
        "",
        *grid(run),
        "",
        "| Cell | Env | Status | Time |",
        "|---|---|---|---|",
    ]
    for cell in run.cells:
        env = str(cell.env_status) + (f" ({cell.env_reason})" if cell.env_reason else "")
        lines.append(
            f"| {_code(cell.cell)} | {_escape(env or '-')} | {_cell_summary(cell)} "
            f"| {cell.duration:.1f}s |"
        )
    notes = [cell for cell in run.cells if cell.message]
    if notes:
        lines += ["", "### Cells that need a word", ""]
        for cell in notes:
            first = cell.message.partition("\n")[0][:500]
            lines.append(f"- {_code(cell.cell)} ({_escape(cell.status)}): {_escape(first)}")
    diffs = differences(run.cells)
    if diffs:
        lines += ["", "### What fails where", "", "| Test | Where |", "|---|---|"]
        for d in diffs:
            where = _escape(d.description) + "".join(f"<br>{_escape(c)}" for c in d.context)
            lines.append(f"| {_code(d.nodeid)} | {where} |")
    groups = group_failures(run.cells)
    if groups:
        lines += ["", "### Failures", ""]
    text = "\n".join(lines)
    size = len(text.encode("utf-8"))
    for shown, group in enumerate(groups):
        block = "\n" + "\n".join(_failure(group))
        size += len(block.encode("utf-8"))
        if size > MAX_BYTES:
            text += (
                f"\n\n{len(groups) - shown} more failures are not shown: GitHub takes at most"
                " 1 MiB of step summary. The JUnit and JSON reports hold them all."
            )
            break
        text += block
    return text + "\n"


def _failure(group: FailureGroup) -> list[str]:
    body = _clean(group.longrepr or group.message)
    if len(body) > MAX_FAILURE_CHARS:
        body = body[:MAX_FAILURE_CHARS] + "\n[... truncated]"
    name = f"{group.nodeid} {group.subtest}".rstrip()
    return [
        "<details>",
        f"<summary>{_code(name)} {_html(group.outcome)} on "
        f"{_html(', '.join(group.cells))}: {_html(_clean(group.message[:200]))}</summary>",
        "",
        "~~~~text",
        body.replace("~~~~", "~ ~ ~ ~"),
        "~~~~",
        "</details>",
    ]


def _html(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;")
    )


def write_markdown(run: RunResult, path: Path, *, append: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not append:
        atomic.write_text(path, to_markdown(run))
        return
    with path.open("a", encoding="utf-8", errors="replace") as fh:  # $GITHUB_STEP_SUMMARY
        fh.write(to_markdown(run))
