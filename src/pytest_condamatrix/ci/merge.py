"""``condamatrix merge``: per-job results files (``--conda-matrix-json``) into one report.

In CI each job runs one cell; this rebuilds the single run they stand for, and writes the
same reports as one ``pytest --conda-matrix`` would: terminal, JUnit, Markdown (also to
``$GITHUB_STEP_SUMMARY``), JSON, and its exit code.

Results files come from artifacts, i.e. from other machines: they are checked field by
field, and nothing in them decides where anything is written (only the command line does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import validate
from ..errors import ResultsError, UsageError
from ..matrix import SAFE_ID, parse_cell_id
from ..results import (
    SCHEMA,
    SCHEMA_VERSION,
    CellResult,
    CellStatus,
    RunResult,
    TestResult,
    from_json,
    json_field_types,
)

MAX_FILE_BYTES = 256 * 1024 * 1024
MISSING_MESSAGE = (
    "no results file: the job of this cell ended before writing one (a setup step failed, "
    "or it was cancelled); see that job's log"
)

RUN_FIELDS = {k: v for k, v in json_field_types(RunResult).items() if k != "cells"}
CELL_FIELDS = json_field_types(CellResult)
REQUIRED_CELL_FIELDS = ("cell", "python", "cuda", "status")
STR_CELL_FIELDS = tuple(name for name, types in CELL_FIELDS.items() if types == (str,))
TEST_FIELDS = json_field_types(TestResult)
STR_TEST_FIELDS = tuple(name for name, types in TEST_FIELDS.items() if types == (str,))
#: C0 controls but tab and newline, DEL and C1 controls: a file could move the cursor,
#: retitle the terminal or hide lines of the log with them
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Shard:
    """One results file and the run it holds."""

    path: Path
    run: RunResult


def load_shard(path: Path) -> Shard:
    """Read and check one results file; anything unexpected is a :class:`ResultsError`."""
    hint = "give files written by pytest --conda-matrix --conda-matrix-json"
    if not path.exists():
        raise ResultsError(
            f"{path}: no such file",
            hint="check the path; a shell glob that matches nothing is passed on as it is",
        )
    if not path.is_file():
        raise ResultsError(f"{path}: not a file", hint=hint)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ResultsError(f"{path}: {size} bytes is too large for a results file", hint=hint)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read it: {exc}", hint=hint) from None
    source = str(path)
    data = validate.load_results_json(text, source)  # strict: no NaN, bounded nesting
    ours = isinstance(data, dict) and data.get("schema") == SCHEMA
    if ours and data.get("version") == SCHEMA_VERSION:
        _check_run(data, source)
        _check_cells(data, source)
    # from_json says what is wrong with a file of another tool or schema version
    run = from_json(data, source=source)
    _neutralise(run)
    return Shard(path=path, run=run)


def _neutralise(run: RunResult) -> None:
    """Drop control characters (terminal escapes) from the text that reports will show."""
    for cell in run.cells:
        for name in STR_CELL_FIELDS:
            setattr(cell, name, _clean(getattr(cell, name)))
        if cell.summary is not None:  # its categories become column names
            cell.summary = {_clean(k): v for k, v in cell.summary.items()}
        for test in cell.tests:
            for name in STR_TEST_FIELDS:
                setattr(test, name, _clean(getattr(test, name)))


def _clean(text: str) -> str:
    return CONTROL.sub("\ufffd", text.replace("\r\n", "\n"))


def _check_run(data: dict[str, Any], source: str) -> None:
    """The run's own fields: ``"interrupted": "false"`` must not be read as true."""
    _check_fields(data, RUN_FIELDS, source)
    host = data.get("host") or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in host.items()):
        raise ResultsError(f"{source}.host: malformed results (not all strings)")
    validate.check_duration(data.get("duration"), f"{source}.duration")


def _check_cells(data: dict[str, Any], source: str) -> None:
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise ResultsError(f"{source}: malformed results ('cells' is not a list)")
    for i, raw in enumerate(cells):
        where = f"{source}: cells[{i}]"
        if not isinstance(raw, dict):
            raise ResultsError(f"{where}: malformed results (not an object)")
        for name in REQUIRED_CELL_FIELDS:
            if name not in raw:
                raise ResultsError(f"{where}: malformed results (no {name!r})")
        _check_fields(raw, CELL_FIELDS, where)
        validate.check_merged_cell(raw, where)
        if not SAFE_ID.match(raw["cell"]):
            raise ResultsError(f"{where}: {raw['cell']!r} is not a cell id")
        for name in ("channels", "specs", "packages", "collected_ids"):
            if not all(isinstance(p, str) for p in raw.get(name) or []):
                raise ResultsError(f"{where}.{name}: malformed results (not all strings)")
        summary = raw.get("summary") or {}
        if not all(isinstance(k, str) and type(v) is int and v >= 0 for k, v in summary.items()):
            raise ResultsError(
                f"{where}.summary: malformed results (counts must be whole numbers >= 0)"
            )
        for j, test in enumerate(raw.get("tests", [])):
            test_where = f"{where}.tests[{j}]"
            if not isinstance(test, dict):
                raise ResultsError(f"{test_where}: malformed results (not an object)")
            _check_fields(test, TEST_FIELDS, test_where)
            for name in ("nodeid", "outcome"):
                if not test.get(name):
                    raise ResultsError(f"{test_where}: malformed results (no {name!r})")
            validate.check_duration(test.get("duration"), f"{test_where}.duration")


def _check_fields(raw: dict[str, Any], fields: dict[str, tuple[type, ...]], where: str) -> None:
    for name, types in fields.items():
        if name not in raw:
            continue
        value = raw[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ResultsError(
                f"{where}.{name}: malformed results ({type(value).__name__} where "
                f"{' or '.join(t.__name__ for t in types)} was expected)"
            )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _cell_order(cell: CellResult) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    # Shards arrive in file-name order (py3.12 before py3.9): order by version instead,
    # Python first, CPU before CUDA, as the axes of a configuration usually are.
    cuda = () if cell.cuda == "cpu" else (1, *_version_key(cell.cuda))
    return _version_key(cell.python), cuda, cell.cell


def missing_cell(cell: str) -> CellResult:
    axes = parse_cell_id(cell)
    if axes is None:
        raise UsageError(
            f"--expect {cell!r} is not a cell id",
            hint="cell ids look like py3.12-cpu or py3.11-cu12.1 (see `condamatrix list`)",
        )
    python, cuda = axes
    return CellResult(
        cell=cell, python=python, cuda=cuda, status=CellStatus.ERROR, message=MISSING_MESSAGE
    )


def merge_shards(shards: Sequence[Shard], expect: Sequence[str] = ()) -> RunResult:
    """One run made of the shards' cells; ``expect``ed cells without results count as errors."""
    expected = [missing_cell(c) for c in dict.fromkeys(expect)]
    if not shards and not expected:
        raise UsageError(
            "no results files to merge",
            hint="give the files written by --conda-matrix-json, e.g. results/*.json",
        )
    owner: dict[str, Path] = {}
    cells: list[CellResult] = []
    for shard in shards:
        for cell in shard.run.cells:
            if cell.cell in owner:
                first = owner[cell.cell]
                same = first == shard.path
                where = f"twice in {first}" if same else f"in both {first} and {shard.path}"
                raise ResultsError(
                    f"cell {cell.cell} has results {where}",
                    hint="merge the results of one run only: each cell once (remove stale "
                    "files from earlier runs)",
                )
            owner[cell.cell] = shard.path
            cells.append(cell)
    cells += [cell for cell in expected if cell.cell not in owner]
    cells.sort(key=_cell_order)
    runs = [shard.run for shard in shards]
    return RunResult(
        cells=cells,
        config=_common(run.config for run in runs),
        # the jobs ran side by side: the longest one is the wall time of the matrix
        duration=max((run.duration for run in runs), default=0.0),
        host=_merge_hosts([run.host for run in runs]),
        interrupted=any(run.interrupted for run in runs),
    )


def _common(values: Iterable[str]) -> str:
    unique = list(dict.fromkeys(str(v) for v in values if v))
    return ", ".join(unique)


def _merge_hosts(hosts: Sequence[dict[str, str]]) -> dict[str, str]:
    keys = list(dict.fromkeys(k for host in hosts for k in host))
    return {key: _common(host.get(key, "") for host in hosts) for key in keys}
