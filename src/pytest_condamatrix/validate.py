"""Checks of command-line values and merged results that the option parsers call.

Each check takes the raw value and the option (or file) it came from, and either returns the
value to use or raises a :class:`~.errors.UsageError` / :class:`~.errors.ResultsError` that
names them: no traceback for bad input, and no value that would make the run allocate or
wait without bound.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ResultsError, UsageError
from .results import CellStatus, EnvState

#: the most cells run at once (and GPU slots); more would only allocate threads and pipes
MAX_JOBS = 1024
#: how deep a results file may nest (ours nest 4 levels; json's parser recurses per level)
MAX_JSON_DEPTH = 32
#: every status a cell of a results file may have; anything else is not ours
CELL_STATUSES = tuple(s.value for s in CellStatus)
#: what may have become of a cell's env ("" or left out: the cell never got that far)
ENV_STATES = tuple(s.value for s in EnvState)
_WHOLE = re.compile(r"[0-9]{1,7}")  # ASCII digits: int() also takes full-width ones and "1_0"


def check_jobs(value: str | int, option: str, *, maximum: int = MAX_JOBS) -> int:
    """A count of parallel cells (``--conda-matrix-jobs``, ``--conda-matrix-gpu-jobs``)."""
    text = str(value).strip()
    if not _WHOLE.fullmatch(text) or not 1 <= int(text) <= maximum:
        raise UsageError(
            f"{option} {_short(text)}: give a positive whole number of cells, at most {maximum}",
            hint=f"use e.g. {option} 4",
        )
    return int(text)


def check_path(value: str, option: str) -> Path:
    """A path option (``--conda-matrix-json=``, ``-cache-dir=``, ``-channel=``): not empty."""
    if not value.strip():
        raise UsageError(
            f"{option}: the path is empty",
            hint=f"give a path ({option}=PATH), or leave the option out",
        )
    if "\0" in value:
        raise UsageError(f"{option}: the path holds a NUL character")
    return Path(value)


def check_distinct_outputs(outputs: Mapping[str, str | os.PathLike[str] | None]) -> None:
    """Two report options (JSON, JUnit, Markdown) must not name one file: one would be lost."""
    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if path is None or not str(path):
            continue
        real = os.path.realpath(path)
        if real in seen:
            raise UsageError(
                f"{seen[real]} and {option} both write {path}",
                hint="give each report a path of its own",
            )
        seen[real] = option


def check_days(text: str, option: str) -> float:
    """A number of days (``cache prune --older-than``): finite and not negative."""
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days < 0 or not text.strip().isascii():
        raise UsageError(
            f"{option}: {_short(text)!r} is not a number of days", hint=f"use e.g. {option} 30"
        )
    return days


def load_results_json(text: str, source: str) -> Any:
    """Parse a results file as strict JSON: no NaN or Infinity, bounded nesting."""

    def refuse(name: str) -> Any:
        raise ResultsError(f"{source}: not strict JSON ({name} is not a JSON number)")

    depth = _max_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ResultsError(f"{source}: nested {depth} levels deep; results files nest 4")
    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError as exc:
        raise ResultsError(
            f"{source}: not a pytest-condamatrix results file (not JSON: {exc})"
        ) from None
    except RecursionError:
        raise ResultsError(f"{source}: nested too deeply for a results file") from None


def check_merged_cell(raw: Mapping[str, Any], where: str) -> None:
    """A cell of a results file: a known status, and counts and times that can be."""
    status = raw.get("status")
    if status not in CELL_STATUSES:
        raise ResultsError(
            f"{where}: unknown status {_short(str(status))!r} (known: {', '.join(CELL_STATUSES)})"
        )
    env_status = raw.get("env_status", "")
    if env_status not in ENV_STATES:  # said here, not as EnvState's own ValueError
        raise ResultsError(
            f"{where}: unknown env_status {_short(str(env_status))!r} "
            f"(known: {', '.join(s for s in ENV_STATES if s)}, or none)"
        )
    for name in ("collected", "deselected", "warnings"):
        value = raw.get(name)
        if isinstance(value, int) and value < 0:
            raise ResultsError(f"{where}.{name}: {value} is negative")
    for name in ("build_seconds", "test_seconds"):
        check_duration(raw.get(name), f"{where}.{name}")
    counts = raw.get("counts")
    if isinstance(counts, Mapping):
        for outcome, count in counts.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ResultsError(f"{where}.counts.{_short(str(outcome))}: not a count")


def check_duration(value: object, where: str) -> None:
    """A number of seconds, if one is given: finite and not negative."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return  # another type: the field checks say so
    if not (math.isfinite(value) and value >= 0):
        raise ResultsError(f"{where}: {_short(str(value))} is not a duration")


def _max_depth(text: str) -> int:
    """How deep the brackets of a JSON text nest (strings left out), without parsing it."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: the longest string a configuration value may be (a spec, a path, a pip requirement)
MAX_TEXT = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text_problem(text: str) -> str:
    """Why a configuration string cannot be used as is ("" when it can)."""
    if len(text) > MAX_TEXT:
        return f"{len(text)} characters is too long (at most {MAX_TEXT})"
    if _CONTROL.search(text):
        return "it holds a control character (a NUL, a newline, an escape, ...)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode (a lone surrogate)"
    return ""


def resolved(path: Path) -> Path:
    """``path`` made absolute, links resolved where the file system lets us."""
    try:
        return path.resolve()
    except (OSError, ValueError, RuntimeError):  # a name too long, a loop of links
        return Path(os.path.abspath(path))  # noqa: PTH100 - resolve() is what failed


def is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long, a NUL: no folder of that name
        return False


def is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def shown(text: str, limit: int = 60) -> str:
    """``repr(text)`` cut to ``limit`` characters: a value in a message, however long."""
    quoted = repr(text[: limit + 1])
    return quoted if len(text) <= limit else quoted[: limit - 4] + "...'"
