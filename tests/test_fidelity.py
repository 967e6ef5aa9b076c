"""The matrix says what pytest says, for the habits pytest users have (real envs).

Each test runs ``pytest --conda-matrix`` as a user would, in cells built from the local
channel: categories (xfail, xpass, deselected, warnings), ``-x``, ``--collect-only``, ``-r``,
exit codes, a cell that ends before reporting, options that must not reach the cells, and
the outer pytest's plugins seeing every cell's reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import MakeProject, RunMatrix

pytestmark = pytest.mark.integration

CATEGORIES = """
import warnings
import pytest

def test_passes():
    pass

def test_fails():
    assert 1 == 2, "one is not two"

@pytest.mark.xfail(reason="known bug")
def test_xfails():
    assert False

@pytest.mark.xfail(reason="fixed meanwhile")
def test_xpasses():
    pass

def test_skips():
    pytest.skip("not here")

def test_warns():
    warnings.warn("careful", UserWarning)

def test_deselected_by_k():
    pass
"""


def test_every_category_is_counted_as_pytest_counts_it(
    matrix_project: MakeProject, run_matrix: RunMatrix, warm_cache: Path
) -> None:
    matrix_project(python=("3.9", "3.12"), tests=CATEGORIES)
    result, data = run_matrix(warm_cache, "-k", "not deselected_by_k")
    assert result.ret == 1
    expected = {
        "failed": 1,
        "passed": 2,
        "skipped": 1,
        "deselected": 1,
        "xfailed": 1,
        "xpassed": 1,
        "warnings": 1,
    }
    for cell in data["cells"]:
        assert cell["counts"] == expected, cell["cell"]
        assert cell["summary"] == expected  # the cell's own summary line said so
    assert data["totals"]["xfailed"] == 2 and data["totals"]["deselected"] == 2
    result.stdout.fnmatch_lines(
        [
            "*cell*passed*failed*skipped*errors*deselected*xfailed*xpassed*warnings*",
            "*py3.9-cpu*reused*2*1*1*0*1*1*1*1*failed*",
            "*2 cells (2 failed); 2 failed, 4 passed, 2 skipped, 2 deselected, 2 xfailed, "
            "2 xpassed, 2 warnings in*",
        ]
    )


def test_maxfail_stops_starting_cells(
    matrix_project: MakeProject, run_matrix: RunMatrix, warm_cache: Path
) -> None:
    matrix_project(python=("3.9", "3.12"), tests="def test_bad():\n    assert False\n")
    result, data = run_matrix(warm_cache, "-x", "--conda-matrix-jobs", "1")
    assert result.ret == 1
    # the first cell to run (matrix order, or the longest of the last run first) fails
    first, second = sorted(data["cells"], key=lambda c: c["status"] == "not-run")
    assert first["status"] == "failed"
    assert second["status"] == "not-run"
    assert f"--maxfail=1 was reached (in {first['cell']})" in second["message"]
    assert second["tests"] == []


def test_collect_only_lists_the_ids_once_with_differences(
    matrix_project: MakeProject, run_matrix: RunMatrix, warm_cache: Path
) -> None:
    tests = (
        "import sys\n\ndef test_everywhere():\n    pass\n\n"
        "if sys.version_info >= (3, 10):\n    def test_new_pythons_only():\n        pass\n"
    )
    matrix_project(python=("3.9", "3.12"), tests=tests)
    result, data = run_matrix(warm_cache, "--co", "-q")
    assert result.ret == 0
    out = result.stdout.str()
    assert out.count("test_things.py::test_everywhere") == 1
    result.stdout.fnmatch_lines(
        ["test_things.py::test_new_pythons_only [[]only in py3.12-cpu]", "*3 tests collected*"]
    )
    by_cell = {c["cell"]: c for c in data["cells"]}
    assert by_cell["py3.9-cpu"]["collected_ids"] == ["test_things.py::test_everywhere"]


def test_short_summary_is_given_once_with_its_cells(
    matrix_project: MakeProject, run_matrix: RunMatrix, warm_cache: Path
) -> None:
    tests = (
        "import sys, pytest\n\ndef test_bad():\n    assert False, 'broken'\n\n"
        "def test_old():\n    if sys.version_info < (3, 10):\n        pytest.skip('too old')\n"
    )
    matrix_project(python=("3.9", "3.12"), tests=tests)
    result, _ = run_matrix(warm_cache, "-rfs")
    out = result.stdout.str()
    assert "short test summary info" in out
    assert out.count("FAILED test_things.py::test_bad") == 1
    result.stdout.fnmatch_lines(
        [
            "FAILED test_things.py::test_bad - AssertionError: broken [[]all cells]",
            "SKIPPED test_things.py::test_old - too old [[]py3.9-cpu]",
        ]
    )


def test_a_missing_path_is_a_usage_error_said_once(
    matrix_project: MakeProject, run_matrix: RunMatrix, warm_cache: Path
) -> None:
    matrix_project(python=("3.9", "3.12"))
    result, data = run_matrix(warm_cache, "no_such_tests.py")
    assert result.ret == 4
    assert result.stderr.str().count("file or directory not found: no_such_tests.py") == 1
    assert data == {}  # nothing ran


def test_the_same_usage_error_in_every_cell_is_the_runs_exit_code_said_once(
    matrix_project: MakeProject, run_matrix: RunMatrix, warm_cache: Path, pytester: pytest.Pytester
) -> None:
    matrix_project(python=("3.9", "3.12"))
    pytester.makeconftest(
        "import os, pytest\n\n"
        "def pytest_configure(config):\n"
        "    if os.environ.get('CONDAMATRIX_CELL'):\n"
        "        raise pytest.UsageError('this suite needs --db')\n"
    )
    result, data = run_matrix(warm_cache)
    assert result.ret == 4
    assert {c["exit_code"] for c in data["cells"]} == {4}
    assert all("this suite needs --db" in c["message"] for c in data["cells"])
    result.stdout.fnmatch_lines(["py3.9-cpu, py3.12-cpu: pytest ended with usage error*"])


def test_a_cell_that_dies_before_reporting_says_why(
    matrix_project: MakeProject, run_matrix: RunMatrix, warm_cache: Path, pytester: pytest.Pytester
) -> None:
    matrix_project(python=("3.9", "3.12"))
    # runs on 3.10+, not on 3.9: `int | None` is evaluated when the conftest is imported
    pytester.makeconftest("LIMIT: int | None = None\n")
    result, data = run_matrix(warm_cache)
    assert result.ret == 1
    old, new = data["cells"]
    assert new["status"] == "passed"
    assert old["status"] == "error" and old["tests"] == []
    assert "while loading conftest" in old["message"]
    assert "unsupported operand type(s) for |" in old["message"]
    result.stdout.fnmatch_lines(["py3.9-cpu: *while loading conftest*"])
    junit = pytester.path / "junit.xml"
    run_matrix(warm_cache, f"--junitxml={junit}")
    assert "unsupported operand type(s) for |" in junit.read_text(encoding="utf-8")


def test_an_env_without_pytest_says_so(
    matrix_project: MakeProject, run_matrix: RunMatrix, warm_cache: Path
) -> None:
    matrix_project(python=("3.12",), dependencies=(), extra="add-pytest = false\n")
    result, data = run_matrix(warm_cache)
    (cell,) = data["cells"]
    assert cell["status"] == "error"
    assert "the env has no pytest" in cell["message"]
    assert result.ret == 1


def test_pytest_is_added_to_cells_that_name_none(
    matrix_project: MakeProject, pytester: pytest.Pytester
) -> None:
    matrix_project(python=("3.12",), dependencies=("pip",))
    result = pytester.runpytest_subprocess("--conda-matrix-list")
    result.stdout.fnmatch_lines(["py3.12-cpu  python=3.12 cuda=cpu  *pip pytest*"])


def test_matrix_options_never_reach_the_cells(
    matrix_project: MakeProject,
    run_matrix: RunMatrix,
    warm_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    matrix_project(
        python=("3.12",),
        tests="def test_one():\n    pass\n\ndef test_two_slow():\n    pass\n",
        # ini addopts with our options, and --strict-config (with -p no:cacheprovider, given
        # by run_matrix): the cells must not get -o cache_dir=, which they would refuse
        extra='\n[tool.pytest.ini_options]\naddopts = "--strict-config --conda-matrix-jobs 1"\n',
    )
    monkeypatch.setenv("PYTEST_ADDOPTS", '-k "not slow" --conda-matrix-timeout 300')
    result, data = run_matrix(warm_cache)
    (cell,) = data["cells"]
    assert cell["status"] == "passed", cell["message"]
    assert cell["counts"] == {"passed": 1, "deselected": 1}
    assert result.ret == 0


def test_options_of_plugins_only_the_cells_have_are_left_to_them(
    matrix_project: MakeProject, run_matrix: RunMatrix, warm_cache: Path
) -> None:
    # the outer pytest has no such plugin; a cell that has none either says so
    matrix_project(python=("3.12",))
    result, data = run_matrix(warm_cache, "--no-such-plugin-option")
    (cell,) = data["cells"]
    assert cell["exit_code"] == 4
    assert "unrecognized arguments: --no-such-plugin-option" in cell["message"]
    assert result.ret == 4


def test_outer_plugins_see_every_cells_reports(
    matrix_project: MakeProject, run_matrix: RunMatrix, warm_cache: Path, pytester: pytest.Pytester
) -> None:
    pytest.importorskip("pytest_reportlog")
    matrix_project(python=("3.9", "3.12"), tests=CATEGORIES)
    log = pytester.path / "report-log.jsonl"
    _, data = run_matrix(warm_cache, f"--report-log={log}")
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    calls = [r for r in lines if r.get("$report_type") == "TestReport" and r["when"] == "call"]
    cells = {r["condamatrix_cell"] for r in calls}
    assert cells == {"py3.9-cpu", "py3.12-cpu"}
    assert len(calls) == 2 * 7  # every test, per cell
    failed = [r for r in calls if r["outcome"] == "failed"]
    assert {r["nodeid"] for r in failed} == {"test_things.py::test_fails"}
    assert any(r.get("$report_type") == "WarningMessage" for r in lines)
    assert data["cells"][0]["counts"]["failed"] == 1
    assert not os.environ.get("CONDAMATRIX_CELL")
