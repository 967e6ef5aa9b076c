"""Failures and cell messages shown once each, with the cells where they happened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..results import FAILING, CellResult


@dataclass(frozen=True)
class FailureGroup:
    nodeid: str
    outcome: str
    message: str
    longrepr: str
    cells: tuple[str, ...]
    subtest: str = ""


def group_failures(cells: Sequence[CellResult]) -> list[FailureGroup]:
    """One group per (test, subtest, outcome, crash message), listing the cells where it happened.

    Tracebacks differ between cells only in paths and line noise, so the crash message (the
    ``E`` line) decides identity; the first cell's traceback stands for the group.
    """
    groups: dict[tuple[str, str, str, str], tuple[str, list[str]]] = {}
    for cell in cells:
        for test in cell.tests:
            if test.outcome not in FAILING:
                continue
            key = (test.nodeid, test.subtest, test.outcome, test.message)
            if key not in groups:
                groups[key] = (test.longrepr, [])
            if cell.cell not in groups[key][1]:
                groups[key][1].append(cell.cell)
    return [
        FailureGroup(
            nodeid=k[0],
            subtest=k[1],
            outcome=k[2],
            message=k[3],
            longrepr=v[0],
            cells=tuple(v[1]),
        )
        for k, v in groups.items()
    ]


def group_messages(cells: Sequence[CellResult]) -> list[tuple[tuple[str, ...], str]]:
    """Each distinct cell message once, with the cells that gave it (a conftest that fails
    to import on every cell is one cause, not nine)."""
    groups: dict[str, list[str]] = {}
    for cell in cells:
        if cell.message:
            groups.setdefault(cell.message, []).append(cell.cell)
    return [(tuple(ids), message) for message, ids in groups.items()]
