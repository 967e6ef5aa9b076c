"""`pytest_condamatrix.nox`: the `matrix` session(s) of a user's noxfile, run by real nox."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_condamatrix.localchannel import LocalChannel

pytest.importorskip("nox", reason="nox is not installed (pip install -e '.[test]' brings it)")

CONFIG = """
[tool.condamatrix]
python = ["3.11", "3.12"]
cuda = ["cpu", "12.1"]
dependencies = ["pytest"]
"""
NOXFILE = """
import nox
from pytest_condamatrix.nox import register_matrix_sessions

register_matrix_sessions({args})


@nox.session(python=False)
def lint(session):
    \"\"\"Another session of the project.\"\"\"
"""


def make_project(tmp_path: Path, *, config: str = CONFIG, args: str = "per_cell=True") -> Path:
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(config), encoding="utf-8")
    (tmp_path / "noxfile.py").write_text(NOXFILE.format(args=args), encoding="utf-8")
    return tmp_path


def nox(project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NOX_"))}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_nox_lists_the_matrix_and_one_session_per_cell(tmp_path: Path) -> None:
    result = nox(make_project(tmp_path), "-l")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "* matrix -> pytest --conda-matrix: the test suite in every cell, one report" in lines
    for cell, python, cuda in [
        ("py3.11-cpu", "3.11", "cpu"),
        ("py3.11-cu12.1", "3.11", "12.1"),
        ("py3.12-cpu", "3.12", "cpu"),
        ("py3.12-cu12.1", "3.12", "12.1"),
    ]:
        # not selected by a bare `nox`: that would run every cell twice
        # (nox lists the tags since 2026.2; older versions only select by them)
        tags = f" [matrix-cell,python-{python},cuda-{cuda}]"
        line = (
            f"- matrix(cell='{cell}'){tags} -> "
            f"pytest --conda-matrix in cell {cell} only (python {python}, cuda {cuda})"
        )
        assert line in lines or line.replace(tags, "") in lines
    assert "* lint -> Another session of the project." in lines


def test_nox_matrix_runs_the_whole_matrix_with_posargs(tmp_path: Path) -> None:
    result = nox(make_project(tmp_path), "-s", "matrix", "--", "--conda-matrix-list")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == ["py3.11-cpu", "py3.11-cu12.1", "py3.12-cpu", "py3.12-cu12.1"]
    # one pytest run, on nox's own interpreter, no virtualenv
    assert result.stderr.count("-m pytest --conda-matrix --conda-matrix-list") == 1
    assert "Running session matrix\n" in result.stderr.replace("nox > ", "")
    assert "Creating virtual environment" not in result.stderr


def test_nox_session_of_one_cell(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    for name in ("matrix(cell='py3.12-cu12.1')", 'matrix(cell="py3.12-cu12.1")'):
        result = nox(project, "-s", name, "--", "--conda-matrix-list")
        assert result.returncode == 0, result.stderr
        assert [line.split()[0] for line in result.stdout.splitlines()] == ["py3.12-cu12.1"]
    # `nox -t matrix-cell` selects every cell's session, and only those
    selected = nox(project, "-l", "-t", "matrix-cell").stdout.splitlines()
    assert sum(line.startswith("* matrix(cell=") for line in selected) == 4
    assert not any(line.startswith(("* matrix ", "* lint")) for line in selected)


def selected(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line.split()[1] for line in result.stdout.splitlines() if line.startswith("* ")]


def test_nox_selects_cells_by_axis(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert selected(nox(project, "-l", "-t", "python-3.12")) == [
        "matrix(cell='py3.12-cpu')",
        "matrix(cell='py3.12-cu12.1')",
    ]
    assert selected(nox(project, "-l", "-t", "cuda-cpu")) == [
        "matrix(cell='py3.11-cpu')",
        "matrix(cell='py3.12-cpu')",
    ]
    # tags add up, as nox's do: either axis
    assert len(selected(nox(project, "-l", "-t", "python-3.12", "cuda-cpu"))) == 3
    # -p with the cells' tag or a keyword: the cells of that Python
    for args in (["-t", "matrix-cell", "-p", "3.12"], ["-k", "matrix", "--python=3.12"]):
        assert selected(nox(project, "-l", *args)) == [
            "matrix(cell='py3.12-cpu')",
            "matrix(cell='py3.12-cu12.1')",
        ]
    assert selected(nox(project, "-l", "-k", "matrix and cu12")) == [
        "matrix(cell='py3.11-cu12.1')",
        "matrix(cell='py3.12-cu12.1')",
    ]
    # -p alone: nox keeps only default sessions, so it says what to type instead
    result = nox(project, "-l", "-p", "3.12")
    assert selected(result) == []
    assert "matrix cells are not default sessions, so -p alone selects none of them" in (
        result.stderr
    )
    assert "nox -t matrix-cell -p X.Y" in result.stderr
    assert "not default sessions" not in nox(project, "-l", "-t", "matrix-cell", "-p3.12").stderr


def test_a_cells_session_runs_without_a_virtualenv(tmp_path: Path) -> None:
    result = nox(
        make_project(tmp_path), "-s", "matrix(cell='py3.12-cpu')", "--", "--conda-matrix-list"
    )
    assert result.returncode == 0, result.stderr
    assert "Creating virtual environment" not in result.stderr
    assert "py3.12-cpu" in result.stdout


def test_config_and_extra_pytest_args(tmp_path: Path) -> None:
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "matrix.yml").write_text("python: ['3.12']\n", encoding="utf-8")
    project = make_project(
        tmp_path,
        config="[project]\nname = 'x'\n",
        args="per_cell=True, name='cells', config='ci/matrix.yml', pytest_args=['-q']",
    )
    result = nox(project, "-l")
    assert "* cells -> " in result.stdout
    assert "- cells(cell='py3.12-cpu')" in result.stdout
    result = nox(project, "-s", "cells(cell='py3.12-cpu')", "--", "--conda-matrix-list")
    assert result.returncode == 0, result.stderr
    assert (
        "--conda-matrix-select py3.12-cpu --conda-matrix-config ci/matrix.yml -q "
        "--conda-matrix-list" in result.stderr
    )


def test_bad_config_keeps_the_noxfile_usable(tmp_path: Path) -> None:
    project = make_project(tmp_path, config="[tool.condamatrix]\npython = [3.12]\n")
    result = nox(project, "-l")
    assert result.returncode == 0, result.stderr
    assert "* lint" in result.stdout and "* matrix" in result.stdout
    assert "matrix: no per-cell sessions:" in result.stderr
    assert "python[0]: 3.12 is a number, not a string" in result.stderr
    assert "Traceback" not in result.stderr
    # the matrix session says the same when run, and fails as a usage error
    result = nox(project, "-s", "matrix")
    assert result.returncode != 0
    assert "python[0]: 3.12 is a number" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_without_nox_the_import_says_what_to_install() -> None:
    code = "import sys; sys.modules['nox'] = None; import pytest_condamatrix.nox"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "ImportError: pytest_condamatrix.nox needs nox, which is not installed" in result.stderr


@pytest.mark.integration
def test_nox_runs_one_cell_for_real(
    tmp_path: Path, local_channel: LocalChannel, warm_cache: Path
) -> None:
    if "3.12" not in local_channel.pythons:
        pytest.skip("Python 3.12 is not on this machine")
    project = make_project(
        tmp_path,
        config=f"""
        [tool.condamatrix]
        python = ["3.12"]
        channels = [{str(local_channel.path)!r}]
        dependencies = ["pytest"]
        """,
    )
    (project / "test_things.py").write_text(
        "import os\n\ndef test_in_cell():\n    assert os.environ['CONDAMATRIX_CELL'] == "
        "'py3.12-cpu'\n",
        encoding="utf-8",
    )
    result = nox(
        project,
        "-s",
        "matrix(cell='py3.12-cpu')",
        "--",
        "--conda-matrix-cache-dir",
        str(warm_cache),
        "-p",
        "no:cacheprovider",
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 cells (1 passed); 1 passed" in result.stdout
    assert "Session matrix(cell='py3.12-cpu') was successful" in result.stderr
