"""Plugin loaded INSIDE each cell's pytest: streams one JSON line per test result to a file.

It runs on the cell's interpreter (CPython >= 3.9) with only the standard library and pytest,
and is imported as a top-level module copied next to the run's files, never through the
pytest_condamatrix package (which needs Python >= 3.10 and its dependencies).

Environment it reads:
  CONDAMATRIX_RESULTS  file to append JSON lines to (one object per line, flushed at once)
  CONDAMATRIX_CELL     the cell id, e.g. py3.12-cpu
  CONDAMATRIX_GPU      "0" when this cell may not use a GPU: tests marked ``gpu`` are skipped
  CONDAMATRIX_GPU_REASON  why, shown as the skip reason
  CONDAMATRIX_GO_FD    a pipe to wait on before loading conftest.py files: a JSON object of
                       variables to set (e.g. CUDA_VISIBLE_DEVICES) means go; end of file
                       with nothing written means the run no longer wants this cell
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import types
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


def _modify_cells(config: Any, cells: Any) -> Any:
    """Declared so that a conftest.py implementing it also loads inside cells."""


def _cell_finished(config: Any, result: Any) -> None:
    """Declared so that a conftest.py implementing it also loads inside cells."""


def _run_finished(config: Any, run: Any) -> None:
    """Declared so that a conftest.py implementing it also loads inside cells."""


def pytest_addhooks(pluginmanager: Any) -> None:
    # The outer process's hooks (hookspecs.py) are never called in a cell, but pytest refuses
    # a conftest that implements an unknown hook: declare them here too.
    specs = types.SimpleNamespace(
        pytest_condamatrix_modify_cells=pytest.hookspec(firstresult=True)(_modify_cells),
        pytest_condamatrix_cell_finished=pytest.hookspec()(_cell_finished),
        pytest_condamatrix_run_finished=pytest.hookspec()(_run_finished),
    )
    if not hasattr(pluginmanager.hook, "pytest_condamatrix_modify_cells"):
        pluginmanager.add_hookspecs(specs)  # unless the plugin itself is installed in the cell


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # The runner starts a cell ahead of its turn: the interpreter, pytest and the installed
    # plugins load now, while the previous cell runs; the project's conftest.py files and
    # tests (which may claim a GPU or ports) only once the runner says go.
    fd = os.environ.pop("CONDAMATRIX_GO_FD", "")
    if not fd.isdigit():
        return
    chunks = []
    try:
        while True:  # the runner writes its word, then closes the pipe
            chunk = os.read(int(fd), 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(int(fd))
    except OSError:
        return  # no gate after all (a pytest started by a test of the cell): go on
    if not chunks:
        os._exit(2)  # the run was interrupted before this cell's turn: nothing to report
    try:
        extra = json.loads(b"".join(chunks).decode("utf-8"))
    except ValueError:
        extra = {}
    if isinstance(extra, dict):  # e.g. the GPU this cell may use
        os.environ.update({str(k): str(v) for k, v in extra.items()})


@pytest.hookimpl(trylast=True)  # after junitxml's: see _drop_fallback_junit
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
    _drop_fallback_junit(config)
    _watch_parent()


def _watch_parent() -> None:
    """End this cell (its whole process group) if the outer pytest dies without doing so.

    The outer process kills the group on timeouts and interrupts; only a SIGKILL of the outer
    process itself leaves nobody to do it. The cell leads its own group, so this is safe.
    """
    if not os.environ.get("CONDAMATRIX_CELL") or os.getpgrp() != os.getpid():
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="condamatrix-parent-watch", daemon=True).start()


def _drop_fallback_junit(config: pytest.Config) -> None:
    """Stop pytest writing the runner's fallback JUnit file once the stream is open.

    The runner asks for that file (CONDAMATRIX_JUNIT_FALLBACK) for when no results stream
    comes back; with the stream working it is never read, and writing it costs about five
    times what streaming does per test. Any surprise from pytest's internals leaves it on.
    """
    fallback = os.environ.get("CONDAMATRIX_JUNIT_FALLBACK")
    if not fallback or _stream is None:
        return
    try:
        from _pytest.junitxml import xml_key

        xml = config.stash.get(xml_key, None)
        # pytest keeps the path absolute and normalised, as the runner gives it
        if xml is None or getattr(xml, "logfile", None) != fallback:
            return
        del config.stash[xml_key]
        config.pluginmanager.unregister(xml)
    except Exception:  # an older or newer pytest: keep the fallback file
        return


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
