"""End to end through real envs: solve and install from the local channel, run, report.

Each test runs ``pytest --conda-matrix`` as a user would (a subprocess of pytester), then
reads the JSON results it wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import RunMatrix

pytestmark = pytest.mark.integration
MakeProject = Callable[..., Path]


def cells(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["cell"]: c for c in data["cells"]}


def test_matrix_runs_in_real_envs_and_reuses_them(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, tmp_path: Path
) -> None:
    matrix_project(
        python=("3.9", "3.12"),
        tests="""
import os, sys
def test_runs_in_its_cell():
    assert os.environ["CONDAMATRIX_PYTHON"] == "%d.%d" % sys.version_info[:2]
    assert os.path.isdir(os.path.join(sys.prefix, "conda-meta"))
""",
    )
    cache = tmp_path / "cache"
    result, data = run_matrix(cache)
    assert result.ret == 0, result.stdout.str()
    first = cells(data)
    assert set(first) == {"py3.9-cpu", "py3.12-cpu"}
    for cell in first.values():
        assert cell["status"] == "passed" and cell["counts"]["passed"] == 1
        assert cell["env_status"] == "built" and cell["env_reason"] == "new"
        assert (Path(cell["env_prefix"]) / "conda-meta").is_dir()
        assert any(p.startswith("python=3.") for p in cell["packages"])
    result.stdout.fnmatch_lines(["*py3.9-cpu*built*passed*", "*2 cells (2 passed)*exit code 0"])

    jsonschema = pytest.importorskip("jsonschema")
    schema = (
        Path(__file__).parents[1]
        / "src"
        / "pytest_condamatrix"
        / "schemas"
        / "results-v1.schema.json"
    )
    jsonschema.validate(data, json.loads(schema.read_text()))
    assert data["host"]["platform"] and data["host"]["cuda_driver"]

    result, data = run_matrix(cache)
    assert result.ret == 0
    assert {c["env_status"] for c in data["cells"]} == {"reused"}
    result.stdout.fnmatch_lines(["*py3.9-cpu*reused*passed*"])


def test_changed_dependency_rebuilds_only_that_cell_and_says_why(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    matrix_project(python=("3.11", "3.12"))
    result, _ = run_matrix(cache)
    assert result.ret == 0
    matrix_project(
        python=("3.11", "3.12"),
        extra="include = [{python = '3.12', dependencies = ['tomli']}]\n",
    )
    result, data = run_matrix(cache)
    assert result.ret == 0, result.stdout.str()
    by_cell = cells(data)
    assert by_cell["py3.11-cpu"]["env_status"] == "reused"
    assert by_cell["py3.12-cpu"]["env_status"] == "built"
    assert by_cell["py3.12-cpu"]["env_reason"] == "inputs changed: specs: +tomli"
    assert any(p.startswith("tomli=") for p in by_cell["py3.12-cpu"]["packages"])


def test_failures_in_some_cells_are_reported_with_where(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, warm_cache: Path
) -> None:
    matrix_project(
        python=("3.9", "3.12"),
        tests="""
import sys
def test_needs_new_python():
    assert sys.version_info >= (3, 10), "too old"
def test_fine():
    pass
""",
    )
    result, data = run_matrix(warm_cache)
    assert result.ret == 1
    by_cell = cells(data)
    assert by_cell["py3.9-cpu"]["status"] == "failed"
    assert by_cell["py3.12-cpu"]["status"] == "passed"
    result.stdout.fnmatch_lines(
        [
            "*test_things.py::test_needs_new_python failed on py3.9-cpu*",
            "*AssertionError: too old*",
            "*test_things.py::test_needs_new_python: fails only on py3.9*",
            "*exit code 1",
        ]
    )


def test_unsolvable_cell_is_an_env_error_and_others_still_run(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, warm_cache: Path
) -> None:
    matrix_project(
        python=("3.9", "3.12"),
        extra="include = [{python = '3.9', dependencies = ['no-such-package']}]\n",
    )
    result, data = run_matrix(warm_cache)
    assert result.ret == 1
    by_cell = cells(data)
    assert by_cell["py3.9-cpu"]["status"] == "env-error"
    assert "no-such-package" in by_cell["py3.9-cpu"]["message"]
    assert by_cell["py3.12-cpu"]["status"] == "passed"
    result.stdout.fnmatch_lines(["*py3.9-cpu: cannot solve the env of py3.9-cpu*"])


def test_crash_and_timeout_are_outcomes_and_leave_no_process(
    run_matrix: RunMatrix,
    pytester: pytest.Pytester,
    matrix_project: MakeProject,
    warm_cache: Path,
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "child.pid"
    matrix_project(
        python=("3.9", "3.12"),
        tests=f"""
import os, subprocess, sys, time
def test_crash_or_hang():
    if sys.version_info < (3, 10):
        os._exit(7)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open({str(pidfile)!r}, "w").write(str(child.pid))
    time.sleep(600)
""",
    )
    result, data = run_matrix(warm_cache, "--conda-matrix-timeout", "5")
    assert result.ret == 1
    by_cell = cells(data)
    assert by_cell["py3.9-cpu"]["status"] == "crashed"
    assert "exit code 7" in by_cell["py3.9-cpu"]["message"]
    assert by_cell["py3.12-cpu"]["status"] == "timeout"
    assert not is_alive(int(pidfile.read_text())), "the hung test's child must be killed"


def is_alive(pid: int) -> bool:
    """True for a running process; a zombie waiting for its reaper is dead."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_two_concurrent_runs_build_each_env_exactly_once(
    pytester: pytest.Pytester, matrix_project: MakeProject, tmp_path: Path
) -> None:
    project = matrix_project(python=("3.11", "3.12"))
    cache = tmp_path / "cold-cache"
    procs = []
    for i in range(2):
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "--conda-matrix",
            "-p",
            "no:cacheprovider",
            "--conda-matrix-cache-dir",
            str(cache),
            "--conda-matrix-json",
            str(tmp_path / f"r{i}.json"),
        ]
        procs.append(
            subprocess.Popen(argv, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out.decode()
    runs = [json.loads((tmp_path / f"r{i}.json").read_text()) for i in range(2)]
    for cell in ("py3.11-cpu", "py3.12-cpu"):
        statuses = sorted(cells(run)[cell]["env_status"] for run in runs)
        assert statuses == ["built", "reused"], (cell, statuses)
        assert len({cells(run)[cell]["env_key"] for run in runs}) == 1


def test_a_killed_build_is_rebuilt_never_reused(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, tmp_path: Path
) -> None:
    project = matrix_project(python=("3.12",))
    cache = tmp_path / "cache"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "--conda-matrix",
        "--conda-matrix-cache-dir",
        str(cache),
    ]
    proc = subprocess.Popen(argv, cwd=project, stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any((cache / "tmp").glob("py3.12-cpu-*/conda-meta")):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list((cache / "envs").glob("py3.12-cpu-*")), "a killed build must not publish an env"
    result, data = run_matrix(cache)
    assert result.ret == 0
    (cell,) = data["cells"]
    assert cell["env_status"] == "built"
    assert not list((cache / "tmp").iterdir()), "leftovers of the killed build are swept"


def test_incomplete_env_without_stamp_is_rebuilt(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, tmp_path: Path
) -> None:
    matrix_project(python=("3.12",))
    cache = tmp_path / "cache"
    _, data = run_matrix(cache)
    prefix = Path(data["cells"][0]["env_prefix"])
    (prefix / "conda-meta" / "condamatrix-stamp.json").unlink()
    result, data = run_matrix(cache)
    assert result.ret == 0
    assert data["cells"][0]["env_status"] == "built"
    assert "incomplete env" in data["cells"][0]["env_reason"]


def test_forced_rebuild(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, warm_cache: Path
) -> None:
    matrix_project(python=("3.12",))
    run_matrix(warm_cache)
    result, data = run_matrix(warm_cache, "--conda-matrix-rebuild")
    assert result.ret == 0
    assert data["cells"][0]["env_reason"] == "forced (--conda-matrix-rebuild)"


def test_an_env_moved_to_another_cache_path_is_rebuilt(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, tmp_path: Path
) -> None:
    matrix_project(python=("3.12",))
    first = tmp_path / "first"
    result, _ = run_matrix(first)
    assert result.ret == 0
    second = tmp_path / "second"
    subprocess.run(["cp", "-a", str(first), str(second)], check=True)  # like a CI cache restore
    result, data = run_matrix(second)
    assert result.ret == 0
    assert data["cells"][0]["env_status"] == "built"
    assert data["cells"][0]["env_reason"].startswith(f"moved env: it was built at {first}")


def test_cells_end_when_the_outer_run_is_killed(
    pytester: pytest.Pytester, matrix_project: MakeProject, warm_cache: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    project = matrix_project(
        python=("3.12",),
        tests=f"""
import os, subprocess, sys, time
def test_hang():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open({str(pidfile)!r}, "w").write(str(child.pid))
    time.sleep(600)
""",
    )
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "--conda-matrix",
        "--conda-matrix-cache-dir",
        str(warm_cache),
    ]
    outer = subprocess.Popen(
        argv, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    child = int(pidfile.read_text())
    outer.kill()  # SIGKILL: no chance to clean up; the cell must notice by itself
    outer.wait()
    deadline = time.monotonic() + 10
    while is_alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_alive(child), "the cell's processes must not outlive a killed run"
