"""Time the worker plugin's work per test, run by a cell's own interpreter (Python >= 3.9).

Usage: <prefix>/bin/python _stream_micro.py WORKER.py RESULTS.jsonl TESTS
Prints one JSON object: CPU and wall microseconds per test (three reports: setup, call and
teardown, dispatched through pytest's plugin manager as in a real session). RESULTS.jsonl
holds the stream written, which the outer side's measurement then reads back.

A script, not a module of the package: stdlib and pytest only, Python 3.9 syntax.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time

import pytest


class FakeReport:
    """What the worker reads of a passing test's report."""

    longrepr = None
    failed = False
    skipped = False
    passed = True
    outcome = "passed"

    def __init__(self, nodeid: str, when: str) -> None:
        self.nodeid = nodeid
        self.when = when
        self.duration = 0.000123


def main() -> None:
    worker_path, results, tests = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.environ["CONDAMATRIX_RESULTS"] = results
    spec = importlib.util.spec_from_file_location("_condamatrix_worker", worker_path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {worker_path}")
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    manager = pytest.PytestPluginManager()
    manager.register(worker)
    hook = manager.hook.pytest_runtest_logreport
    reports = [
        [FakeReport(f"tests/test_m{i // 100:04d}.py::test_{i}", when) for when in WHEN]
        for i in range(tests)
    ]
    cpu, wall = time.process_time(), time.perf_counter()
    for triple in reports:
        for report in triple:
            hook(report=report)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    worker.pytest_sessionfinish(session=None, exitstatus=0)  # closes the stream
    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "cpu_us_per_test": cpu / tests * 1e6,
                "wall_us_per_test": wall / tests * 1e6,
            }
        )
    )


WHEN = ("setup", "call", "teardown")

if __name__ == "__main__":
    main()
