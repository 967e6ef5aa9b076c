"""Hooks that conftest.py files and plugins can implement to extend a matrix run.

They are called in the outer pytest process (the one given ``--conda-matrix``), never in
the cells. ``pytest_condamatrix_cell_finished`` is called from the thread that ran the cell:
keep implementations short and thread-safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .matrix import Cell
    from .results import CellResult, RunResult


@pytest.hookspec(firstresult=True)
def pytest_condamatrix_modify_cells(config: pytest.Config, cells: list[Cell]) -> list[Cell] | None:
    """Return the cells to run instead of ``cells`` (after selection), or None to keep them.

    E.g. drop CUDA cells on a machine class, or add dependencies to some cells.
    """


def pytest_condamatrix_cell_finished(config: pytest.Config, result: CellResult) -> None:
    """A cell has finished (passed, failed, crashed, or could not be built)."""


def pytest_condamatrix_run_finished(config: pytest.Config, run: RunResult) -> None:
    """The whole matrix has finished; ``run`` holds every cell's results before reporting."""
