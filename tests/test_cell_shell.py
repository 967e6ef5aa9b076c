"""`condamatrix run / shell / env`: one cell by hand, in its real env, activated."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from conftest import CONDAMATRIX, MakeProject
from pytest_condamatrix.cli.cell_env import activate, find_cell
from pytest_condamatrix.cli.cell_shell import split_command
from pytest_condamatrix.errors import ExitCode, UsageError
from pytest_condamatrix.matrix import Cell, parse_cell_id


def test_split_command_keeps_the_commands_options_its_own() -> None:
    assert split_command(["run", "py3.9-cpu", "--channel", "c", "--", "pytest", "-x"]) == (
        ["run", "py3.9-cpu", "--channel", "c"],
        ["pytest", "-x"],
    )
    assert split_command(["run", "py3.9-cpu", "true"]) == (["run", "py3.9-cpu", "true"], None)
    assert split_command(["list", "--", "x"]) == (["list", "--", "x"], None)


def _cell(cell_id: str) -> Cell:
    axes = parse_cell_id(cell_id)
    assert axes is not None, cell_id
    return Cell(python=axes[0], cuda=axes[1])


def test_find_cell_by_id_or_a_glob_of_one() -> None:
    cells = [_cell(c) for c in ("py3.11-cpu", "py3.12-cpu", "py3.12-cu12.1")]
    assert find_cell(cells, "py3.12-cpu").id == "py3.12-cpu"
    assert find_cell(cells, "*cu12*").id == "py3.12-cu12.1"
    with pytest.raises(UsageError, match=r"'py3\.12-\*' matches 2 cells") as info:
        find_cell(cells, "py3.12-*")
    assert info.value.hint == "name one of: py3.12-cpu, py3.12-cu12.1"
    with pytest.raises(UsageError, match=r"no cell 'py3\.9-cpu'"):
        find_cell(cells, "py3.9-cpu")


def test_activation_runs_the_envs_activate_d_scripts(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "bin").mkdir()
    scripts = prefix / "etc" / "conda" / "activate.d"
    scripts.mkdir(parents=True)
    (scripts / "thing.sh").write_text('export THING_HOME="$CONDA_PREFIX/share/thing"\necho hi\n')
    environ = activate(prefix, {"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert environ["CONDA_PREFIX"] == str(prefix)
    assert environ["THING_HOME"] == f"{prefix}/share/thing"
    entries = environ["PATH"].split(os.pathsep)
    assert entries[0] == str(prefix / "bin")
    assert len(entries) == len(set(entries))  # each folder once


def cli(
    project: Path,
    *args: str,
    timeout: float = 300,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONDAMATRIX_"))}
    clean.update(env or {})
    return subprocess.run(
        [*CONDAMATRIX, *args],
        cwd=project,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


TESTS = """
import os

def test_in_cell():
    assert os.environ["CONDAMATRIX_CELL"] == "py3.12-cpu"

def test_stop_here():
    answer = 41
    assert answer == 42
"""


@pytest.mark.integration
def test_env_builds_once_then_prints_the_prefix(
    matrix_project: MakeProject, tmp_path: Path
) -> None:
    project = matrix_project(tests=TESTS)
    cache = str(tmp_path / "cache")
    first = cli(project, "env", "py3.12-cpu", "--cache-dir", cache)
    assert first.returncode == 0, first.stderr
    # the same progress lines as a matrix run, on stderr; the path alone on stdout
    assert "[py3.12-cpu] building ..." in first.stderr
    prefix = Path(first.stdout.strip())
    assert first.stdout == f"{prefix}\n" and (prefix / "conda-meta").is_dir()
    assert prefix.parent == tmp_path / "cache" / "envs"
    again = cli(project, "env", "py3.12-cpu", "--python", "--cache-dir", cache)
    assert again.returncode == 0 and "[py3.12-cpu] env reused" in again.stderr
    assert again.stdout.strip() == str(prefix / "bin" / "python")


@pytest.mark.integration
def test_run_a_command_in_the_cell(matrix_project: MakeProject, warm_cache: Path) -> None:
    project = matrix_project(tests=TESTS, extra='pytest-args = ["-p", "no:cacheprovider"]\n')
    (project / "src" / "mything").mkdir(parents=True)
    (project / "src" / "mything" / "__init__.py").write_text("NAME = 'mine'\n")
    code = (
        "import json, os, sys, mything; json.dump({'exe': sys.executable, 'name': mything.NAME,"
        " **{k: v for k, v in os.environ.items() if k.startswith(('CONDA', 'PATH', 'PY'))}},"
        " sys.stdout); sys.exit(3)"
    )
    args = ("run", "py3.12-cpu", "--cache-dir", str(warm_cache), "--", "python", "-c", code)
    result = cli(project, *args)
    assert result.returncode == 3, result.stderr  # the command's own exit code
    seen = json.loads(result.stdout)
    prefix = Path(seen["CONDA_PREFIX"])
    assert seen["exe"] == str(prefix / "bin" / "python")
    assert seen["PATH"].split(os.pathsep)[0] == str(prefix / "bin")
    assert seen["CONDAMATRIX_CELL"] == "py3.12-cpu" and seen["CONDAMATRIX_GPU"] == "0"
    assert seen["CONDAMATRIX_PYTHON"] == "3.12" and seen["CONDAMATRIX_CUDA"] == "cpu"
    assert seen["name"] == "mine"  # src/ importable, as in the matrix
    assert seen["PYTHONNOUSERSITE"] == "1"
    assert seen["PYTEST_ADDOPTS"] == "-p no:cacheprovider"  # the configuration's pytest-args

    # pytest in the cell: the command's options are its own, its exit code comes back
    tests = cli(project, "run", "py3.12-cpu", "--cache-dir", str(warm_cache), "--", "pytest",
                "-q", "-k", "in_cell")  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "1 passed, 1 deselected" in tests.stdout
    failing = cli(project, "run", "py3.12-cpu", "--cache-dir", str(warm_cache), "--", "pytest",
                  "-q")  # fmt: skip
    assert failing.returncode == 1 and "1 failed, 1 passed" in failing.stdout
    assert not (project / ".pytest_cache").exists()  # -p no:cacheprovider reached it

    missing = cli(project, "run", "py3.12-cpu", "--cache-dir", str(warm_cache), "--", "nope-x")
    assert missing.returncode == ExitCode.USAGE_ERROR
    assert "'nope-x' is not a command in the cell's env" in missing.stderr
    nothing = cli(project, "run", "py3.12-cpu", "--cache-dir", str(warm_cache))
    assert nothing.returncode == ExitCode.USAGE_ERROR and "no command to run" in nothing.stderr


def _read_until(fd: int, text: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} in {seen.decode(errors='replace')}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the other side closed
                chunk = b""
            assert chunk, f"ended before {text!r}: {seen.decode(errors='replace')}"
            seen += chunk
    return seen


@pytest.mark.integration
def test_run_passes_the_terminal_through_to_pdb(
    matrix_project: MakeProject, warm_cache: Path
) -> None:
    """`condamatrix run py3.12-cpu -- pytest -x --pdb` stops in pdb, at a real terminal."""
    project = matrix_project(tests=TESTS)
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONDAMATRIX_"))}
    argv = [*CONDAMATRIX, "run", "py3.12-cpu", "--cache-dir", str(warm_cache), "--"]
    argv += ["pytest", "-x", "--pdb", "-p", "no:cacheprovider", "test_things.py"]
    proc = subprocess.Popen(
        argv, cwd=project, env=env, stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    try:
        _read_until(controller, b"(Pdb)", timeout=120)
        os.write(controller, b"p answer + 1\n")
        assert b"42" in _read_until(controller, b"(Pdb)", timeout=30)
        os.write(controller, b"q\n")
        assert proc.wait(timeout=60) == 2  # pytest's code for a session the user stopped
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)


@pytest.mark.integration
def test_shell_in_the_cell(matrix_project: MakeProject, warm_cache: Path, tmp_path: Path) -> None:
    project = matrix_project()
    home = tmp_path / "home"
    home.mkdir()
    # the user's own bashrc runs first; the cell's variables come after it
    (home / ".bashrc").write_text("export CONDA_PREFIX=/somewhere/else\n")
    result = cli(
        project,
        "shell",
        "py3.12-cpu",
        "--cache-dir",
        str(warm_cache),
        input='echo "in $CONDAMATRIX_CELL at $CONDA_PREFIX"; exit 7\n',
        env={"SHELL": "/bin/bash", "HOME": str(home)},
    )
    assert result.returncode == 7, result.stderr
    assert f"in py3.12-cpu at {warm_cache / 'envs'}" in result.stdout
