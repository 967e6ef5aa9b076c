"""A cell dies with the outer run at any moment: SIGKILL of the run while a cell starts,
waits at its gate, imports a slow conftest.py (before the worker's own watcher exists) or
tests; and a later rebuild never pulls an env from under a process still running in it.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import MakeProject
from pytest_condamatrix import processes as command
from pytest_condamatrix.envs.cache import EnvCache
from pytest_condamatrix.envs.spec import EnvSpec
from pytest_condamatrix.envs.stamp import STAMP
from pytest_condamatrix.errors import EnvBuildError

from .conftest import Figures, Scale
from .helpers import (
    env_problems,
    is_alive,
    kill_pids,
    processes_mentioning,
    run_matrix,
    start_matrix,
    wait_for,
)

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's"
)

# A parent that starts a long child through command.spawn, prints its pid, and waits; the
# child starts a grandchild in its group (as a test does) and writes its pid.
CHILD = (
    "import subprocess, sys, time; "
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "open(sys.argv[1], 'w').write(str(c.pid)); time.sleep(60)"
)
PARENT = """
import sys, threading, time
from pathlib import Path
from pytest_condamatrix import processes as command
out = open(sys.argv[1], "wb")
procs = []
def start():  # from a thread that then ends, as the runner's cell threads may
    procs.append(command.spawn([sys.executable, "-c", sys.argv[2], sys.argv[3]],
                               env={}, cwd=Path("."), output=out))
thread = threading.Thread(target=start)
thread.start()
thread.join()
print(procs[0].pid, flush=True)
time.sleep(60)
"""


@linux_only
def test_a_spawned_child_dies_with_its_parent_not_with_the_thread(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "out"), CHILD, str(pidfile)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    wait_for(pidfile.exists, 10, "the grandchild")
    wait_for(lambda: pidfile.read_text().strip(), 10, "the grandchild's pid")
    grandchild = int(pidfile.read_text())
    try:
        time.sleep(0.3)
        assert is_alive(child), "the child died when the thread that started it ended"
        parent.kill()
        parent.wait(10)
        wait_for(lambda: not is_alive(child), 2, "the child to die with its parent")
        # the parent-death signal ends the child only: the run's watchdog ends its group
        wait_for(lambda: not is_alive(grandchild), 2, "the grandchild to die with the parent")
    finally:
        kill_pids([child, grandchild])


@linux_only
def test_a_child_whose_parent_died_while_forking_ends(tmp_path: Path) -> None:
    # The pre-exec step compares getppid() with the parent it was made for: a mismatch means
    # the parent died before the signal was armed, and the child must not go on.
    step = command._die_with(os.getpid() + 1_000_000)
    assert step is not None
    proc = subprocess.Popen(["sleep", "30"], preexec_fn=step)
    assert proc.wait(10) == 1


SLOW_CONFTEST = "import time\ntime.sleep({seconds})\n"
SLOW_TEST = "import time\n\ndef test_slow():\n    time.sleep({seconds})\n"


@pytest.mark.integration
@linux_only
def test_cells_die_with_a_killed_run_at_any_moment(
    matrix_project: MakeProject, tmp_path: Path, scale: Scale, figures: Figures
) -> None:
    kills = scale.pick(4, 20)
    seed = int(os.environ.get("RELIABILITY_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    project = matrix_project(python=("3.12",), tests=SLOW_TEST.format(seconds=3))
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    first = run_matrix(project, cache, out=out, name="warm")
    assert first.proc.returncode == 0, first.output()
    (project / "conftest.py").write_text(SLOW_CONFTEST.format(seconds=3))

    moments: Counter[str] = Counter()
    orphans = 0
    ways = ("cell started", "in conftest", "testing", "any time")
    for round_ in range(kills):
        way = ways[round_ % len(ways)]
        run = start_matrix(project, cache, out=out, name=f"k{round_}")
        pid = run.pid
        if way == "any time":
            time.sleep(rng.uniform(0, 8))
        else:
            wait_for(lambda: _moment(cache, pid) != "before the cell", 60, "the cell")  # noqa: B023
            if way == "in conftest":
                time.sleep(rng.uniform(0, 2.5))
            elif way == "testing":
                wait_for(lambda: _moment(cache, pid) == "configured", 60, "the tests")  # noqa: B023
                time.sleep(rng.uniform(0, 2.5))
        moments[_moment(cache, run.pid)] += 1
        run.kill()
        run.proc.wait(30)
        time.sleep(0.5)  # the kernel's signal is immediate; leave the reaping some slack
        leftovers = processes_mentioning(str(cache))
        orphans += len(leftovers)
        kill_pids(leftovers)
        for env in (cache / "envs").iterdir():
            assert not env_problems(env), env_problems(env)
    check = run_matrix(project, cache, out=out, name="after")
    assert check.proc.returncode == 0, check.output()
    figures.record(
        "parent death",
        kills=kills,
        seed=seed,
        killed_in=dict(moments),
        orphans_after_kill=orphans,
        broken_envs_reused=0,
        failures=0,
    )
    assert orphans == 0, f"{orphans} cell processes outlived the killed run (seed {seed})"


def _moment(cache: Path, pid: int) -> str:
    """Where the cell of run ``pid`` is: its results stream starts at the worker's configure."""
    streams = list((cache / "runs").glob(f"*-{pid}/*.jsonl"))
    if any(s.stat().st_size for s in streams if s.exists()):
        return "configured"
    if list((cache / "runs").glob(f"*-{pid}/*.log")):
        return "before configure"
    return "before the cell"


def test_a_rebuild_waits_for_processes_still_running_from_the_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pytest_condamatrix.envs.inuse.WAIT_SECONDS", 0.5)
    sleeper = shutil.which("sleep")
    assert sleeper is not None

    def builder(spec: EnvSpec, prefix: Path, final: Path) -> list[str]:
        (prefix / "bin").mkdir(parents=True)
        shutil.copy(sleeper, prefix / "bin" / "python")
        (prefix / "conda-meta").mkdir()
        return []

    cache = EnvCache(tmp_path / "cache")
    spec = _spec()
    with cache.use(spec, builder) as env:
        prefix = env.prefix
    orphan = subprocess.Popen([str(prefix / "bin" / "python"), "30"])
    try:
        wait_for(lambda: _runs_from(orphan.pid, prefix), 5, "the orphan to start")
        with (
            pytest.raises(EnvBuildError, match=f"still used by process.*{orphan.pid}"),
            cache.use(spec, builder, rebuild=True),
        ):
            pass
        assert (prefix / STAMP).is_file()  # left whole under the process
    finally:
        orphan.kill()
        orphan.wait()
    with cache.use(spec, builder, rebuild=True) as env:
        assert env.status == "built"


def _runs_from(pid: int, prefix: Path) -> bool:
    try:
        return str(Path(f"/proc/{pid}/exe").readlink()).startswith(str(prefix))
    except OSError:
        return False


def _spec() -> EnvSpec:
    return EnvSpec(
        cell_id="py3.12-cpu",
        engine="test",
        platform="linux-64",
        channels=("local",),
        specs=("python=3.12",),
        virtual_packages=(),
    )
