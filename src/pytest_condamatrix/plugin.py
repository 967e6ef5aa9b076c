"""pytest hooks: the ``--conda-matrix*`` options and the takeover of ``pytest_cmdline_main``.

With ``--conda-matrix`` the outer pytest collects nothing itself: it runs the whole matrix
and exits with the aggregated code. Inside a cell (``CONDAMATRIX_CELL`` set) the plugin is
passive, so a cell that happens to have it installed runs its tests normally.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Sequence

import pytest

from .errors import exit_code_for
from .options import CELL_ONLY_OPTIONS, OPTIONS


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    # Inside a cell the worker may have declared the same hooks first.
    if not hasattr(pluginmanager.hook, "pytest_condamatrix_modify_cells"):
        pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        "conda-matrix",
        "conda matrix (run the suite in every Python x CUDA cell of [tool.condamatrix])",
    )
    for name, settings in OPTIONS:
        group.addoption(name, **settings)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gpu: needs a usable NVIDIA GPU; skipped in matrix cells that cannot use one"
    )


def _takes_over(args: Sequence[str]) -> bool:
    return not os.environ.get("CONDAMATRIX_CELL") and any(
        arg in ("--conda-matrix", "--conda-matrix-list") for arg in args
    )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    """Tolerate a conftest.py that imports the project's dependencies in the outer process.

    Those dependencies live in the cells' envs, not beside this tool; the outer process only
    needs conftest.py for this plugin's hooks, so a failed import is a warning, not a crash.
    """
    try:
        yield
    except Exception as exc:
        if not _takes_over(args):
            raise
        cause = getattr(exc, "cause", exc)
        sys.stderr.write(
            f"warning: conftest.py could not be imported by the outer pytest "
            f"({type(cause).__name__}: {cause}); its conda-matrix hooks are not used here, "
            "and every cell imports it normally\n"
        )
    if _takes_over(args):
        _drop_cell_only_options(early_config, parser, args)
    return None


def _drop_cell_only_options(config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Leave to the cells the options of plugins only their envs have (``-n 2``, ``--cov``).

    The outer process parses the same arguments and ini ``addopts`` as the cells, but runs no
    test: an option of pytest-xdist or pytest-cov, installed in the cells' envs and not
    beside this tool, must not stop it. The cells still get every argument.
    """
    try:
        _, unknown = parser.parse_known_and_unknown_args(args)
    except Exception:  # let pytest's own parse say what is wrong
        return
    dropped = [arg for arg in unknown if arg.startswith("-")]
    for arg in dropped:
        args.remove(arg)
    config.stash[CELL_ONLY_OPTIONS] = dropped


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if os.environ.get("CONDAMATRIX_CELL"):
        return None  # inside a cell: the tests run here, normally
    if not (config.getoption("conda_matrix") or config.getoption("conda_matrix_list")):
        return None
    from .run.from_pytest import run_from_pytest

    # configured as a pytest session would be: plugins such as --report-log open their
    # files in pytest_configure, and are then given every cell's reports
    config._do_configure()
    try:
        return exit_code_for(
            lambda: int(run_from_pytest(config)), error_prefix="ERROR: ", interrupted="Interrupted."
        )
    finally:
        config._ensure_unconfigure()
