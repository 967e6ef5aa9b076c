"""What fails where: the smallest description of the cells in which a test fails.

For each test whose outcome differs between cells (or that fails in every cell), find the
simplest explanation, in this order: "fails everywhere"; one axis ("only on py3.9", "only on
py3.9, py3.11", "only on cu11.8"); a single combination of both axes ("only on py3.9 +
cu11.8"); otherwise the explicit list of cells. Only cells that ran the test count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..matrix import axis_label
from ..results import FAILING, CellResult

#: package differences shown per test, the first that tell failing from passing cells
MAX_CONTEXT = 6


@dataclass(frozen=True)
class Difference:
    nodeid: str
    failing: tuple[str, ...]  # cell ids where the test failed
    ran: tuple[str, ...]  # cell ids where the test ran at all
    description: str  # e.g. "fails only on py3.9"
    #: what differs between the failing and the passing cells: "numpy 1.24.4 -> 1.26.4"
    context: tuple[str, ...] = ()


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
    failed = {t.nodeid for c in cells for t in c.tests if t.outcome in FAILING}
    # only the tests that failed somewhere are looked at: usually none, after the last cell
    outcomes = test_outcomes(cells) if failed else {}
    for nodeid in sorted(failed):
        per_cell = outcomes[nodeid]  # keeps a failure over a pass: never without one here
        failing = tuple(c for c in by_id if per_cell.get(c) in FAILING)
        ran = tuple(c for c in by_id if c in per_cell)
        description = describe([by_id[c] for c in ran], set(failing))
        passing = [by_id[c] for c in ran if c not in failing]
        context = what_differs([by_id[c] for c in failing], passing) if passing else ()
        found.append(
            Difference(
                nodeid=nodeid,
                failing=failing,
                ran=ran,
                description=description,
                context=context,
            )
        )
    return found


def what_differs(failing: Sequence[CellResult], passing: Sequence[CellResult]) -> tuple[str, ...]:
    """The interpreter and packages whose version or build never match between the two sides.

    ``name failing-side -> passing-side``, e.g. ``numpy 1.24.4 -> 1.26.4``; a build is named
    only where the versions are equal, a package missing on one side is ``absent``.
    """

    def versions(cell: CellResult) -> dict[str, str]:
        found = {"python": cell.interpreter} if cell.interpreter else {}
        for entry in cell.packages:
            name, version = _split_package(entry)
            if name != "python":  # the interpreter's full version says it
                found[name] = version
        return found

    per_cell = [versions(c) for c in (*failing, *passing)]
    names = {n for found in per_cell for n in found}

    def side(start: int, stop: int) -> dict[str, set[str]]:
        return {n: {found.get(n, "absent") for found in per_cell[start:stop]} for n in names}

    bad, good = side(0, len(failing)), side(len(failing), len(per_cell))
    versions_differ, builds_differ = [], []
    for name in sorted(names, key=lambda n: (n != "python", n)):
        if bad[name] & good[name]:
            continue  # some failing and some passing cell have the same: not the cause
        plain_bad, plain_good = _plain(bad[name]), _plain(good[name])
        if plain_bad & plain_good:
            builds_differ.append(f"{name} {_join(bad[name])} -> {_join(good[name])}")
        else:
            versions_differ.append(f"{name} {_join(plain_bad)} -> {_join(plain_good)}")
    return tuple([*versions_differ, *builds_differ][:MAX_CONTEXT])


def _split_package(entry: str) -> tuple[str, str]:
    """``numpy=1.26.4=py312_0`` -> (numpy, 1.26.4=py312_0); ``pip:attrs==23.1`` likewise."""
    if entry.startswith("pip:"):
        name, _, version = entry[4:].partition("==")
        return f"pip:{name}", version
    name, _, version = entry.partition("=")
    return name, version


def _plain(values: set[str]) -> set[str]:
    return {v.split("=")[0] for v in values}


def _join(values: set[str]) -> str:
    return ", ".join(sorted(values))


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
