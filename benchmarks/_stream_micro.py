"""Time the worker plugin's work per test, run by a cell's own interpreter (Python >= 3.9).

Usage: <prefix>/bin/python _stream_micro.py WORKER.py RESULTS.jsonl TESTS [all|short]
(``short``, the default: no plugin of the outer run listens to the reports; ``all``: one does,
and every report goes in full)
Prints one JSON object: CPU and wall microseconds per test (three real reports: setup, call
and teardown, dispatched through pytest's plugin manager with its builtin plugins, as in a
cell). RESULTS.jsonl holds the stream written, which the outer side's measurement then
reads back.

A script, not a module of the package: stdlib and pytest only, Python 3.9 syntax.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time

import pytest
from _pytest.config import get_config


def main() -> None:
    worker_path, results, tests = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = importlib.util.spec_from_file_location("_condamatrix_worker", worker_path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {worker_path}")
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    # pytest's builtin plugins (reports' serialisation, the test status of each report), as
    # in a cell; the worker's stream opened as its option would open it
    config = get_config(["-p", "no:cacheprovider"])
    config.pluginmanager.register(worker, "_condamatrix_worker")
    worker._config = config
    worker._all_reports = (sys.argv[4] if len(sys.argv) > 4 else "short") == "all"
    worker._stream = open(results, "a", encoding="utf-8")  # noqa: SIM115, PTH123
    hook = config.hook.pytest_runtest_logreport
    reports = [
        [
            pytest.TestReport(
                nodeid=f"tests/test_m{i // 100:04d}.py::test_{i}",
                location=(f"tests/test_m{i // 100:04d}.py", i % 100, f"test_{i}"),
                keywords={f"test_{i}": 1, f"test_m{i // 100:04d}.py": 1, "tests": 1},
                outcome="passed",
                longrepr=None,
                when=when,
                duration=0.000123,
            )
            for when in WHEN
        ]
        for i in range(tests)
    ]
    cpu, wall = time.process_time(), time.perf_counter()
    for triple in reports:
        for report in triple:
            hook(report=report)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    worker._stream.close()
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
