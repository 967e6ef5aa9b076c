"""processes.py, the one place that starts processes: what a child inherits, how it starts."""

from __future__ import annotations

import sys
from pathlib import Path

from pytest_condamatrix import processes
from pytest_condamatrix.run.cellenv import cell_variables


def test_a_child_loses_the_outer_python_variables_and_keeps_the_rest() -> None:
    outer = {"PYTHONPATH": "/x", "PYTHONHOME": "/y", "VIRTUAL_ENV": "/v", "HOME": "/h"}
    assert processes.child_environ(outer) == {"VIRTUAL_ENV": "/v", "HOME": "/h"}
    cell_only = processes.child_environ(outer, drop=processes.OUTER_ENV_VARS)
    assert cell_only == {"HOME": "/h"}


def test_a_cell_sees_none_of_the_outer_env_variables() -> None:
    from pytest_condamatrix.matrix import Cell
    from pytest_condamatrix.run.gpu import GpuDecision

    cell = Cell(python="3.12", cuda="cpu")
    outer = dict.fromkeys(processes.OUTER_ENV_VARS, "outer") | {"HOME": "/h"}
    environ = cell_variables(cell, GpuDecision(run=True, gpu=False, reason=""), ["/p"], outer)
    assert environ["PYTHONPATH"] == "/p"
    assert environ["HOME"] == "/h"
    assert not {"PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV"} & set(environ)


def test_a_helper_reads_its_input_or_nothing(tmp_path: Path) -> None:
    echo = [sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"]
    assert processes.run(echo, input="hi").stdout.strip() == "'hi'"
    assert processes.run(echo, cwd=tmp_path).stdout.strip() == "''"  # not the terminal
    raw = processes.run_bytes([sys.executable, "-c", "print('a')"])
    assert raw.stdout.strip() == b"a"


def test_a_foreground_command_gives_its_exit_code(tmp_path: Path) -> None:
    code = [sys.executable, "-c", "import os, sys; sys.exit(len(os.environ['X']))"]
    assert processes.foreground(code, cwd=tmp_path, env={"X": "abc"}) == 3
