"""Ctrl-C (SIGINT to the run's process group) during a build, a test run, or a wait for
another run's lock: partial results are reported and written, nothing half-built is kept or
reused, nothing the run started is left running, and the exit code is 2.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
from filelock import ReadWriteLock

from conftest import MakeProject

from .conftest import Figures, Scale
from .helpers import (
    assert_no_traceback,
    build_started,
    env_problems,
    is_alive,
    kill_pids,
    processes_mentioning,
    run_matrix,
    start_matrix,
    wait_for,
)

pytestmark = pytest.mark.integration

#: how long a run may take to end after Ctrl-C (it kills its cells' pytest after 3 s grace)
PROMPT = 10.0

SLOW_TESTS = """
import os, subprocess, sys, time

def test_a_quick():
    pass

def test_b_slow():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open({pids!r} + "/%d-%d" % (os.getpid(), child.pid), "w") as fh:
        fh.write("started")
    time.sleep(float(os.environ.get("RELIABILITY_SLEEP", "0")))
"""


def interrupt(run_pid: int) -> float:
    """Ctrl-C as a terminal sends it: SIGINT to the run's process group; returns when."""
    os.killpg(run_pid, signal.SIGINT)
    return time.monotonic()


def test_ctrl_c_during_a_build(
    matrix_project: MakeProject, tmp_path: Path, scale: Scale, figures: Figures
) -> None:
    rounds = scale.pick(1, 10)
    rng = random.Random(time.time_ns())
    project = matrix_project(python=("3.12",))
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    slowest = 0.0
    for round_ in range(rounds):
        if round_:  # a cold package cache makes the build last seconds
            shutil.rmtree(cache / "pkgs")
        args = ("--conda-matrix-rebuild",) if round_ else ()
        run = start_matrix(project, cache, *args, out=out, name=f"interrupted{round_}")
        wait_for(functools.partial(build_started, cache, run.pid), 120, "the build")
        time.sleep(rng.uniform(0, 0.5) if round_ else 0)
        sent = interrupt(run.pid)
        assert run.wait(120) == 2, run.output()
        slowest = max(slowest, time.monotonic() - sent)
        assert_no_traceback(run.output())
        data = run.results()
        assert data["interrupted"] is True and data["exit_code"] == 2
        (cell,) = data["cells"]
        assert cell["status"] == "interrupted"
        assert "interrupted" in run.output()
        for env in (cache / "envs").iterdir():  # the build finished whole, or left no env
            assert not env_problems(env)
    again = run_matrix(project, cache, out=out, name="again")
    assert again.proc.returncode == 0, again.output()
    (cell,) = again.cells().values()
    assert cell["env_status"] in ("built", "reused") and not env_problems(Path(cell["env_prefix"]))
    assert not list((cache / "tmp").iterdir()), "what the interrupted build left is swept"
    figures.add("interruption", "cases", rounds)
    figures.record("interruption", during_build_exit_seconds=round(slowest, 1), exit_code=2)


def test_ctrl_c_during_tests_reports_partial_results(
    matrix_project: MakeProject, warm_cache: Path, tmp_path: Path, figures: Figures
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    project = matrix_project(python=("3.9", "3.12"), tests=SLOW_TESTS.format(pids=str(pids)))
    out = tmp_path / "out"
    run = start_matrix(
        project, warm_cache, "--conda-matrix-jobs", "2", out=out, env={"RELIABILITY_SLEEP": "600"}
    )
    wait_for(lambda: len(list(pids.iterdir())) == 2, 120, "both cells' slow test to start")
    sent = interrupt(run.pid)
    assert run.wait(60) == 2, run.output()
    ended = time.monotonic() - sent
    assert_no_traceback(run.output())
    started = [int(pid) for name in pids.iterdir() for pid in name.name.split("-")]
    left = [pid for pid in started if is_alive(pid)]
    kill_pids(left)
    assert not left, "the cells' pytest and what it started must end with the run"
    data = run.results()
    assert data["exit_code"] == 2 and data["interrupted"] is True
    for cell in data["cells"]:
        assert cell["status"] == "interrupted"
        # The test that finished before Ctrl-C is reported.
        assert [t["nodeid"] for t in cell["tests"]] == ["test_things.py::test_a_quick"]
    assert ended < PROMPT, f"the run took {ended:.1f} s to end after Ctrl-C"
    figures.add("interruption", "cases")
    figures.record("interruption", during_tests_exit_seconds=round(ended, 1), orphans=len(left))


def test_ctrl_c_ends_a_cell_waiting_for_its_turn(
    matrix_project: MakeProject, warm_cache: Path, tmp_path: Path, figures: Figures
) -> None:
    """With -j 1 the second cell is started ahead and waits at the worker's gate: Ctrl-C must
    end it too, and report it interrupted with no test run."""
    pids = tmp_path / "pids"
    pids.mkdir()
    project = matrix_project(python=("3.9", "3.12"), tests=SLOW_TESTS.format(pids=str(pids)))
    run = start_matrix(
        project,
        warm_cache,
        "--conda-matrix-jobs",
        "1",
        out=tmp_path / "out",
        env={"RELIABILITY_SLEEP": "600"},
    )
    wait_for(lambda: len(list(pids.iterdir())) == 1, 120, "the first cell's slow test to start")

    # the run's cells are the processes whose --junitxml lies in its runs/<...>-<pid> folder
    def cells() -> list[int]:
        return processes_mentioning(f"-{run.pid}/")

    wait_for(lambda: len(cells()) == 2, 60, "the second cell to wait at its gate")
    waiting = cells()
    sent = interrupt(run.pid)
    assert run.wait(60) == 2, run.output()
    ended = time.monotonic() - sent
    assert_no_traceback(run.output())
    started = [int(pid) for name in pids.iterdir() for pid in name.name.split("-")]
    left = [pid for pid in {*started, *waiting} if is_alive(pid)]
    kill_pids(left)
    assert not left, "a cell waiting for its turn must end with the run"
    data = run.results()
    waited, ran = sorted(data["cells"], key=lambda cell: len(cell["tests"]))
    assert ran["status"] == waited["status"] == "interrupted"
    assert [t["nodeid"] for t in ran["tests"]] == ["test_things.py::test_a_quick"]
    assert waited["tests"] == []
    assert ended < PROMPT, f"the run took {ended:.1f} s to end after Ctrl-C"
    figures.add("interruption", "cases")


def test_ctrl_c_while_waiting_for_another_runs_lock(
    matrix_project: MakeProject, tmp_path: Path, figures: Figures
) -> None:
    project = matrix_project(python=("3.12",))
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    first = run_matrix(project, cache, out=out, name="first")
    (cell,) = first.cells().values()
    # Another run holds the env's write lock (as a rebuild does) for longer than we wait.
    other = ReadWriteLock(cache / "locks" / f"{Path(cell['env_prefix']).name}.lock")
    with other.write_lock():
        run = start_matrix(project, cache, out=out, name="waiting")
        time.sleep(3.0)  # it starts (about 1.5 s), then waits for the read lock
        sent = interrupt(run.pid)
        code = run.wait(60)
        ended = time.monotonic() - sent
    assert code == 2, run.output()
    assert_no_traceback(run.output())
    (cell,) = run.cells().values()
    assert cell["status"] == "interrupted"
    assert "waiting for another run's lock" in cell["message"]
    assert ended < PROMPT, f"the run took {ended:.1f} s to end after Ctrl-C"
    figures.add("interruption", "cases")
    figures.record("interruption", during_lock_wait_exit_seconds=round(ended, 1))


def test_sigterm_ends_the_run_like_ctrl_c(
    matrix_project: MakeProject, warm_cache: Path, tmp_path: Path, figures: Figures
) -> None:
    """SIGTERM to the run alone (docker stop, a cancelled CI job) must not leave its cells'
    pytest running on their own, nor lose the results so far."""
    pids = tmp_path / "pids"
    pids.mkdir()
    project = matrix_project(python=("3.12",), tests=SLOW_TESTS.format(pids=str(pids)))
    run = start_matrix(project, warm_cache, out=tmp_path / "out", env={"RELIABILITY_SLEEP": "600"})
    wait_for(lambda: len(list(pids.iterdir())) == 1, 120, "the slow test to start")
    os.kill(run.pid, signal.SIGTERM)
    sent = time.monotonic()
    code = run.wait(60)
    ended = time.monotonic() - sent
    started = [int(pid) for name in pids.iterdir() for pid in name.name.split("-")]
    left = [pid for pid in started if is_alive(pid)]
    kill_pids(left)
    assert not left, "the cell's pytest and its child must end with the run"
    assert code == 2, run.output()
    assert_no_traceback(run.output())
    (cell,) = run.cells().values()
    assert cell["status"] == "interrupted"
    assert [t["nodeid"] for t in cell["tests"]] == ["test_things.py::test_a_quick"]
    figures.add("interruption", "cases")
    figures.record("interruption", sigterm_exit_seconds=round(ended, 1))
