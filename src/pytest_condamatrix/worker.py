"""Plugin loaded INSIDE each cell's pytest: streams pytest's own reports to the outer run.

Every collect and test report is serialised with ``pytest_report_to_serializable`` (as
pytest-xdist does between its workers and controller) and classified with the cell's own
``pytest_report_teststatus``, so categories defined by the cell's plugins (subtests, rerun,
...) are named where those plugins live. At the end of the session the counts pytest prints
in its summary line are sent too, taken from the cell's terminal reporter by its rules, and
at exit a last record says that the cell's Python is shutting down: the runner lets the next
cell go on meanwhile.
Only the process that owns the session streams: pytest-xdist workers pass their reports to
their controller.

It runs on the cell's interpreter (CPython >= 3.9) with only the standard library and pytest,
and is imported as a top-level module copied next to the run's files, never through the
pytest_condamatrix package (which needs Python >= 3.10 and its dependencies).

Its option ``--condamatrix-stream=PATH`` names the file to append JSON lines to (one object
per line); on the command line, it also tells ``ps`` which run a cell belongs to.

Environment it reads:
  CONDAMATRIX_CELL     the cell id, e.g. py3.12-cpu
  CONDAMATRIX_GPU      "0" when this cell may not use a GPU: tests marked ``gpu`` are skipped
  CONDAMATRIX_GPU_REASON  why, shown as the skip reason
  CONDAMATRIX_REPORTS  "all": every report in full (the outer run has plugins that listen);
                       else reports that passed with no category (setup, teardown) are not
                       sent, and passed ones are sent in short
  CONDAMATRIX_OUTER_OPTIONS  {"flags": [...], "values": [...]}: the outer run's options
  CONDAMATRIX_GO_FD    a pipe to wait on before loading conftest.py files: a JSON object of
                       variables to set (e.g. CUDA_VISIBLE_DEVICES) means go; end of file
                       with nothing written means the run no longer wants this cell
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import signal
import sys
import threading
import time
import types
from typing import IO, Any

import pytest

#: a serialised report above this many characters has its traceback cut to text
MAX_LINE = 1_000_000
MAX_TEXT = 100_000
#: reports without a category (setup/teardown that passed) reach the file at least this
#: often (seconds); every other record at once
FLUSH_SECONDS = 0.05
_stream: IO[str] | None = None
_last_flush = 0.0
_config: Any = None
_all_reports = True
_stats: dict[str, list[Any]] = {}  # the terminal reporter's reports by category, if it runs


def _exiting() -> None:
    """Tell the runner the cell's pytest is over (and every atexit handler registered after
    the worker loaded): the next cell may start while this interpreter shuts down."""
    global _stream
    if _stream is None or os.getpid() != _pid:  # a forked child of a test: not the cell
        return
    with contextlib.suppress(Exception):  # a full disk: the exit still tells the runner
        _stream.write('{"e": "exiting"}\n')
        _stream.close()
    _stream = None


_pid = os.getpid()
atexit.register(_exiting)  # now, before any test's handler: atexit runs the last one first


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("conda-matrix cell")
    group.addoption(
        "--condamatrix-stream",
        default=None,
        metavar="PATH",
        help="(set by pytest --conda-matrix) append this cell's reports to PATH",
    )
    # The outer run's options, where the cell's pytest reads them too (ini addopts): accepted
    # here and ignored, as the outer run already took them; the plugin declares them itself
    # where it is installed in the cell.
    if importlib.util.find_spec("pytest_condamatrix") is not None:
        return
    try:
        names = json.loads(os.environ.get("CONDAMATRIX_OUTER_OPTIONS", "{}"))
    except ValueError:
        names = {}
    for kind, nargs in (("flags", 0), ("values", 1)):
        for name in names.get(kind, ()) if isinstance(names, dict) else ():
            try:
                if nargs:
                    group.addoption(name, dest="condamatrix_outer_" + name, help="(outer run)")
                else:
                    group.addoption(name, action="store_true", dest="condamatrix_outer_" + name)
            except Exception:  # pytest-condamatrix itself is installed in the cell: it has them
                pass


def _emit(record: dict[str, Any], urgent: bool = True) -> None:
    _emit_line(_encode(record) + "\n", urgent)


def _emit_line(line: str, urgent: bool = True) -> None:
    global _stream, _last_flush
    if _stream is None:
        path = _config.getoption("condamatrix_stream") if _config is not None else None
        if not path:
            return
        _stream = open(path, "a", encoding="utf-8")  # noqa: SIM115, PTH123 - open all session
    _stream.write(line)
    now = time.monotonic()
    if urgent or now - _last_flush > FLUSH_SECONDS:
        _stream.flush()
        _last_flush = now


def _jsonable(value: object) -> object:
    """What json cannot write (an xdist node on a report, a plugin's object): its text."""
    try:
        return str(value)[:MAX_TEXT]
    except Exception:
        return None


_encode = json.JSONEncoder(default=_jsonable, ensure_ascii=False).encode  # one, not one a line
_quote = json.encoder.encode_basestring  # a str as JSON (C), as _encode writes it
_INFINITY = float("inf")
#: the line of a test that passed, in short (most lines of a run): written without a dict
_PASSED_LINE = (
    '{"e": "test", "cat": "passed", "r": {"$report_type": "TestReport", "nodeid": %s,'
    ' "when": "call", "outcome": "passed", "duration": %r}}\n'
)


def _owns_session(config: Any) -> bool:
    """False in a pytest-xdist worker: its controller streams the reports it forwards."""
    return bool(config.getoption("condamatrix_stream", None)) and not hasattr(config, "workerinput")


def pytest_addhooks(pluginmanager: Any) -> None:
    # The outer process's hooks (hookspecs.py) are never called in a cell, but pytest refuses
    # a conftest that implements an unknown hook: declare them here too.
    specs = types.SimpleNamespace(
        pytest_condamatrix_modify_cells=pytest.hookspec(firstresult=True)(lambda config, cells: 0),
        pytest_condamatrix_cell_finished=pytest.hookspec()(lambda config, result: 0),
        pytest_condamatrix_run_finished=pytest.hookspec()(lambda config, run: 0),
    )
    if not hasattr(pluginmanager.hook, "pytest_condamatrix_modify_cells"):
        pluginmanager.add_hookspecs(specs)  # unless the plugin itself is installed in the cell


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # The runner starts a cell ahead of its turn: the interpreter, pytest and the installed
    # plugins load now, while the previous cell runs; the project's conftest.py files and
    # tests (which may claim a GPU or ports) only once the runner says go.
    _watch_parent()  # from here on: conftest.py files may import for long
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
        os._exit(2)  # the run no longer wants this cell: nothing to report
    try:
        extra = json.loads(b"".join(chunks).decode("utf-8"))
    except ValueError:
        extra = {}
    if isinstance(extra, dict):  # e.g. the GPU this cell may use
        os.environ.update({str(k): str(v) for k, v in extra.items()})


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    global _config, _all_reports
    config.addinivalue_line(
        "markers", "gpu: needs a usable NVIDIA GPU; skipped in cells that cannot use one"
    )
    if not _owns_session(config):
        return
    _config = config
    _all_reports = os.environ.get("CONDAMATRIX_REPORTS", "all") == "all"
    _watch_parent()  # a no-op when the gate already started it
    _emit(
        {
            "e": "start",
            "cell": os.environ.get("CONDAMATRIX_CELL", ""),
            "python": sys.version.split()[0],
            "pytest": pytest.__version__,
        }
    )


_watching = False


def _watch_parent() -> None:
    """End this cell (its whole process group) if the outer pytest dies without doing so.

    The outer process kills the group on timeouts and interrupts; only a SIGKILL of the outer
    process itself leaves nobody to do it. The cell leads its own group, so this is safe.
    """
    global _watching
    if _watching or not os.environ.get("CONDAMATRIX_CELL") or os.getpgrp() != os.getpid():
        return
    _watching = True
    # the run's pid as the runner gave it: getppid() is init's already if the run died first
    given = os.environ.get("CONDAMATRIX_PARENT_PID", "")
    parent = int(given) if given.isdigit() else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="condamatrix-parent-watch", daemon=True).start()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CONDAMATRIX_GPU") != "0":
        return
    reason = os.environ.get("CONDAMATRIX_GPU_REASON") or "no usable GPU in this cell"
    skip = pytest.mark.skip(reason="gpu test: " + reason)
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


def pytest_collection_finish(session: pytest.Session) -> None:
    if _config is None:
        return
    record: dict[str, Any] = {"e": "collected", "n": len(session.items)}
    if session.config.getoption("collectonly", False):
        record["ids"] = [item.nodeid for item in session.items]
    _emit(record)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: Any) -> None:
    # An xdist controller collects nothing itself: its first worker's ids are the count.
    if _config is not None and not getattr(pytest_xdist_node_collection_finished, "seen", 0):
        pytest_xdist_node_collection_finished.seen = 1  # type: ignore[attr-defined]
        _emit({"e": "collected", "n": len(ids)})


def pytest_deselected(items: list[pytest.Item]) -> None:
    if _config is not None:
        _emit({"e": "deselected", "n": len(items)})


def _serialise(report: Any) -> dict[str, Any]:
    data = _config.hook.pytest_report_to_serializable(config=_config, report=report)
    if not isinstance(data, dict):
        data = {}
    if len(str(data.get("longrepr", ""))) > MAX_LINE:  # keep the stream's lines bounded
        text = str(getattr(report, "longreprtext", ""))
        data["longrepr"] = text[:MAX_TEXT] + "\n[... truncated]"
    return data


def _status(report: Any) -> str:
    # pytest's terminal reporter asked for this report's status just before us and filed it
    # under its category: read it there rather than ask every plugin again (a third of our
    # cost); without that reporter (-p no:terminal), ask.
    for category, reports in _stats.items():
        if reports and reports[-1] is report:
            return str(category)
    try:
        category = _config.hook.pytest_report_teststatus(report=report, config=_config)[0]
    except Exception:  # a plugin's hook that fails here fails the terminal reporter too
        category = report.outcome
    return str(category)


def _short(report: Any) -> dict[str, Any]:
    """What the outer run reads of a report that passed, when no plugin there wants it all."""
    data = {
        "$report_type": "TestReport",
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "duration": report.duration,
    }
    if hasattr(report, "wasxfail"):
        data["wasxfail"] = report.wasxfail
    context = getattr(report, "context", None)  # a subtest's: pytest 9, pytest-subtests
    if context is not None:
        data["_subtest.context"] = {
            "msg": getattr(context, "msg", None),
            "kwargs": {str(k): repr(v) for k, v in dict(getattr(context, "kwargs", {})).items()},
        }
    return data


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    global _stats
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", None)
    _stats = stats if isinstance(stats, dict) else {}


@pytest.hookimpl(trylast=True)  # after the terminal reporter: the report is final
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _config is None:
        return
    if report.when != "call" and report.passed:
        # a setup or teardown that passed has no category in pytest's own terminal reporter
        if _all_reports:
            _emit({"e": "test", "cat": "", "r": _serialise(report)}, urgent=False)
        return
    category = _status(report)
    if report.passed and not _all_reports and not report.sections:
        duration = report.duration
        if (
            category == "passed"
            and type(report) is pytest.TestReport  # not a subtest's, nor a plugin's subclass
            and type(duration) is float
            and 0.0 <= duration < _INFINITY  # a number JSON can hold
            and type(report.nodeid) is str
            and not hasattr(report, "wasxfail")
        ):
            _emit_line(_PASSED_LINE % (_quote(report.nodeid), duration))
            return
        data = _short(report)
    else:
        data = _serialise(report)
    _emit({"e": "test", "cat": category, "r": data})


@pytest.hookimpl(trylast=True)
def pytest_collectreport(report: pytest.CollectReport) -> None:
    if _config is None:
        return
    category = "error" if report.failed else "skipped" if report.skipped else ""
    if category or _all_reports:
        _emit({"e": "collect", "cat": category, "r": _serialise(report)}, urgent=bool(category))


def pytest_warning_recorded(warning_message: Any, when: str, nodeid: str, location: Any) -> None:
    if _config is None:
        return
    category = getattr(warning_message, "category", None)
    _emit(
        {
            "e": "warning",
            "message": str(warning_message.message)[:MAX_TEXT],
            "category": getattr(category, "__name__", "UserWarning"),
            "filename": str(warning_message.filename),
            "lineno": warning_message.lineno,
            "when": when,
            "nodeid": nodeid,
        }
    )


def _summary_counts(config: Any) -> dict[str, int] | None:
    """The counts of pytest's summary line, by its own rules (None without its reporter);
    the outer run puts them in pytest's order."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", None)
    if not isinstance(stats, dict):
        return None
    counts = {}
    for key, reports in stats.items():
        n = sum(1 for r in reports if getattr(r, "count_towards_summary", True))
        if key and n:  # "": setups and teardowns that passed, which pytest does not count
            counts[str(key)] = n
    return counts


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _config is None:
        return
    try:
        counts = _summary_counts(session.config)
    except Exception:
        counts = None
    _emit({"e": "finish", "exitstatus": int(exitstatus), "counts": counts})


def pytest_unconfigure(config: pytest.Config) -> None:
    if _stream is not None and config is _config:
        _stream.flush()  # closed at exit, after the "exiting" record
