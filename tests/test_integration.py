"""End to end through real envs: solve and install from the local channel, run, report.

Each test runs ``pytest --conda-matrix`` as a user would (a subprocess of pytester), then
reads the JSON results it wrote.
"""

from __future__ import annotations

import itertools
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

from conftest import MakeProject, RunMatrix
from pytest_condamatrix.run.timings import load_timings, timings_file

pytestmark = pytest.mark.integration


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
        / "results-v2.schema.json"
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


_MARK = """
import os, pathlib, time
def mark(what):
    cell = os.environ.get("CONDAMATRIX_CELL")
    if cell:
        out = pathlib.Path({out!r}) / ("%s.%s" % (cell, what))
        out.write_text("%r %d" % (time.time(), os.getpid()))
"""


def _marks(folder: Path) -> dict[str, float]:
    return {p.name: float(p.read_text().split()[0]) for p in folder.iterdir()}


def test_the_next_cell_starts_ahead_but_its_tests_wait_for_a_free_slot(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, warm_cache: Path
) -> None:
    out = pytester.path / "marks"
    out.mkdir()
    matrix_project(
        python=("3.9", "3.11", "3.12"),
        tests="import time\ndef test_slow():\n    time.sleep(1.0)\n",
        extra='pythonpath = ["boot"]\n',
    )
    # sitecustomize runs as each cell's interpreter starts; conftest.py once it may go on
    (pytester.path / "boot").mkdir()
    (pytester.path / "boot" / "sitecustomize.py").write_text(
        _MARK.format(out=str(out)) + "mark('boot')\n"
    )
    pytester.makeconftest(
        _MARK.format(out=str(out))
        + "mark('conftest')\ndef pytest_sessionfinish():\n    mark('end')\n"
    )
    result, data = run_matrix(warm_cache, "--conda-matrix-jobs", "1", "--rootdir", ".")
    assert result.ret == 0, result.stdout.str()
    marks = _marks(out)
    # the turn of each cell (matrix order among those whose env was ready)
    order = sorted((c["cell"] for c in data["cells"]), key=lambda cell: marks[f"{cell}.conftest"])
    for previous, cell in itertools.pairwise(order):
        # started while the previous cell ran its tests ...
        assert marks[f"{cell}.boot"] < marks[f"{previous}.end"], marks
        # ... but its conftest.py and tests only after that cell had ended
        assert marks[f"{cell}.conftest"] > marks[f"{previous}.end"], marks
    for cell in data["cells"]:
        assert cell["test_seconds"] < 5  # timed from its go, not from its start
    # their times are kept for the next run's order (longest first, when run in parallel)
    assert set(load_timings(timings_file(warm_cache, pytester.path))) == set(order)


#: a conftest.py object whose end (at interpreter shutdown, after pytest and atexit) is slow
_SLOW_TO_GO = """
class _SlowToGo:
    def __init__(self):
        cell = os.environ.get("CONDAMATRIX_CELL")
        self.path = str(pathlib.Path({out!r}) / ("%s.gone" % cell)) if cell else None

    def __del__(self, _sleep=time.sleep, _time=time.time, _open=open, _pid=os.getpid):
        if self.path:
            _sleep(2.0)
            with _open(self.path, "w") as f:
                f.write("%r %d" % (_time(), _pid()))

_slow_to_go = _SlowToGo()
"""


def test_the_next_cell_goes_while_the_previous_interpreter_shuts_down(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, warm_cache: Path
) -> None:
    out = pytester.path / "marks"
    out.mkdir()
    matrix_project(python=("3.11", "3.12"), tests="def test_one():\n    pass\n")
    pytester.makeconftest(
        _MARK.format(out=str(out)) + _SLOW_TO_GO.format(out=str(out)) + "mark('conftest')\n"
    )
    result, data = run_matrix(warm_cache, "--conda-matrix-jobs", "1")
    assert result.ret == 0, result.stdout.str()
    marks = _marks(out)
    first, second = sorted(("py3.11-cpu", "py3.12-cpu"), key=lambda c: marks[f"{c}.conftest"])
    # the first cell's pytest was over (its session, its plugins, its atexit handlers), so
    # the second went on while the first's objects were still being freed ...
    assert marks[f"{second}.conftest"] < marks[f"{first}.gone"], marks
    # ... and the run still waited for the first to exit, with its exit code
    assert [c["exit_code"] for c in data["cells"]] == [0, 0]
    assert {c["status"] for c in data["cells"]} == {"passed"}


def test_the_cells_python_says_it_is_exiting_once_after_every_atexit_handler(
    tmp_path: Path,
) -> None:
    worker = Path(__file__).parents[1] / "src" / "pytest_condamatrix" / "worker.py"
    (tmp_path / "_condamatrix_worker.py").write_text(worker.read_text())
    stream = tmp_path / "stream.jsonl"
    (tmp_path / "test_x.py").write_text(
        f"""
import atexit, os

def _look():  # a handler of the tests' own: it runs before the worker says it is exiting
    text = open({str(stream)!r}).read()
    open("seen-at-exit", "w").write(str(text.count('"exiting"')))

def test_forks_a_child_that_runs_its_atexit_handlers():
    atexit.register(_look)
    pid = os.fork()
    if pid == 0:  # as a forked child that exits normally does: not the cell's end
        atexit._run_exitfuncs()
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
"""
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "CONDAMATRIX_CELL": "py-here"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "_condamatrix_worker",
            "-p",
            "no:cacheprovider",
            f"--condamatrix-stream={stream}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = [json.loads(line)["e"] for line in stream.read_text().splitlines()]
    assert events[-2:] == ["finish", "exiting"] and events.count("exiting") == 1, events
    assert (tmp_path / "seen-at-exit").read_text() == "0"


def test_a_cell_the_run_no_longer_wants_exits_at_the_gate(tmp_path: Path) -> None:
    worker = Path(__file__).parents[1] / "src" / "pytest_condamatrix" / "worker.py"
    (tmp_path / "_condamatrix_worker.py").write_text(worker.read_text())
    (tmp_path / "conftest.py").write_text(
        "import os\nopen('conftest-loaded', 'w').write(os.environ.get('GIVEN_AT_GO', ''))\n"
    )
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    gate, go = os.pipe()
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "CONDAMATRIX_GO_FD": str(gate)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "_condamatrix_worker", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        pass_fds=(gate,),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    os.close(gate)
    time.sleep(0.5)
    assert proc.poll() is None, "it waits at the gate"
    os.close(go)  # what a run that is interrupted, or killed, leaves it
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, output
    assert not (tmp_path / "conftest-loaded").exists(), "nothing of the project was imported"

    gate, go = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "_condamatrix_worker", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env={**env, "CONDAMATRIX_GO_FD": str(gate)},
        pass_fds=(gate,),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    os.close(gate)
    os.write(go, b'{"GIVEN_AT_GO": "device 1"}')  # e.g. the GPU the cell may use
    os.close(go)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert (tmp_path / "conftest-loaded").read_text() == "device 1"


def test_a_cell_waiting_at_the_gate_ends_with_a_killed_run(
    pytester: pytest.Pytester, matrix_project: MakeProject, warm_cache: Path
) -> None:
    out = pytester.path / "marks"
    out.mkdir()
    project = matrix_project(
        python=("3.12", "3.11"),
        tests="import time\ndef test_hang():\n    time.sleep(600)\n",
        extra='pythonpath = ["boot"]\n',
    )
    (project / "boot").mkdir()
    (project / "boot" / "sitecustomize.py").write_text(
        _MARK.format(out=str(out)) + "mark('boot')\n"
    )
    argv = [sys.executable, "-m", "pytest", "--conda-matrix", "--conda-matrix-jobs", "1"]
    argv += ["--conda-matrix-cache-dir", str(warm_cache)]
    outer = subprocess.Popen(
        argv, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    waiting = out / "py3.11-cpu.boot"
    deadline = time.monotonic() + 120
    while not (waiting.exists() and (out / "py3.12-cpu.boot").exists()):
        assert time.monotonic() < deadline, "the cells never started"
        time.sleep(0.05)
    time.sleep(0.3)
    pids = [int(p.read_text().split()[1]) for p in out.iterdir()]
    outer.kill()
    outer.wait()
    deadline = time.monotonic() + 10
    while any(is_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if is_alive(pid)], "no cell may outlive a killed run"


GpuProject = Callable[[tuple[str, ...], list[str]], Path]


@pytest.fixture
def gpu_project(
    pytester: pytest.Pytester, matrix_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> GpuProject:
    """A project of slow tests whose cells mark when their session starts and ends (and the
    GPU they were given) in a folder it returns; a driver is faked for the scheduler."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "12.4")

    def make(python: tuple[str, ...], cuda: list[str]) -> Path:
        out = pytester.path / "marks"
        out.mkdir()
        matrix_project(
            python=python,
            tests="import time\ndef test_slow():\n    time.sleep(1.0)\n",
            extra=f"cuda = {cuda!r}\n",
        )
        pytester.makeconftest(
            _MARK.format(out=str(out))
            + "def pytest_sessionstart():\n    mark('start')\n"
            + "def pytest_sessionfinish():\n    mark('end')\n"
            + "mark('device-' + os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'))\n"
        )
        return out

    return make


def test_cells_that_use_the_gpu_take_turns(
    run_matrix: RunMatrix,
    gpu_project: GpuProject,
    warm_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = gpu_project(("3.12",), ["cpu", "11.8", "12.1"])
    result, _ = run_matrix(warm_cache, "--conda-matrix-jobs", "3")
    assert result.ret == 0, result.stdout.str()
    marks = _marks(out)

    def window(cell: str) -> tuple[float, float]:
        return marks[f"{cell}.start"], marks[f"{cell}.end"]

    def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    cells = ("py3.12-cpu", "py3.12-cu11.8", "py3.12-cu12.1")
    cpu, cu118, cu121 = (window(cell) for cell in cells)
    assert not overlap(cu118, cu121), marks  # one GPU: one cell on it at a time
    assert overlap(cpu, cu118) or overlap(cpu, cu121), marks  # CPU cells do not wait for it

    assert {m for m in marks if ".device-" in m} == {f"{c}.device-unset" for c in cells}

    # two GPUs: two CUDA cells at once, each on a device of its own
    for mark in out.iterdir():
        mark.unlink()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    result, _ = run_matrix(warm_cache, "--conda-matrix-jobs", "3", "--conda-matrix-gpu-jobs", "2")
    assert result.ret == 0, result.stdout.str()
    marks = _marks(out)
    assert overlap(window("py3.12-cu11.8"), window("py3.12-cu12.1")), marks
    devices = {m.rpartition("-")[2] for m in marks if ".device-" in m and "-cu" in m}
    assert devices == {"3", "5"}, marks
    assert "py3.12-cpu.device-3,5" in marks  # CPU cells: the environment as it was


def test_a_cell_on_the_gpu_frees_it_only_once_its_process_has_exited(
    run_matrix: RunMatrix, pytester: pytest.Pytester, gpu_project: GpuProject, warm_cache: Path
) -> None:
    out = gpu_project(("3.12",), ["11.8", "12.1"])
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + _SLOW_TO_GO.format(out=str(out)))
    result, _ = run_matrix(warm_cache, "--conda-matrix-jobs", "2")
    assert result.ret == 0, result.stdout.str()
    marks = _marks(out)
    first, second = sorted(("py3.12-cu11.8", "py3.12-cu12.1"), key=lambda c: marks[f"{c}.start"])
    # device memory is the process's until it exits: the next GPU cell waits for that
    assert marks[f"{second}.start"] > marks[f"{first}.gone"], marks


def test_last_failed_is_remembered_per_cell(
    run_matrix: RunMatrix, matrix_project: MakeProject, warm_cache: Path
) -> None:
    matrix_project(
        python=("3.9", "3.12"),
        tests="""
import sys
def test_new_syntax():
    assert sys.version_info >= (3, 10)
def test_fine():
    pass
""",
    )
    # without -p no:cacheprovider (which run_matrix passes): the cells keep their caches
    result, data = run_matrix(warm_cache, "-p", "cacheprovider")
    assert result.ret == 1
    result, data = run_matrix(warm_cache, "-p", "cacheprovider", "--lf")
    assert result.ret == 1, result.stdout.str()
    ran = {c["cell"]: sorted(t["nodeid"] for t in c["tests"]) for c in data["cells"]}
    assert ran == {
        "py3.9-cpu": ["test_things.py::test_new_syntax"],  # only what failed there
        "py3.12-cpu": ["test_things.py::test_fine", "test_things.py::test_new_syntax"],
    }


def test_cells_waiting_for_the_gpu_do_not_hold_back_cpu_cells(
    run_matrix: RunMatrix, gpu_project: GpuProject, warm_cache: Path
) -> None:
    out = gpu_project(("3.11", "3.12"), ["11.8", "12.1", "cpu"])  # GPU cells first in each row
    result, data = run_matrix(warm_cache, "--conda-matrix-jobs", "2")
    assert result.ret == 0, result.stdout.str()
    marks = _marks(out)
    cells = [c["cell"] for c in data["cells"]]
    gpu = sorted((marks[f"{c}.start"], marks[f"{c}.end"]) for c in cells if "-cu" in c)
    cpu_starts = [marks[f"{c}.start"] for c in cells if c.endswith("-cpu")]
    assert len(gpu) == 4 and len(cpu_starts) == 2
    # four GPU cells take turns; meanwhile the other slot runs both CPU cells, rather than
    # sitting idle behind GPU cells that wait for the GPU
    assert max(cpu_starts) < gpu[1][1], marks
