"""The ``--conda-matrix*`` options by name, and what of the user's arguments reaches a cell.

The cells run the user's pytest arguments minus ours and minus the per-run output files
(which every cell would overwrite), from the command line and ``PYTEST_ADDOPTS`` (split as a
shell would). The ini file's ``addopts`` is read by each cell's pytest itself: there the
worker accepts our options and ignores them.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

import pytest

#: options of ours that take a value (stripped, with their value, from the cells' arguments)
VALUE_OPTIONS = (
    "--conda-matrix-select",
    "--conda-matrix-jobs",
    "--conda-matrix-gpu-jobs",
    "--conda-matrix-cache-dir",
    "--conda-matrix-json",
    "--conda-matrix-junit",
    "--conda-matrix-markdown",
    "--conda-matrix-channel",
    "--conda-matrix-timeout",
    "--conda-matrix-config",
    "--conda-matrix-engine",
    "--conda-matrix-install",
)
FLAG_OPTIONS = (
    "--conda-matrix",
    "--conda-matrix-list",
    "--conda-matrix-rebuild",
    "--conda-matrix-require-gpu",
    "--conda-matrix-locked",
)
#: pytest options whose output file would be overwritten by every cell
PER_RUN_VALUE_OPTIONS = ("--junitxml", "--junit-xml", "--result-log", "--report-log")
#: what the outer run left out of its own arguments: options only the cells' plugins know
CELL_ONLY_OPTIONS = pytest.StashKey[list[str]]()


def strip_matrix_args(args: Sequence[str]) -> list[str]:
    """The arguments a cell's pytest gets: the user's, minus ours and per-run output files."""
    out: list[str] = []
    skip_next = False
    valued = VALUE_OPTIONS + PER_RUN_VALUE_OPTIONS
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        if arg in FLAG_OPTIONS:
            continue
        if arg in valued:
            skip_next = True
            continue
        if arg.startswith(tuple(f"{o}=" for o in valued)):
            continue
        out.append(arg)
    return out


def strip_addopts(text: str) -> str:
    """``PYTEST_ADDOPTS`` for a cell: split as a shell would (as pytest does), then stripped."""
    try:
        words = shlex.split(text)
    except ValueError:  # unbalanced quotes: pytest itself will say so in the cell
        return text
    return shlex.join(strip_matrix_args(words))
