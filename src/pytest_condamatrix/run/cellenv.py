"""The variables a cell's processes see: one place for a matrix run and `condamatrix run`.

The outer Python's own variables must not leak into a cell's interpreter; the cell
is told who it is (``CONDAMATRIX_*``); ``~/.local`` must not add packages to its env.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..matrix import Cell
from ..processes import OUTER_ENV_VARS, child_environ
from .gpu import GpuDecision


def cell_variables(
    cell: Cell, gpu: GpuDecision, pythonpath: Sequence[str], outer: Mapping[str, str]
) -> dict[str, str]:
    """``outer`` without the outer env's variables, with the cell's import path and its
    ``CONDAMATRIX_*``."""
    environ = child_environ(outer, drop=OUTER_ENV_VARS)
    environ["PYTHONPATH"] = os.pathsep.join(pythonpath)
    environ["PYTHONNOUSERSITE"] = "1"  # ~/.local must not leak packages into a cell
    environ["CONDAMATRIX_CELL"] = cell.id
    environ["CONDAMATRIX_PYTHON"] = cell.python
    environ["CONDAMATRIX_CUDA"] = cell.cuda
    environ["CONDAMATRIX_GPU"] = "1" if gpu.gpu else "0"
    environ["CONDAMATRIX_GPU_REASON"] = gpu.reason
    return environ
