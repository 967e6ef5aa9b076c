"""Plugin behaviour through pytester: options, listing, errors without tracebacks, passivity."""

from __future__ import annotations

import pytest

from pytest_condamatrix.options import strip_matrix_args

CONFIG = """
[tool.condamatrix]
python = ["3.9", "3.12"]
cuda = ["cpu", "12.1"]
exclude = [{python = "3.9", cuda = "12.1"}]
"""


def test_help_explains_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "conda matrix*",
            "*--conda-matrix *run this test suite in every cell*",
            "*--conda-matrix-select=GLOB*",
        ]
    )


def test_list_cells(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(CONFIG)
    result = pytester.runpytest("--conda-matrix-list")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["py3.9-cpu *", "py3.12-cpu *", "py3.12-cu12.1 *cuda-version 12.1.*"]
    )
    result.stdout.no_fnmatch_line("py3.9-cu12.1*")


def test_list_with_selection(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(CONFIG)
    result = pytester.runpytest("--conda-matrix-list", "--conda-matrix-select", "*cu12.1")
    assert result.ret == 0
    assert [line.split()[0] for line in result.outlines if line.startswith("py")] == [
        "py3.12-cu12.1"
    ]


def test_bad_config_is_a_usage_error_without_traceback(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.condamatrix]\npython = [3.10]\n")
    result = pytester.runpytest_subprocess("--conda-matrix")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["ERROR: *pyproject.toml: python[[]0[]]: 3.1 is a number*", "*hint: quote*"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_unknown_selection_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(CONFIG)
    result = pytester.runpytest_subprocess("--conda-matrix", "--conda-matrix-select", "py2.7-*")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["ERROR: *matches no cell*", "*py3.9-cpu, py3.12-cpu, py3.12-cu12.1*"]
    )


def test_bad_jobs_value(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(CONFIG)
    result = pytester.runpytest_subprocess("--conda-matrix", "--conda-matrix-jobs", "0")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --conda-matrix-jobs 0*"])


def test_without_the_option_the_plugin_stays_out_of_the_way(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(CONFIG)
    pytester.makepyfile("def test_one(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


def test_inside_a_cell_the_plugin_is_passive(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyprojecttoml(CONFIG)
    pytester.makepyfile("def test_one(): pass")
    monkeypatch.setenv("CONDAMATRIX_CELL", "py3.12-cpu")
    result = pytester.runpytest("--conda-matrix")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--conda-matrix", "-k", "slug"], ["-k", "slug"]),
        (["--conda-matrix-select", "py3.9-*", "tests/"], ["tests/"]),
        (["--conda-matrix-select=py3.9-*", "-x"], ["-x"]),
        (["--conda-matrix-json", "out.json", "--conda-matrix-rebuild", "-q"], ["-q"]),
        (["--junitxml", "j.xml", "--junit-xml=k.xml", "-v"], ["-v"]),
        (
            [
                "--conda-matrix-jobs",
                "2",
                "--conda-matrix-cache-dir",
                "c",
                "--conda-matrix-channel",
                "x",
            ],
            [],
        ),
    ],
)
def test_cells_get_the_users_args_minus_ours(args: list[str], expected: list[str]) -> None:
    assert strip_matrix_args(args) == expected
