"""Results of a matrix run: per test, per cell, per run; versioned JSON (de)serialisation."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from . import atomic
from .errors import ExitCode, ResultsError

SCHEMA = "pytest-condamatrix/results"
#: 2: a test's outcome and a cell's counts are the categories of the cell's own pytest
#: (``pytest_report_teststatus``: subtests, rerun, plugins' own), not a fixed list
SCHEMA_VERSION = 2


class _Word(str, Enum):
    """A word of the results file: equal to, printed and written to JSON as its value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class CellStatus(_Word):
    """How a cell ended; the JSON schema's ``status`` enum, styles and icons derive from it."""

    PASSED = "passed"
    FAILED = "failed"
    NO_TESTS = "no-tests"
    ENV_ERROR = "env-error"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    NOT_RUN = "not-run"
    PENDING = "pending"
    RUNNING = "running"

    @property
    def bad(self) -> bool:
        """The cell's tests did not all pass (or it never got to run them)."""
        return self in BAD_STATUSES


#: cell statuses that mean the cell's tests did not all pass; a run ends with none pending
#: or running, so a results file holding one is of a job that never finished
BAD_STATUSES = frozenset(
    {
        CellStatus.FAILED,
        CellStatus.ENV_ERROR,
        CellStatus.CRASHED,
        CellStatus.TIMEOUT,
        CellStatus.ERROR,
        CellStatus.INTERRUPTED,
        CellStatus.PENDING,
        CellStatus.RUNNING,
    }
)


class EnvState(_Word):
    """What became of a cell's env: built now, reused from the cache, or failed to build."""

    BUILT = "built"
    REUSED = "reused"
    FAILED = "failed"
    NONE = ""  # not got that far (a cell not run, a merged file's missing cell)


class Category(_Word):
    """The categories pytest itself files reports under, in the order of its summary line.

    A test's outcome is the category the cell's own pytest gave it: one of these or any other
    a plugin defines (``rerun``...), so outcomes stay plain strings compared with these.
    """

    FAILED = "failed"
    PASSED = "passed"
    SKIPPED = "skipped"
    DESELECTED = "deselected"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    WARNINGS = "warnings"
    ERROR = "error"
    SUBTESTS_PASSED = "subtests passed"
    SUBTESTS_FAILED = "subtests failed"
    SUBTESTS_SKIPPED = "subtests skipped"


#: pytest's own order of categories in its summary line; others follow in order of appearance
KNOWN_TYPES: tuple[str, ...] = tuple(c.value for c in Category)
#: the categories of a failure (pytest names a failed subtest "failed" too)
FAILING = (Category.FAILED.value, Category.ERROR.value)


@dataclass
class TestResult:
    __test__ = False  # not a test class, despite its name

    nodeid: str
    outcome: str  # the category the cell's pytest gave the report (passed, xfailed, rerun...)
    duration: float = 0.0
    when: str = "call"
    message: str = ""
    longrepr: str = ""
    subtest: str = ""  # a subtest's description, e.g. "[msg] (i=1)"; "" for the test itself


@dataclass
class CellResult:
    """One cell: its env, how its pytest ended, and its tests."""

    cell: str
    python: str
    cuda: str
    status: CellStatus = CellStatus.PENDING
    message: str = ""  # why the status is what it is, when that needs saying
    env_status: EnvState = EnvState.NONE
    env_reason: str = ""
    env_key: str = ""
    env_prefix: str = ""
    channels: list[str] = field(default_factory=list)
    specs: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    exit_code: int | None = None
    build_seconds: float = 0.0
    test_seconds: float = 0.0
    collected: int | None = None
    interpreter: str = ""
    pytest_version: str = ""
    log: str = ""
    #: the counts of the cell's own pytest summary line; None if it never got there
    summary: dict[str, int] | None = None
    deselected: int = 0
    warnings: int = 0
    #: the ids the cell collected, with --collect-only
    collected_ids: list[str] | None = None
    tests: list[TestResult] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.build_seconds + self.test_seconds

    def counts(self) -> dict[str, int]:
        """Category -> count, as the cell's pytest counts them in its summary line.

        A cell that ended before its summary (a crash, a timeout) counts the reports it sent.
        """
        if self.summary is not None:
            return dict(self.summary)
        found: Counter[str] = Counter(t.outcome for t in self.tests if t.outcome)
        found["deselected"] += self.deselected
        found["warnings"] += self.warnings
        return ordered_counts(found)


@dataclass
class RunResult:
    cells: list[CellResult]
    config: str = ""
    duration: float = 0.0
    host: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def exit_code(self) -> ExitCode:
        return aggregate_exit_code(self.cells, interrupted=self.interrupted)

    def totals(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for cell in self.cells:
            total.update(cell.counts())
        return ordered_counts(total)


#: the JSON types a results file may hold for each annotation of the dataclasses above
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "CellStatus": (str,),
    "EnvState": (str,),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
    "None": (type(None),),
    "dict": (dict,),
    "list": (list,),
}


def json_field_types(
    cls: type[RunResult] | type[CellResult] | type[TestResult],
) -> dict[str, tuple[type, ...]]:
    """Field -> the JSON types its value may have in a results file, from the dataclass.

    The dataclasses are the one description of a results file: ``from_json`` reads their
    fields, merge checks their types with this, and a test holds the JSON schema to them.
    """
    found: dict[str, tuple[type, ...]] = {}
    for name, spec in cls.__dataclass_fields__.items():
        types: list[type] = []
        for part in str(spec.type).split("|"):
            types.extend(_JSON_TYPES[part.strip().split("[")[0]])
        found[name] = tuple(types)
    return found


def ordered_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """The non-zero counts in pytest's order: its known categories, then the others."""
    order = [*KNOWN_TYPES, *(k for k in counts if k not in KNOWN_TYPES)]
    return {k: counts[k] for k in order if counts.get(k)}


def count_text(counts: Mapping[str, int]) -> str:
    """ "3 passed, 1 error, 2 warnings": pytest's words for its summary line."""
    return ", ".join(f"{n} {_plural(k, n)}" for k, n in counts.items() if n)


def _plural(category: str, n: int) -> str:
    if n != 1 and category in ("error", "warning"):
        return category + "s"
    if n == 1 and category == "warnings":
        return "warning"
    return category


def aggregate_exit_code(cells: list[CellResult], *, interrupted: bool = False) -> ExitCode:
    """pytest's meanings across cells.

    Interrupted is 2; when every cell that ran ended with the same usage (4), internal (3)
    or no-tests (5) code, that code (pytest's own answer, given in each cell); any other
    failure is 1.
    """
    if interrupted:
        return ExitCode.INTERRUPTED
    ran = [c for c in cells if c.status != CellStatus.NOT_RUN]
    codes = {c.exit_code for c in ran}
    if ran and len(codes) == 1 and all(not c.tests for c in ran):
        (code,) = codes
        if code in (ExitCode.INTERNAL_ERROR, ExitCode.USAGE_ERROR):
            return ExitCode(code)
    if any(c.status in BAD_STATUSES for c in cells):
        return ExitCode.TESTS_FAILED
    if ran and all(c.status == CellStatus.NO_TESTS for c in ran):
        return ExitCode.NO_TESTS_COLLECTED
    return ExitCode.OK


def to_json(run: RunResult) -> dict[str, Any]:
    from . import __version__

    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "tool": f"pytest-condamatrix {__version__}",
        "config": run.config,
        "duration": round(run.duration, 3),
        "exit_code": int(run.exit_code),
        "interrupted": run.interrupted,
        "host": run.host,
        "totals": run.totals(),
        "cells": [_cell_json(cell) for cell in run.cells],
    }


def _cell_json(cell: CellResult) -> dict[str, Any]:
    # field by field: dataclasses.asdict deep-copies every value, 15 us a test
    data: dict[str, Any] = {}
    for name in _CELL_FIELD_NAMES:
        value = getattr(cell, name)
        data[name] = list(value) if isinstance(value, list) else value
    data["tests"] = [{n: getattr(t, n) for n in _TEST_FIELD_NAMES} for t in cell.tests]
    data["duration"] = round(cell.duration, 3)
    data["counts"] = cell.counts()
    return data


def write_json(run: RunResult, path: Path) -> None:
    """One line of JSON: json's C encoder writes no indented text (30k tests: 0.1 s, not
    0.4 s); ``python -m json.tool`` or ``jq .`` shows it indented."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(to_json(run)) + "\n")


_CELL_FIELD_NAMES = tuple(f.name for f in fields(CellResult) if f.name != "tests")
_TEST_FIELD_NAMES = tuple(f.name for f in fields(TestResult))


def from_json(data: Any, *, source: str = "results") -> RunResult:
    """Rebuild a run from :func:`to_json` output; anything else is a :class:`ResultsError`."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ResultsError(f"{source}: not a pytest-condamatrix results file")
    if data.get("version") != SCHEMA_VERSION:
        raise ResultsError(
            f"{source}: results schema version {data.get('version')!r} is not supported "
            f"(this tool reads version {SCHEMA_VERSION})",
            hint="produce all results files with the same pytest-condamatrix version",
        )
    try:
        cells = []
        for raw in data["cells"]:
            fields = {k: v for k, v in raw.items() if k in CellResult.__dataclass_fields__}
            fields["status"] = CellStatus(raw["status"])
            fields["env_status"] = EnvState(raw.get("env_status", ""))
            fields["tests"] = [
                TestResult(**{k: v for k, v in t.items() if k in TestResult.__dataclass_fields__})
                for t in raw.get("tests", [])
            ]
            cells.append(CellResult(**fields))
        return RunResult(
            cells=cells,
            config=str(data.get("config", "")),
            duration=float(data.get("duration", 0.0)),
            host=dict(data.get("host", {})),
            interrupted=bool(data.get("interrupted", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"{source}: malformed results ({exc})") from None
