"""The ``--conda-matrix*`` options in one table, and what of the user's arguments reaches a
cell.

The cells run the user's pytest arguments minus ours and minus the per-run output files
(which every cell would overwrite), from the command line and ``PYTEST_ADDOPTS`` (split as a
shell would). The ini file's ``addopts`` is read by each cell's pytest itself: there the
worker accepts our options and ignores them.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from typing import Any

import pytest


def _option(name: str, **settings: Any) -> tuple[str, dict[str, Any]]:
    return name, settings


#: every option of ours, as ``pytest --help`` lists them: what the plugin adds to pytest,
#: and what is stripped from the cells' arguments
OPTIONS = (
    _option(
        "--conda-matrix",
        action="store_true",
        default=False,
        help="run this test suite in every cell of the matrix, each in its own cached conda "
        "env, and report all cells together; other arguments are passed to each cell's pytest",
    ),
    _option(
        "--conda-matrix-list",
        action="store_true",
        default=False,
        help="list the matrix cells (after --conda-matrix-select) and exit",
    ),
    _option(
        "--conda-matrix-select",
        action="append",
        default=[],
        metavar="GLOB",
        help="run only cells whose id matches GLOB, e.g. 'py3.12-*' (repeatable)",
    ),
    _option(
        "--conda-matrix-jobs",
        type=int,
        default=None,
        metavar="N",
        help="cells whose tests run at once, the next ones being prepared meanwhile "
        "(default: config 'jobs', else one per CPU)",
    ),
    _option(
        "--conda-matrix-gpu-jobs",
        type=int,
        default=None,
        metavar="N",
        help="cells that may use the GPU at once, each given a device of its own "
        "(CUDA_VISIBLE_DEVICES) when N > 1; the others wait their turn "
        "(default: config 'gpu-jobs', else 1)",
    ),
    _option(
        "--conda-matrix-rebuild",
        action="store_true",
        default=False,
        help="rebuild the selected cells' envs even when the cache holds valid ones",
    ),
    _option(
        "--conda-matrix-require-gpu",
        action="store_true",
        default=False,
        help="fail CUDA cells that cannot use a GPU here instead of skipping them or their "
        "gpu tests (for GPU runners: a broken driver cannot hide behind skips)",
    ),
    _option(
        "--conda-matrix-locked",
        action="store_true",
        default=False,
        help="install exactly what condamatrix.lock pins; fail if it is missing or out of "
        "date with the configuration (instead of solving the cells it no longer fits)",
    ),
    _option(
        "--conda-matrix-cache-dir",
        default=None,
        metavar="DIR",
        help="where envs and packages are cached (default: $CONDAMATRIX_CACHE_DIR, else the "
        "user cache folder)",
    ),
    _option(
        "--conda-matrix-json",
        default=None,
        metavar="PATH",
        help="write all cells' results to PATH as JSON",
    ),
    _option(
        "--conda-matrix-junit",
        default=None,
        metavar="PATH",
        help="write one JUnit XML file with a <testsuite> per cell to PATH (--junitxml given "
        "with --conda-matrix does the same)",
    ),
    _option(
        "--conda-matrix-markdown",
        default=None,
        metavar="PATH",
        help="write a Markdown summary to PATH (it is appended to $GITHUB_STEP_SUMMARY when "
        "that is set)",
    ),
    _option(
        "--conda-matrix-channel",
        action="append",
        default=[],
        metavar="CHANNEL",
        help="use CHANNEL (name, URL or local folder) instead of the configured channels "
        "(repeatable)",
    ),
    _option(
        "--conda-matrix-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="kill a cell's pytest (and everything it started) after SECONDS",
    ),
    _option(
        "--conda-matrix-config",
        default=None,
        metavar="PATH",
        help="read the matrix from PATH (pyproject.toml or condamatrix.yml) instead of "
        "searching from the current folder upwards",
    ),
    _option(
        "--conda-matrix-engine",
        default=None,
        choices=("rattler", "conda", "mamba", "micromamba"),
        help="build envs with this engine instead of the configured one (default: config "
        "'engine', else rattler, built in); conda, mamba and micromamba must be on PATH",
    ),
    _option(
        "--conda-matrix-install",
        default=None,
        choices=("wheel", "editable", "none"),
        help="how the project reaches the cells, instead of the configured 'install': its "
        "wheel, an editable install, or its sources on pythonpath",
    ),
)

#: options of ours that take a value (stripped, with their value, from the cells' arguments)
VALUE_OPTIONS = tuple(name for name, settings in OPTIONS if settings.get("action") != "store_true")
FLAG_OPTIONS = tuple(name for name, settings in OPTIONS if settings.get("action") == "store_true")
#: pytest options whose output file would be overwritten by every cell
PER_RUN_VALUE_OPTIONS = ("--junitxml", "--junit-xml", "--result-log", "--report-log")
#: what the outer run left out of its own arguments: options only the cells' plugins know
CELL_ONLY_OPTIONS = pytest.StashKey[list[str]]()


def parse_known(args: Sequence[str], *names: str) -> argparse.Namespace:
    """The options ``names`` of ours as pytest reads them from ``args``; the rest is left."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for name, settings in OPTIONS:
        if name in names:
            # choices are checked where the values are used, with a message of ours
            parser.add_argument(
                name, **{k: v for k, v in settings.items() if k not in ("help", "choices")}
            )
    known, _ = parser.parse_known_args(list(args))
    return known


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
