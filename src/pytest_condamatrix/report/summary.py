"""pytest's habits across the matrix: the short test summary (``-r``) and ``--collect-only``.

Each line of the short summary is pytest's own (``FAILED nodeid - message``), said once for
the matrix with the cells it happened in; the collected ids are listed once, with the ids
only some cells collected.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..results import CellResult, CellStatus

#: -r character -> (category, the word pytest's short summary gives it)
REPORT_CHARS = {
    "f": ("failed", "FAILED"),
    "E": ("error", "ERROR"),
    "s": ("skipped", "SKIPPED"),
    "x": ("xfailed", "XFAIL"),
    "X": ("xpassed", "XPASS"),
    "p": ("passed", "PASSED"),
    "P": ("passed", "PASSED"),
}


def short_summary(cells: Sequence[CellResult], reportchars: str) -> list[str]:
    """The lines of pytest's short test summary info, each once with its cells."""
    lines: list[str] = []
    done: set[str] = set()
    for char in reportchars:
        if char not in REPORT_CHARS or REPORT_CHARS[char][0] in done:
            continue
        category, word = REPORT_CHARS[char]
        done.add(category)
        found: dict[tuple[str, str], list[str]] = {}
        for cell in cells:
            for test in cell.tests:
                if test.outcome != category:
                    continue
                name = f"{test.nodeid} {test.subtest}".rstrip()
                where = found.setdefault((name, _first_line(test.message)), [])
                if cell.cell not in where:
                    where.append(cell.cell)
        for (name, message), where in found.items():
            text = f"{word} {name}" + (f" - {message}" if message else "")
            lines.append(f"{text} [{_cells(where, cells)}]")
    return lines


def collected_listing(cells: Sequence[CellResult]) -> list[str]:
    """The ids every cell collected, once; then what only some cells collected."""
    listed = [c for c in cells if c.collected_ids is not None]
    if not listed:
        return []
    sets = {c.cell: set(c.collected_ids or ()) for c in listed}
    common = set.intersection(*sets.values())
    order = list(dict.fromkeys(i for c in listed for i in c.collected_ids or ()))
    lines = [i for i in order if i in common]
    for nodeid in order:
        if nodeid in common:
            continue
        where = [c.cell for c in listed if nodeid in sets[c.cell]]
        lines.append(f"{nodeid} [only in {', '.join(where)}]")
    return lines


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _cells(where: Sequence[str], cells: Sequence[CellResult]) -> str:
    ran = [c for c in cells if c.status not in (CellStatus.NOT_RUN, CellStatus.ENV_ERROR)]
    if len(where) == len(ran) and len(ran) > 1:
        return "all cells"
    return ", ".join(where)
