"""The plugin's own hooks, implemented in a project's conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import MakeProject

CONFTEST = """
def pytest_condamatrix_modify_cells(config, cells):
    return [c for c in cells if c.python != "3.9"]

def pytest_condamatrix_cell_finished(config, result):
    with open("finished.txt", "a") as fh:
        fh.write(result.cell + " " + result.status + "\\n")

def pytest_condamatrix_run_finished(config, run):
    with open("run.txt", "w") as fh:
        fh.write(str(len(run.cells)) + " " + str(int(run.exit_code)))
"""


def test_hooks_can_list_cells_without_running(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.condamatrix]\npython = ['3.9', '3.12']\n")
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess("--conda-matrix-list")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["py3.12-cpu *"])
    result.stdout.no_fnmatch_line("py3.9-cpu*")


def test_a_hook_that_drops_every_cell_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.condamatrix]\npython = ['3.12']\n")
    pytester.makeconftest("def pytest_condamatrix_modify_cells(config, cells):\n    return []\n")
    result = pytester.runpytest_subprocess("--conda-matrix")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: pytest_condamatrix_modify_cells left no cell to run"])


@pytest.mark.integration
def test_hooks_see_cells_and_results(
    pytester: pytest.Pytester, matrix_project: MakeProject, warm_cache: Path
) -> None:
    matrix_project(python=("3.9", "3.12"))
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess(
        "--conda-matrix", "--conda-matrix-cache-dir", str(warm_cache)
    )
    assert result.ret == 0, result.stdout.str()
    assert (pytester.path / "finished.txt").read_text() == "py3.12-cpu passed\n"
    assert (pytester.path / "run.txt").read_text() == "1 0"


@pytest.mark.integration
def test_a_conftest_importing_cell_only_packages_does_not_break_the_outer_run(
    pytester: pytest.Pytester, matrix_project: MakeProject, warm_cache: Path
) -> None:
    matrix_project(python=("3.12",), dependencies=("pytest", "cudademo"))
    pytester.makeconftest("import cudademo  # only in the cells' envs\n")
    result = pytester.runpytest_subprocess(
        "--conda-matrix", "--conda-matrix-cache-dir", str(warm_cache)
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(
        ["warning: conftest.py could not be imported by the outer pytest (*cudademo*"]
    )
    result.stdout.fnmatch_lines(["*1 cells (1 passed)*"])
    # without --conda-matrix the import error is pytest's usual one
    assert pytester.runpytest_subprocess().ret == 4
