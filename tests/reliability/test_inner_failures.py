"""Tests that crash, exit, hang, flood or leak processes: each cell reports its cause, the
other cells finish, and no process the cells started outlives the run.

The same test file does something else in each cell (chosen by CONDAMATRIX_PYTHON), so that
one matrix run shows a failure next to cells that must not be disturbed by it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import MakeProject

from .conftest import Figures
from .helpers import is_alive, kill_pids, run_matrix

pytestmark = pytest.mark.integration

FLOOD_MB = 30
TIMEOUT = 6.0

# Python 3.9 syntax: this file runs in every cell.
TESTS = """
import ctypes, os, subprocess, sys, time

PIDS = {pids!r}
MODE = {modes!r}[os.environ["CONDAMATRIX_PYTHON"]]


def note(kind, pid):
    with open(os.path.join(PIDS, "%s-%d" % (kind, pid)), "w") as fh:
        fh.write(kind)


def sleeper(ignore_term=False):
    code = "import signal, time\\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    code += "time.sleep(600)\\n"
    child = subprocess.Popen([sys.executable, "-c", code])
    note("child", child.pid)
    return child


def test_a_passes_first():
    note("pytest", os.getpid())


def test_b_misbehaves():
    if MODE == "segfault":
        ctypes.string_at(0)
    elif MODE == "exit":
        sleeper()
        os._exit(3)
    elif MODE == "hang":
        sleeper()
        # A grandchild whose parent exits: reparented, but still in the cell's process group.
        code = "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); print(p.pid)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        note("child", int(out))
        time.sleep(600)
    elif MODE == "flood":
        line = "x" * 1023 + "\\n"
        for _ in range({flood_mb} * 1024):
            sys.stdout.write(line)
        assert False, "flooded"
    elif MODE == "leak":
        sleeper(ignore_term=True)
        sleeper()
"""


def write_tests(pids: Path, modes: dict[str, str]) -> str:
    return TESTS.format(pids=str(pids), modes=modes, flood_mb=FLOOD_MB)


def live_pids(pids: Path) -> list[int]:
    return [
        int(p.name.split("-")[1]) for p in pids.iterdir() if is_alive(int(p.name.split("-")[1]))
    ]


@pytest.mark.parametrize(
    ("modes", "expected"),
    [
        (
            {"3.9": "segfault", "3.11": "exit", "3.12": "ok"},
            {
                "py3.9-cpu": ("crashed", "killed by signal 11"),
                "py3.11-cpu": ("crashed", "ended abruptly with exit code 3"),
                "py3.12-cpu": ("passed", ""),
            },
        ),
        (
            {"3.9": "hang", "3.11": "flood", "3.12": "leak"},
            {
                "py3.9-cpu": ("timeout", f"killed after the {TIMEOUT:g} s timeout"),
                "py3.11-cpu": ("failed", ""),
                "py3.12-cpu": ("passed", ""),
            },
        ),
    ],
    ids=["segfault-exit", "hang-flood-leak"],
)
def test_misbehaving_tests_are_outcomes_and_leave_no_process(
    matrix_project: MakeProject,
    warm_cache: Path,
    tmp_path: Path,
    figures: Figures,
    modes: dict[str, str],
    expected: dict[str, tuple[str, str]],
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    project = matrix_project(python=("3.9", "3.11", "3.12"), tests=write_tests(pids, modes))
    start = time.monotonic()
    run = run_matrix(
        project,
        warm_cache,
        "--conda-matrix-timeout",
        f"{TIMEOUT:g}",
        "--conda-matrix-jobs",
        "3",
        out=tmp_path / "out",
    )
    wall = time.monotonic() - start
    left = live_pids(pids)
    kill_pids(left)  # ours, started by this test's cells; ended so that nothing lingers
    assert not left, f"processes outlived the run: {left}"
    assert run.proc.returncode == 1, run.output()
    cells = run.cells()
    for name, (status, words) in expected.items():
        assert cells[name]["status"] == status, (name, cells[name]["message"])
        assert words in cells[name]["message"], (name, cells[name]["message"])
        # Every cell reports the test that passed before the trouble, crash or not.
        assert cells[name]["counts"]["passed"] >= 1, (name, cells[name])
    assert wall < 60 + TIMEOUT, "a hung cell must not hold the run"
    flooded = [c for c in cells.values() if modes[c["python"]] == "flood"]
    for cell in flooded:
        (failure,) = [t for t in cell["tests"] if t["outcome"] == "failed"]
        assert "flooded" in failure["message"]
        assert len(failure["longrepr"]) <= 25_000, "a flood must not reach the results whole"
        assert Path(cell["log"]).stat().st_size >= FLOOD_MB * 1024 * 1024
    for cell in cells.values():
        figures.add("inner failures", "cells")
        figures.record(
            "inner failures",
            **{f"outcome[{modes[cell['python']]}]": cell["status"]},
        )
    figures.add("inner failures", "orphans", len(left))
    figures.add("inner failures", "processes_checked", len(list(pids.iterdir())))
    figures.record("inner failures", failures=0, timeout_seconds=TIMEOUT)
    figures.add("inner failures", "run_seconds", round(wall, 1))
