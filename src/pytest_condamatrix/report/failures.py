"""Failures shown once each: identical failures of one test across cells are grouped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..results import CellResult

FAILING = ("failed", "error")


@dataclass(frozen=True)
class FailureGroup:
    nodeid: str
    outcome: str
    message: str
    longrepr: str
    cells: tuple[str, ...]


def group_failures(cells: Sequence[CellResult]) -> list[FailureGroup]:
    """One group per (test, outcome, crash message), listing the cells where it happened.

    Tracebacks differ between cells only in paths and line noise, so the crash message (the
    ``E`` line) decides identity; the first cell's traceback stands for the group.
    """
    groups: dict[tuple[str, str, str], tuple[str, list[str]]] = {}
    for cell in cells:
        for test in cell.tests:
            if test.outcome not in FAILING:
                continue
            key = (test.nodeid, test.outcome, test.message)
            if key not in groups:
                groups[key] = (test.longrepr, [])
            groups[key][1].append(cell.cell)
    return [
        FailureGroup(nodeid=k[0], outcome=k[1], message=k[2], longrepr=v[0], cells=tuple(v[1]))
        for k, v in groups.items()
    ]
