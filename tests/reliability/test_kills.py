"""SIGKILL builds at random points: no incomplete env is ever reused, no stale lock blocks.

Each round forces a build (``--conda-matrix-rebuild``) and kills the whole run: after a random
delay, as soon as its build shows up in ``tmp/`` (linking, stamp), or while it extracts
packages into an emptied package cache. After every kill the cache must hold only complete
envs; the next normal run must pass, in bounded time, reusing a complete env or building one.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import MakeProject

from .conftest import Figures, Scale
from .helpers import (
    build_started,
    env_problems,
    kill_pids,
    processes_mentioning,
    run_matrix,
    start_matrix,
    wait_for,
)

pytestmark = pytest.mark.integration

#: a run after a kill must not wait on anything the killed run held
RECOVERY_TIMEOUT = 120.0


def phase_of(cache: Path, pid: int) -> str:
    """Where the build of run ``pid`` is, judged from the cache folder (tmp/<env>.<pid>.<id>)."""
    if list((cache / "runs").glob(f"*-{pid}/*.log")):
        return "testing"
    tmp = list((cache / "tmp").glob(f"*.{pid}.*"))
    if any(list(t.glob("conda-meta/.condamatrix-stamp.json.*")) for t in tmp):
        return "stamp"
    if any((t / "conda-meta" / "condamatrix-stamp.json").exists() for t in tmp):
        return "publish"
    if tmp:
        return "install"
    if list((cache / "trash").glob("*")):
        return "discard"
    return "solve/start"


def test_killed_builds_are_never_reused_and_leave_no_stale_lock(
    matrix_project: MakeProject, tmp_path: Path, scale: Scale, figures: Figures
) -> None:
    kills = scale.pick(5, 50)
    verify_every = scale.pick(1, 5)
    seed = int(os.environ.get("RELIABILITY_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    project = matrix_project(python=("3.12",))
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    first = run_matrix(project, cache, out=out, name="first")
    assert first.proc.returncode == 0, first.output()

    phases: Counter[str] = Counter()
    recoveries: list[float] = []
    outcomes: Counter[str] = Counter()
    orphans = 0
    for round_ in range(kills):
        way = ("tmp", "delay", "cold-pkgs")[round_ % 3]
        if way == "cold-pkgs":
            shutil.rmtree(cache / "pkgs")  # the next build extracts every package again
        run = start_matrix(project, cache, "--conda-matrix-rebuild", out=out, name=f"k{round_}")
        if way == "tmp":
            wait_for(functools.partial(build_started, cache, run.pid), 60, "the build", 0.002)
            time.sleep(rng.uniform(0, 0.15))
        else:  # ~1.3 s to start; then a build takes ~0.2 s, or ~4 s with an empty pkgs/
            time.sleep(rng.uniform(0.3, 1.5) if way == "delay" else rng.uniform(1.0, 5.0))
        phases[phase_of(cache, run.pid)] += 1
        run.kill()
        run.proc.wait(30)
        # Only the outer run was killed: a cell's pytest leads a session of its own, and its
        # worker ends that session within a second or two of noticing its parent is gone.
        leftovers = processes_mentioning(str(cache))
        deadline = time.monotonic() + 5
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.1)
            leftovers = processes_mentioning(str(cache))
        orphans += len(leftovers)
        kill_pids(leftovers)

        envs = list((cache / "envs").iterdir())
        for env in envs:
            assert not env_problems(env), (
                f"round {round_} ({way}, seed {seed}): {env_problems(env)}"
            )
        if (round_ + 1) % verify_every and round_ != kills - 1:
            continue
        start = time.monotonic()
        check = run_matrix(project, cache, out=out, name=f"check{round_}", timeout=RECOVERY_TIMEOUT)
        recoveries.append(time.monotonic() - start)
        assert check.proc.returncode == 0, f"seed {seed}: {check.output()}"
        (cell,) = check.cells().values()
        outcomes[cell["env_status"]] += 1
        assert cell["env_status"] == ("reused" if envs else "built"), cell
        assert not env_problems(Path(cell["env_prefix"]))
        assert not list((cache / "tmp").glob("*")) or cell["env_status"] == "reused"

    figures.record(
        "kills",
        kills=kills,
        seed=seed,
        killed_in=dict(phases),
        recovery_runs=len(recoveries),
        recovery_outcomes=dict(outcomes),
        recovery_max_seconds=round(max(recoveries), 1),
        incomplete_envs_reused=0,
        orphans_after_kill=orphans,
        failures=0,
    )
    assert orphans == 0, f"{orphans} cell processes outlived the killed run (seed {seed})"
