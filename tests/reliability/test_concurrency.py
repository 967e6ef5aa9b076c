"""Many runs on one cache at once: each env is built exactly once, and nobody breaks anybody."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from conftest import MakeProject

from .conftest import Figures, Scale
from .helpers import assert_no_traceback, run_matrix, start_matrix, wait_for

pytestmark = pytest.mark.integration


def test_concurrent_runs_on_a_cold_cache_build_each_env_once(
    matrix_project: MakeProject, tmp_path: Path, scale: Scale, figures: Figures
) -> None:
    processes = scale.pick(8, 24)
    project = matrix_project(python=("3.11", "3.12"))
    cache = tmp_path / "cold-cache"
    start = time.monotonic()
    runs = [
        start_matrix(project, cache, out=tmp_path / "out", name=f"r{i}") for i in range(processes)
    ]
    codes = [run.wait(600) for run in runs]
    wall = time.monotonic() - start

    builds: Counter[str] = Counter()
    keys: defaultdict[str, set[str]] = defaultdict(set)
    failures = 0
    for run, code in zip(runs, codes, strict=True):
        assert_no_traceback(run.output())
        failures += code != 0
        for cell, result in run.cells().items():
            builds[cell] += result["env_status"] == "built"
            keys[cell].add(result["env_key"])
            failures += result["status"] != "passed"
    figures.record(
        "concurrency: cold cache",
        processes=processes,
        cells=len(keys),
        builds=sum(builds.values()),
        failures=failures,
        wall_seconds=round(wall, 1),
    )
    assert codes == [0] * processes, [run.output() for run in runs if run.proc.returncode]
    assert set(keys) == {"py3.11-cpu", "py3.12-cpu"}
    assert builds == {"py3.11-cpu": 1, "py3.12-cpu": 1}, "every env is built exactly once"
    assert all(len(k) == 1 for k in keys.values()), f"every run agrees on the env keys: {keys}"
    assert not list((cache / "tmp").iterdir()), "no build is left half-done"
    runs_left = [p.name for p in (cache / "runs").iterdir()]
    for run in runs:  # every run kept its logs while it ran (no run pruned another's folder)
        assert run.cells()["py3.12-cpu"]["counts"]["passed"] == 1, run.output()
    assert len(runs_left) <= max(20, processes)


SLOW_TEST = """
import os, pathlib, subprocess, sys, time

def test_uses_the_env_for_a_while():
    marks = pathlib.Path({marks!r})
    tag = os.environ.get("RELIABILITY_TAG", "other")
    (marks / ("start-" + tag)).write_text(repr(time.time()))
    time.sleep(float(os.environ.get("RELIABILITY_SLEEP", "0")))
    # The env must still be whole: a new interpreter from it imports modules not yet loaded.
    subprocess.run([sys.executable, "-c", "import decimal, json, sqlite3"], check=True)
    (marks / ("end-" + tag)).write_text(repr(time.time()))
"""


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the tests below: its package cache is extracted once."""
    return tmp_path_factory.mktemp("concurrency") / "cache"


def test_a_forced_rebuild_waits_for_a_run_testing_in_the_env(
    matrix_project: MakeProject, shared_cache: Path, tmp_path: Path, figures: Figures
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    project = matrix_project(python=("3.12",), tests=SLOW_TEST.format(marks=str(marks)))
    cache = shared_cache
    out = tmp_path / "out"
    first = run_matrix(project, cache, out=out, name="warm")
    assert first.proc.returncode == 0, first.output()

    reader = start_matrix(
        project,
        cache,
        out=out,
        name="reader",
        env={"RELIABILITY_SLEEP": "4", "RELIABILITY_TAG": "reader"},
    )
    wait_for((marks / "start-reader").exists, 60, "the reader's test to start")
    writer = start_matrix(project, cache, "--conda-matrix-rebuild", out=out, name="writer")
    writer_started = time.time()
    assert reader.wait(120) == 0, reader.output()
    assert writer.wait(120) == 0, writer.output()
    for run in (reader, writer):
        assert_no_traceback(run.output())

    (reader_cell,) = reader.cells().values()
    (writer_cell,) = writer.cells().values()
    assert reader_cell["status"] == "passed" and reader_cell["env_status"] == "reused"
    assert writer_cell["env_status"] == "built"
    assert writer_cell["env_reason"] == "forced (--conda-matrix-rebuild)"
    stamp = json.loads(
        (Path(writer_cell["env_prefix"]) / "conda-meta" / "condamatrix-stamp.json").read_text()
    )
    reader_test_end = float((marks / "end-reader").read_text())
    # The rebuild took the write lock only once the reader let go of its read lock.
    assert stamp["built_at"] > reader_test_end, (stamp["built_at"], reader_test_end)
    figures.record(
        "concurrency: rebuild while testing",
        reader_passed=reader_cell["status"] == "passed",
        writer_waited_seconds=round(stamp["built_at"] - writer_started, 1),
        failures=int(reader_cell["status"] != "passed") + int(writer_cell["status"] != "passed"),
    )


def test_a_long_run_keeps_its_folder_while_later_runs_prune(
    matrix_project: MakeProject, shared_cache: Path, tmp_path: Path, figures: Figures
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    project = matrix_project(python=("3.12",), tests=SLOW_TEST.format(marks=str(marks)))
    cache = shared_cache
    out = tmp_path / "out"
    assert run_matrix(project, cache, out=out, name="warm").proc.returncode == 0
    long = start_matrix(
        project,
        cache,
        out=out,
        name="long",
        env={"RELIABILITY_SLEEP": "3", "RELIABILITY_TAG": "long"},
    )
    wait_for((marks / "start-long").exists, 60, "the long run's test")
    # Stand in for the 20+ runs that start while a long one goes on (cheaper than running
    # them): folders named later than the long run's, so that it is the oldest.
    for i in range(25):
        (cache / "runs" / f"29991231-2359{i:02d}-1").mkdir()
    short = run_matrix(project, cache, out=out, name="short")
    assert short.proc.returncode == 0, short.output()
    assert long.wait(120) == 0, long.output()
    (cell,) = long.cells().values()
    assert cell["counts"]["passed"] == 1, "the long run lost its results stream"
    assert Path(cell["log"]).is_file(), "the long run's log was deleted under it"
    figures.record("concurrency: run folders", long_run_kept=True, failures=0)
