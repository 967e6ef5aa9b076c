"""The variables a cell's processes see: one place for a matrix run and `condamatrix run`.

The outer Python's own variables must not leak into a cell's interpreter (DROP_ENV); the cell
is told who it is (``CONDAMATRIX_*``); ``~/.local`` must not add packages to its env.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..cuda import GpuDecision
from ..matrix import Cell

#: variables of the outer Python that must not reach a cell's interpreter
DROP_ENV = ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV")


def cell_variables(
    cell: Cell, gpu: GpuDecision, pythonpath: Sequence[str], outer: Mapping[str, str]
) -> dict[str, str]:
    """``outer`` without DROP_ENV, with the cell's import path and its ``CONDAMATRIX_*``."""
    environ = {k: v for k, v in outer.items() if k not in DROP_ENV}
    environ["PYTHONPATH"] = os.pathsep.join(pythonpath)
    environ["PYTHONNOUSERSITE"] = "1"  # ~/.local must not leak packages into a cell
    environ["CONDAMATRIX_CELL"] = cell.id
    environ["CONDAMATRIX_PYTHON"] = cell.python
    environ["CONDAMATRIX_CUDA"] = cell.cuda
    environ["CONDAMATRIX_GPU"] = "1" if gpu.gpu else "0"
    environ["CONDAMATRIX_GPU_REASON"] = gpu.reason
    return environ
