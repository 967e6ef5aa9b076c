"""Markdown summary for ``$GITHUB_STEP_SUMMARY``: grid, differential view, folded failures."""

from __future__ import annotations

from pathlib import Path

from ..results import CellResult, RunResult
from .differential import axis_label, differences
from .failures import group_failures

ICONS = {
    "passed": "✅",
    "failed": "❌",
    "env-error": "💥",
    "crashed": "💥",
    "timeout": "⏱️",
    "error": "💥",
    "interrupted": "⚠️",
    "no-tests": "⚪",
    "not-run": "⏭️",
}
MAX_FAILURE_CHARS = 4000


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _cell_summary(cell: CellResult) -> str:
    counts = cell.counts()
    parts = [f"{ICONS.get(cell.status, '')} {cell.status}"]
    numbers = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    if numbers:
        parts.append(numbers)
    return " · ".join(parts)


def grid(run: RunResult) -> list[str]:
    """Python rows x CUDA columns (a single column for a CPU-only matrix)."""
    pythons = list(dict.fromkeys(c.python for c in run.cells))
    cudas = list(dict.fromkeys(c.cuda for c in run.cells))
    by_axes = {(c.python, c.cuda): c for c in run.cells}
    lines = ["| Python | " + " | ".join(axis_label("cuda", v) for v in cudas) + " |"]
    lines.append("|---|" + "---|" * len(cudas))
    for python in pythons:
        row = [
            _cell_summary(by_axes[(python, cuda)]) if (python, cuda) in by_axes else "—"
            for cuda in cudas
        ]
        lines.append(f"| {axis_label('python', python)} | " + " | ".join(row) + " |")
    return lines


def to_markdown(run: RunResult) -> str:
    code = int(run.exit_code)
    totals = ", ".join(f"{n} {k}" for k, n in run.totals().items() if n) or "no tests"
    lines = [
        f"## {'✅' if code == 0 else '❌'} conda matrix: {len(run.cells)} cells, {totals}",
        "",
        *grid(run),
        "",
        "| Cell | Env | Status | Time |",
        "|---|---|---|---|",
    ]
    for cell in run.cells:
        env = cell.env_status + (f" ({cell.env_reason})" if cell.env_reason else "")
        lines.append(
            f"| `{cell.cell}` | {_escape(env or '-')} | {_escape(_cell_summary(cell))} "
            f"| {cell.duration:.1f}s |"
        )
    notes = [cell for cell in run.cells if cell.message]
    if notes:
        lines += ["", "### Cells that need a word", ""]
        for cell in notes:
            first = cell.message.partition("\n")[0]
            lines.append(f"- `{cell.cell}` ({cell.status}): {_escape(first)}")
    diffs = differences(run.cells)
    if diffs:
        lines += ["", "### What fails where", "", "| Test | Where |", "|---|---|"]
        lines += [f"| `{_escape(d.nodeid)}` | {d.description} |" for d in diffs]
    groups = group_failures(run.cells)
    if groups:
        lines += ["", "### Failures", ""]
        for group in groups:
            text = group.longrepr or group.message
            if len(text) > MAX_FAILURE_CHARS:
                text = text[:MAX_FAILURE_CHARS] + "\n[... truncated]"
            lines += [
                "<details>",
                f"<summary><code>{_html(group.nodeid)}</code> {group.outcome} on "
                f"{', '.join(group.cells)}: {_html(group.message[:200])}</summary>",
                "",
                "~~~~text",
                text.replace("~~~~", "~ ~ ~ ~"),
                "~~~~",
                "</details>",
            ]
    lines.append("")
    return "\n".join(lines)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_markdown(run: RunResult, path: Path, *, append: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as fh:
        fh.write(to_markdown(run))
