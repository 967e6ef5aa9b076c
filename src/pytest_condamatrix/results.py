"""Results of a matrix run: per test, per cell, per run; versioned JSON (de)serialisation."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ExitCode, ResultsError

SCHEMA = "pytest-condamatrix/results"
SCHEMA_VERSION = 1

#: test outcomes, in the order reports show them
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
#: cell statuses that mean the cell's tests did not all pass
BAD_STATUSES = ("failed", "env-error", "crashed", "timeout", "error", "interrupted")


@dataclass
class TestResult:
    __test__ = False  # not a test class, despite its name

    nodeid: str
    outcome: str
    duration: float = 0.0
    when: str = "call"
    message: str = ""
    longrepr: str = ""


@dataclass
class CellResult:
    """One cell: its env, how its pytest ended, and its tests."""

    cell: str
    python: str
    cuda: str
    status: str = "pending"  # passed, failed, no-tests, env-error, crashed, timeout, error, ...
    message: str = ""  # why the status is what it is, when that needs saying
    env_status: str = ""  # built, reused, failed
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
    log: str = ""
    tests: list[TestResult] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.build_seconds + self.test_seconds

    def counts(self) -> dict[str, int]:
        found = Counter(t.outcome for t in self.tests)
        return {outcome: found.get(outcome, 0) for outcome in OUTCOMES}


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
        return {outcome: total.get(outcome, 0) for outcome in OUTCOMES}


def aggregate_exit_code(cells: list[CellResult], *, interrupted: bool = False) -> ExitCode:
    """pytest's meanings across cells: any failure is 1; all cells without tests is 5."""
    if interrupted:
        return ExitCode.INTERRUPTED
    if any(c.status in BAD_STATUSES for c in cells):
        return ExitCode.TESTS_FAILED
    ran = [c for c in cells if c.status != "not-run"]
    if ran and all(c.status == "no-tests" for c in ran):
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
        "cells": [
            {**asdict(cell), "duration": round(cell.duration, 3), "counts": cell.counts()}
            for cell in run.cells
        ],
    }


def write_json(run: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(to_json(run), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


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
            fields["tests"] = [TestResult(**t) for t in raw.get("tests", [])]
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
