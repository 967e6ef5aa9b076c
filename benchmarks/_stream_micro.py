"""Time the worker plugin's work per test, run by a cell's own interpreter (Python >= 3.9).

Usage: <prefix>/bin/python _stream_micro.py WORKER.py RESULTS.jsonl TESTS [all|short]
(``short``, the default: no plugin of the outer run listens to the reports; ``all``: one does,
and every report goes in full)
Prints one JSON object: the CPU and wall microseconds per test that the worker adds (three
real reports, setup, call and teardown, each asked for its status as the terminal reporter
does, then dispatched, with pytest's builtin plugins: with the worker minus without it).
RESULTS.jsonl holds the stream written, which the outer side's measurement then reads back.

A script, not a module of the package: stdlib and pytest only, Python 3.9 syntax.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import sys
import time
from typing import Any, Literal

import pytest
from _pytest.config import get_config


def reports(tests: int) -> list[list[pytest.TestReport]]:
    return [
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


def dispatch(
    config: Any, triples: list[list[pytest.TestReport]], stats: dict[str, list[Any]]
) -> tuple[float, float]:
    """CPU and wall seconds of what a session does per report: the terminal reporter's
    question for its status and its filing of the report in ``stats``, then
    pytest_runtest_logreport (to every plugin but it)."""
    status, logreport = config.hook.pytest_report_teststatus, config.hook.pytest_runtest_logreport
    cpu, wall = time.process_time(), time.perf_counter()
    for triple in triples:
        for report in triple:
            category = status(report=report, config=config)[0]
            stats.setdefault(category, []).append(report)
            logreport(report=report)
    return time.process_time() - cpu, time.perf_counter() - wall


def configured(args: list[str]) -> Any:
    """A config with pytest's builtin plugins, and the state their hooks keep (pytest 9's
    subtests count failed subtests per test) as pytest_configure would leave it."""
    config = get_config(args)
    try:
        from _pytest.subtests import failed_subtests_key
    except ImportError:  # pytest 8
        return config
    config.stash[failed_subtests_key] = collections.defaultdict(int)
    return config


def main() -> None:
    worker_path, results, tests = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = importlib.util.spec_from_file_location("_condamatrix_worker", worker_path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {worker_path}")
    worker: Any = importlib.util.module_from_spec(spec)  # its globals are set below
    spec.loader.exec_module(worker)
    # pytest's builtin plugins (reports' serialisation, the test status of each report), as
    # in a cell: once without the worker (what pytest does anyway), once with it, its stream
    # opened as its option would open it; the difference is the worker's cost
    plain = configured(["-p", "no:cacheprovider"])
    config = configured(["-p", "no:cacheprovider"])
    config.pluginmanager.register(worker, "_condamatrix_worker")
    worker._config = config
    worker._all_reports = (sys.argv[4] if len(sys.argv) > 4 else "short") == "all"
    # in turns, the best of each side: a shared machine's slow moments hit both alike
    base_cpu = base_wall = cpu = wall = float("inf")
    for _ in range(ROUNDS):
        round_cpu, round_wall = dispatch(plain, reports(tests), {})
        base_cpu, base_wall = min(base_cpu, round_cpu), min(base_wall, round_wall)
        worker._stream = open(results, "w", encoding="utf-8")  # noqa: SIM115, PTH123
        stats: dict[str, list[Any]] = {}
        worker._stats = stats
        round_cpu, round_wall = dispatch(config, reports(tests), stats)
        cpu, wall = min(cpu, round_cpu), min(wall, round_wall)
        worker._stream.close()
    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "cpu_us_per_test": (cpu - base_cpu) / tests * 1e6,
                "wall_us_per_test": (wall - base_wall) / tests * 1e6,
            }
        )
    )


WHEN: tuple[Literal["setup", "call", "teardown"], ...] = ("setup", "call", "teardown")
ROUNDS = 5

if __name__ == "__main__":
    main()
