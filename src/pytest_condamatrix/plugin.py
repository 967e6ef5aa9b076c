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

from .errors import CondaMatrixError, ExitCode
from .options import CELL_ONLY_OPTIONS


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
    group.addoption(
        "--conda-matrix",
        action="store_true",
        default=False,
        help="run this test suite in every cell of the matrix, each in its own cached conda "
        "env, and report all cells together; other arguments are passed to each cell's pytest",
    )
    group.addoption(
        "--conda-matrix-list",
        action="store_true",
        default=False,
        help="list the matrix cells (after --conda-matrix-select) and exit",
    )
    group.addoption(
        "--conda-matrix-select",
        action="append",
        default=[],
        metavar="GLOB",
        help="run only cells whose id matches GLOB, e.g. 'py3.12-*' (repeatable)",
    )
    group.addoption(
        "--conda-matrix-jobs",
        type=int,
        default=None,
        metavar="N",
        help="cells whose tests run at once, the next ones being prepared meanwhile "
        "(default: config 'jobs', else one per CPU)",
    )
    group.addoption(
        "--conda-matrix-gpu-jobs",
        type=int,
        default=None,
        metavar="N",
        help="cells that may use the GPU at once, each given a device of its own "
        "(CUDA_VISIBLE_DEVICES) when N > 1; the others wait their turn "
        "(default: config 'gpu-jobs', else 1)",
    )
    group.addoption(
        "--conda-matrix-rebuild",
        action="store_true",
        default=False,
        help="rebuild the selected cells' envs even when the cache holds valid ones",
    )
    group.addoption(
        "--conda-matrix-require-gpu",
        action="store_true",
        default=False,
        help="fail CUDA cells that cannot use a GPU here instead of skipping them or their "
        "gpu tests (for GPU runners: a broken driver cannot hide behind skips)",
    )
    group.addoption(
        "--conda-matrix-locked",
        action="store_true",
        default=False,
        help="install exactly what condamatrix.lock pins; fail if it is missing or out of "
        "date with the configuration (instead of solving the cells it no longer fits)",
    )
    group.addoption(
        "--conda-matrix-cache-dir",
        default=None,
        metavar="DIR",
        help="where envs and packages are cached (default: $CONDAMATRIX_CACHE_DIR, else the "
        "user cache folder)",
    )
    group.addoption(
        "--conda-matrix-json",
        default=None,
        metavar="PATH",
        help="write all cells' results to PATH as JSON",
    )
    group.addoption(
        "--conda-matrix-junit",
        default=None,
        metavar="PATH",
        help="write one JUnit XML file with a <testsuite> per cell to PATH (--junitxml given "
        "with --conda-matrix does the same)",
    )
    group.addoption(
        "--conda-matrix-markdown",
        default=None,
        metavar="PATH",
        help="write a Markdown summary to PATH (it is appended to $GITHUB_STEP_SUMMARY when "
        "that is set)",
    )
    group.addoption(
        "--conda-matrix-channel",
        action="append",
        default=[],
        metavar="CHANNEL",
        help="use CHANNEL (name, URL or local folder) instead of the configured channels "
        "(repeatable)",
    )
    group.addoption(
        "--conda-matrix-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="kill a cell's pytest (and everything it started) after SECONDS",
    )
    group.addoption(
        "--conda-matrix-config",
        default=None,
        metavar="PATH",
        help="read the matrix from PATH (pyproject.toml or condamatrix.yml) instead of "
        "searching from the current folder upwards",
    )
    group.addoption(
        "--conda-matrix-engine",
        default=None,
        choices=("rattler", "conda", "mamba", "micromamba"),
        help="build envs with this engine instead of the configured one (default: config "
        "'engine', else rattler, built in); conda, mamba and micromamba must be on PATH",
    )
    group.addoption(
        "--conda-matrix-install",
        default=None,
        choices=("wheel", "editable", "none"),
        help="how the project reaches the cells, instead of the configured 'install': its "
        "wheel, an editable install, or its sources on pythonpath",
    )


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
        return int(run_from_pytest(config))
    except CondaMatrixError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return int(ExitCode.INTERRUPTED)
    finally:
        config._ensure_unconfigure()
