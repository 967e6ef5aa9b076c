"""Plugin loaded INSIDE each cell's pytest: streams one JSON line per test result to a file.

It runs on the cell's interpreter (CPython >= 3.9) with only the standard library and pytest,
and is imported as a top-level module copied next to the run's files, never through the
pytest_condamatrix package (which needs Python >= 3.10 and its dependencies).

Environment it reads:
  CONDAMATRIX_RESULTS  file to append JSON lines to (one object per line, flushed at once)
  CONDAMATRIX_CELL     the cell id, e.g. py3.12-cpu
  CONDAMATRIX_GPU      "0" when this cell may not use a GPU: tests marked ``gpu`` are skipped
  CONDAMATRIX_GPU_REASON  why, shown as the skip reason
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import IO, Any

import pytest

MAX_TEXT = 20000
_stream: IO[str] | None = None


def _emit(record: dict[str, Any]) -> None:
    global _stream
    if _stream is None:
        path = os.environ.get("CONDAMATRIX_RESULTS")
        if not path:
            return
        _stream = open(path, "a", encoding="utf-8")  # noqa: SIM115, PTH123 - open all session
    record["t"] = round(time.time(), 3)
    _stream.write(json.dumps(record) + "\n")
    _stream.flush()


def _text(value: object) -> str:
    text = str(value) if value is not None else ""
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "\n[... truncated]"


def _message(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        reason = str(report.longrepr[2])  # skip reports: (path, lineno, "Skipped: reason")
        return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
    return ""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gpu: needs a usable NVIDIA GPU; skipped in cells that cannot use one"
    )
    _emit(
        {
            "event": "start",
            "cell": os.environ.get("CONDAMATRIX_CELL", ""),
            "python": sys.version.split()[0],
            "pytest": pytest.__version__,
        }
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CONDAMATRIX_GPU") != "0":
        return
    reason = os.environ.get("CONDAMATRIX_GPU_REASON") or "no usable GPU in this cell"
    skip = pytest.mark.skip(reason="gpu test: " + reason)
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


def pytest_collection_finish(session: pytest.Session) -> None:
    _emit({"event": "collected", "count": len(session.items)})


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _emit(
            {
                "event": "test",
                "nodeid": report.nodeid,
                "when": "collect",
                "outcome": "error",
                "duration": 0.0,
                "message": _message(report),
                "longrepr": _text(report.longrepr),
            }
        )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    outcome: str | None = None
    if report.when == "call":
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
    elif report.failed:
        outcome = "error"  # setup or teardown failed
    elif report.skipped:
        outcome = "skipped"  # skipped in setup (marks, fixtures)
    if outcome is None:
        return
    record: dict[str, Any] = {
        "event": "test",
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": outcome,
        "duration": round(report.duration, 6),
    }
    if outcome in ("failed", "error", "skipped", "xfailed"):
        record["message"] = _message(report)
    if outcome in ("failed", "error"):
        record["longrepr"] = _text(report.longreprtext)
    _emit(record)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _emit({"event": "finish", "exitstatus": int(exitstatus)})
    if _stream is not None:
        _stream.close()
