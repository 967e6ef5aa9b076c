"""What fails where: the smallest description of the cells in which a test fails.

For each test whose outcome differs between cells (or that fails in every cell), find the
simplest explanation, in this order: "fails everywhere"; one axis ("only on py3.9", "only on
py3.9, py3.11", "only on cu11.8"); a single combination of both axes ("only on py3.9 +
cu11.8"); otherwise the explicit list of cells. Only cells that ran the test count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..results import CellResult

FAILING = ("failed", "error")


@dataclass(frozen=True)
class Difference:
    nodeid: str
    failing: tuple[str, ...]  # cell ids where the test failed
    ran: tuple[str, ...]  # cell ids where the test ran at all
    description: str  # e.g. "fails only on py3.9"


def axis_label(axis: str, value: str) -> str:
    if axis == "python":
        return f"py{value}"
    return "cpu" if value == "cpu" else f"cu{value}"


def test_outcomes(cells: Sequence[CellResult]) -> dict[str, dict[str, str]]:
    """nodeid -> {cell id -> worst outcome of that test in that cell}."""
    out: dict[str, dict[str, str]] = {}
    for cell in cells:
        for test in cell.tests:
            per_cell = out.setdefault(test.nodeid, {})
            previous = per_cell.get(cell.cell)
            # a teardown error after a pass must not hide behind the pass
            if previous is None or test.outcome in FAILING:
                per_cell[cell.cell] = test.outcome
    return out


def differences(cells: Sequence[CellResult]) -> list[Difference]:
    """Every test that fails somewhere, with where it fails, in nodeid order."""
    by_id = {c.cell: c for c in cells}
    found: list[Difference] = []
    for nodeid, per_cell in sorted(test_outcomes(cells).items()):
        failing = tuple(c for c in by_id if per_cell.get(c) in FAILING)
        if not failing:
            continue
        ran = tuple(c for c in by_id if c in per_cell)
        description = describe([by_id[c] for c in ran], set(failing))
        found.append(Difference(nodeid=nodeid, failing=failing, ran=ran, description=description))
    return found


def describe(ran: Sequence[CellResult], failing: set[str]) -> str:
    """The smallest description of ``failing`` among the cells in ``ran``."""
    if all(c.cell in failing for c in ran):
        return "fails everywhere" if len(ran) > 1 else f"fails on {ran[0].cell}"
    candidates: list[tuple[int, str]] = []
    for axis in ("python", "cuda"):
        values = _explaining_values(ran, failing, axis)
        if values is not None:
            labels = [axis_label(axis, v) for v in values]
            candidates.append((len(labels), "fails only on " + ", ".join(labels)))
    if candidates:
        return min(candidates)[1]
    failing_cells = [c for c in ran if c.cell in failing]
    pythons = {c.python for c in failing_cells}
    cudas = {c.cuda for c in failing_cells}
    if len(pythons) == 1 and len(cudas) == 1:
        python, cuda = pythons.pop(), cudas.pop()
        matching = {c.cell for c in ran if c.python == python and c.cuda == cuda}
        if matching == failing:
            return f"fails only on {axis_label('python', python)} + {axis_label('cuda', cuda)}"
    return "fails on " + ", ".join(c.cell for c in failing_cells)


def _explaining_values(ran: Iterable[CellResult], failing: set[str], axis: str) -> list[str] | None:
    """The values of ``axis`` that explain ``failing`` exactly, or None if the axis cannot."""
    groups: dict[str, set[bool]] = {}
    for cell in ran:
        value = cell.python if axis == "python" else cell.cuda
        groups.setdefault(value, set()).add(cell.cell in failing)
    if len(groups) < 2 or any(len(flags) > 1 for flags in groups.values()):
        return None
    return [value for value, flags in groups.items() if True in flags]
