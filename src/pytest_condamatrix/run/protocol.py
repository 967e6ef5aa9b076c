"""The report stream from the cells: pytest's own serialised reports, read back here.

The worker (worker.py) writes one JSON object per line: ``start``, ``collected``,
``deselected``, ``test`` and ``collect`` (a report serialised with
``pytest_report_to_serializable`` and the category the cell's ``pytest_report_teststatus``
gave it), ``warning``, ``finish`` (the exit status and the counts of the cell's summary
line) and ``exiting`` (pytest and the atexit handlers are done: the interpreter shuts down).
:class:`ReportRelay` rebuilds the reports with ``pytest_report_from_serializable`` and fires
them into the outer pytest's own hooks, the cell named on each report, as pytest-xdist does
with its workers' reports: plugins of the outer run (``--report-log``, a conftest's hooks)
see every cell's tests.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..results import CellResult, TestResult, ordered_counts

if TYPE_CHECKING:
    import pytest
    from _pytest.reports import BaseReport

#: text kept of a failure's traceback (the worker has already bounded the line)
MAX_TEXT = 100_000
#: text kept of a crash message or a skip reason (a 30 MB assertion message happens)
MAX_MESSAGE = 10_000
#: the outer plugins that must not see the cells' reports: they would print them as tests of
#: the outer session (terminal), or act on a session the matrix run never starts
SILENT_PLUGINS = (
    "terminalreporter",
    "stepwiseplugin",
    "lfplugin",
    "nfplugin",
    "junitxml",
    "logging-plugin",  # only switches its own live-log section: not a listener
)
#: the attribute that names the cell on a relayed report (xdist puts its node on them)
CELL_ATTRIBUTE = "condamatrix_cell"


class Reporter(Protocol):
    """Receives progress while the matrix runs (terminal output, tests)."""

    def cell_phase(self, cell: str, phase: str) -> None: ...

    def cell_collected(self, cell: str, count: int) -> None: ...

    def test_done(self, cell: str, test: TestResult) -> None: ...

    def cell_done(self, result: CellResult) -> None: ...


class NullReporter:
    def cell_phase(self, cell: str, phase: str) -> None:
        pass

    def cell_collected(self, cell: str, count: int) -> None:
        pass

    def test_done(self, cell: str, test: TestResult) -> None:
        pass

    def cell_done(self, result: CellResult) -> None:
        pass


class StreamTail:
    """Reads complete JSON lines appended to a file since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.pending = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self.pending + chunk
        *lines, self.pending = data.split(b"\n")
        records = []
        for line in lines:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records


class ReportRelay:
    """Turns the cells' report records into results, and into the outer pytest's hooks.

    One per run, shared by the cells' threads: hooks are called one at a time, as plugins
    expect. A plugin's hook that raises is reported once and cannot lose the matrix's results.
    """

    def __init__(self, config: pytest.Config | None = None) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._broken: set[str] = set()
        self._logreport: Any = None
        self._collectreport: Any = None
        self._warning: Any = None
        if config is not None:
            pm = config.pluginmanager
            silent = [p for p in (pm.get_plugin(n) for n in SILENT_PLUGINS) if p is not None]
            silent += _junitxml_plugins(config)
            self._logreport = _listeners(pm, "pytest_runtest_logreport", silent)
            self._collectreport = _listeners(pm, "pytest_collectreport", silent)
            self._warning = _listeners(pm, "pytest_warning_recorded", silent)

    @property
    def relays_tests(self) -> bool:
        return self._logreport is not None

    def test(self, cell: str, record: dict[str, Any]) -> TestResult | None:
        """A ``test`` or ``collect`` record: its result (None if it has no category)."""
        data = record.get("r")
        if not isinstance(data, dict):
            return None
        category = str(record.get("cat") or "")
        collect = record.get("e") == "collect"
        hook = self._collectreport if collect else self._logreport
        report = None
        if hook is not None or (category and data.get("outcome") != "passed"):
            report = self.rebuild(data)
        if report is not None and hook is not None:
            setattr(report, CELL_ATTRIBUTE, cell)
            name = "pytest_collectreport" if collect else "pytest_runtest_logreport"
            self._call(name, hook, report=report)
        if not category:
            return None
        return _result(data, category, report, collect)

    def warning(self, cell: str, record: dict[str, Any]) -> None:
        if self._warning is None:
            return
        message = warnings.WarningMessage(
            message=_warning_category(str(record.get("category", "")))(
                f"[{cell}] {record.get('message', '')}"
            ),
            category=_warning_category(str(record.get("category", ""))),
            filename=str(record.get("filename", "")),
            lineno=int(record.get("lineno") or 0),
        )
        self._call(
            "pytest_warning_recorded",
            self._warning,
            warning_message=message,
            when=str(record.get("when", "runtest")),
            nodeid=str(record.get("nodeid", "")),
            location=None,
        )

    def rebuild(self, data: dict[str, Any]) -> BaseReport | None:
        """The report object again; a kind this pytest does not know becomes a TestReport."""
        from _pytest.reports import CollectReport, TestReport

        if self.config is not None:
            with contextlib.suppress(Exception):  # an unknown kind trips an assert in pytest
                report = self.config.hook.pytest_report_from_serializable(
                    config=self.config, data=data
                )
                if report is not None:
                    return report  # type: ignore[no-any-return]
        kind = CollectReport if data.get("$report_type") == "CollectReport" else TestReport
        try:
            return kind._from_json(dict(data))
        except Exception:
            return None

    def _call(self, name: str, hook: Any, **kwargs: Any) -> None:
        with self._lock:
            try:
                if hook.is_historic():  # pytest_warning_recorded: only call_historic, which
                    _call_impls(hook, kwargs)  # would keep every call for later plugins
                else:
                    hook(**kwargs)
            except Exception as exc:
                if name not in self._broken:  # once: the same plugin fails on every report
                    self._broken.add(name)
                    sys.stderr.write(
                        f"warning: a plugin failed in {name} on a cell's report "
                        f"({type(exc).__name__}: {exc}); the matrix goes on\n"
                    )


def apply_records(
    cell: str,
    result: CellResult,
    records: list[dict[str, Any]],
    relay: ReportRelay,
    reporter: Reporter,
    on_failure: Callable[[str, dict[str, Any]], None],
) -> None:
    """Take a cell's new records into its result, the relay and the reporter."""
    for record in records:
        event = record.get("e")
        if event in ("test", "collect"):
            test = relay.test(cell, record)
            data = record.get("r")
            if isinstance(data, dict) and data.get("outcome") == "failed":
                on_failure(cell, data)
            if test is not None:
                result.tests.append(test)
                reporter.test_done(cell, test)
        elif event == "warning":
            result.warnings += 1
            relay.warning(cell, record)
        elif event == "deselected":
            result.deselected += _int(record.get("n"))
        elif event == "collected":
            result.collected = _int(record.get("n"))
            ids = record.get("ids")
            if isinstance(ids, list):
                result.collected_ids = [str(i) for i in ids]
            reporter.cell_collected(cell, result.collected)
        elif event == "start":
            result.interpreter = str(record.get("python", ""))
            result.pytest_version = str(record.get("pytest", ""))
        elif event == "finish":
            counts = record.get("counts")
            result.summary = (
                ordered_counts({str(k): _int(v) for k, v in counts.items()})
                if isinstance(counts, dict)
                else result.counts()  # no terminal reporter in the cell: count reports
            )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _call_impls(hook: Any, kwargs: dict[str, Any]) -> None:
    for impl in reversed(hook.get_hookimpls()):  # pluggy's order: the last registered first
        if not (getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False)):
            impl.function(*[kwargs[name] for name in impl.argnames])


def _listeners(pm: Any, name: str, silent: list[object]) -> Any:
    """The hook caller without the silent plugins, or None when nobody else listens."""
    caller = pm.subset_hook_caller(name, remove_plugins=silent)
    return caller if caller.get_hookimpls() else None


def _junitxml_plugins(config: pytest.Config) -> list[object]:
    try:
        from _pytest.junitxml import xml_key

        xml = config.stash.get(xml_key, None)
    except ImportError:
        return []
    return [xml] if xml is not None else []


def _warning_category(name: str) -> type[Warning]:
    """The warning's class when it is a builtin or pytest's own, else UserWarning."""
    import builtins

    import pytest

    for namespace in (builtins, pytest):
        found = getattr(namespace, name, None)
        if isinstance(found, type) and issubclass(found, Warning):
            return found
    return UserWarning


def _result(
    data: dict[str, Any], category: str, report: BaseReport | None, collect: bool
) -> TestResult:
    context = data.get("_subtest.context")
    return TestResult(
        nodeid=str(data.get("nodeid", "")),
        outcome=category,
        duration=float(data.get("duration") or 0.0),
        when="collect" if collect else str(data.get("when", "call")),
        message=_capped(_message(data, report), MAX_MESSAGE),
        longrepr=_longrepr_text(report) if data.get("outcome") == "failed" else "",
        subtest=_subtest_text(context) if isinstance(context, dict) else "",
    )


def _message(data: dict[str, Any], report: BaseReport | None) -> str:
    """The one line a summary shows: the crash message, the skip or xfail reason."""
    if data.get("wasxfail"):
        return str(data["wasxfail"])
    longrepr = getattr(report, "longrepr", None) if report is not None else data.get("longrepr")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    if isinstance(longrepr, (list, tuple)) and len(longrepr) == 3:
        reason = str(longrepr[2])  # skip reports: (path, lineno, "Skipped: reason")
        return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
    if isinstance(longrepr, str):
        lines = [line for line in longrepr.splitlines() if line.strip()]
        return lines[-1] if lines else ""
    return ""


def _capped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " [... truncated]"


def _longrepr_text(report: BaseReport | None) -> str:
    if report is None:
        return ""
    try:
        text = report.longreprtext
    except Exception:
        text = str(report.longrepr)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "\n[... truncated]"


def _subtest_text(context: dict[str, Any]) -> str:
    parts = []
    if context.get("msg") is not None:
        parts.append(f"[{context['msg']}]")
    kwargs = context.get("kwargs")
    if isinstance(kwargs, dict) and kwargs:
        parts.append("(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")")
    return " ".join(parts) or "(<subtest>)"
