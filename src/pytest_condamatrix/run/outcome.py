"""How a cell's pytest ended, and why, when it ended without reporting its tests.

A cell that dies before reporting (a conftest.py that does not import on this Python, no
pytest in the env, a usage error) must say why where the user looks: the cause is taken
from the last meaningful lines of its output, as pytest printed them.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..results import CellResult, CellStatus

#: lines of output kept when nothing more telling is found
TAIL_LINES = 8
#: characters kept of each line (a test may print one line of megabytes)
MAX_LINE = 500
#: characters of output read from the end of a cell's log
TAIL_BYTES = 64 * 1024
NO_PYTEST = re.compile(r"No module named pytest\b")
CONFTEST = re.compile(r"^(ImportError|\w+Error|\w+Exception) while loading conftest '([^']*)'")
PYTEST_ERROR = re.compile(r"^(ERROR:|INTERNALERROR>|E  )\s*(.*)$")
USAGE = re.compile(r"^[\w. -]+: error: (.*)$")  # argparse, as pytest prints a usage error
SEPARATOR = re.compile(r"^[=_-]{3,}")


def classify(
    result: CellResult,
    *,
    timed_out: bool,
    timeout: float | None,
    interrupted: bool,
    log: Path,
) -> None:
    """Set the cell's status and message from how its pytest ended."""
    code = result.exit_code
    finished = result.summary is not None
    if timed_out:
        result.status = CellStatus.TIMEOUT
        result.message = f"killed after the {timeout:g} s timeout"
    elif interrupted:
        result.status = CellStatus.INTERRUPTED
        result.message = "interrupted"
    elif code in (3, 4) and not finished and not result.tests and result.collected is None:
        # pytest's own error before any test (a UsageError in a conftest's configure, an
        # internal error): its words are in the output
        why = cause(log)
        meaning = "usage error" if code == 4 else "internal error"
        result.status = CellStatus.ERROR
        result.message = f"pytest ended with {meaning}" + (f": {why}" if why else "")
    elif code is not None and code >= 0 and result.interpreter and not finished:
        # The worker started but pytest never finished its session: os._exit() or the
        # like. Its exit code (even 0, 1 or 3) then says nothing about the tests.
        result.status = CellStatus.CRASHED
        result.message = (
            f"pytest ended abruptly with exit code {code} before finishing its session "
            "(os._exit() or a crash in a test?)" + _indent(cause(log))
        )
    elif code == 0:
        result.status = CellStatus.PASSED
    elif code == 1 and not result.interpreter:
        # the worker never started: the interpreter or pytest itself failed (no pytest?)
        result.status = CellStatus.ERROR
        result.message = cause(log) or "pytest did not start (exit code 1)"
    elif code == 1:
        result.status = CellStatus.FAILED
        if not result.tests and not result.counts():
            result.message = cause(log)
    elif code == 5:
        result.status = CellStatus.NO_TESTS
        result.message = "no tests collected"
    elif code is not None and code < 0:
        result.status = CellStatus.CRASHED
        result.message = f"pytest was killed by signal {-code}" + _indent(cause(log))
    else:
        meaning = {2: "interrupted", 3: "internal error", 4: "usage error"}.get(
            code if code is not None else -1, f"exit code {code}"
        )
        result.status = CellStatus.ERROR if code in (2, 3, 4) else CellStatus.CRASHED
        why = cause(log)
        result.message = f"pytest ended with {meaning}" + (f": {why}" if why else "")


def cause(log: Path) -> str:
    """The reason a cell's pytest gave for ending early, from the end of its output."""
    try:
        with log.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return cause_from_output(text)


def cause_from_output(text: str) -> str:
    lines = [line.rstrip()[:MAX_LINE] for line in text.splitlines()]
    if any(NO_PYTEST.search(line) for line in lines):
        return (
            "the env has no pytest: add `pytest` to the matrix's dependencies "
            "(or leave add-pytest on, which adds it to every cell that names none)"
        )
    found: list[str] = []
    for line in lines:
        match = CONFTEST.match(line)
        if match:
            found.append(f"{match.group(1)} while loading conftest {match.group(2)}")
            continue
        match = USAGE.match(line)
        if match:
            found.append(match.group(1).strip())
            continue
        match = PYTEST_ERROR.match(line)
        if match and match.group(2).strip() and not match.group(2).startswith("usage:"):
            found.append(match.group(2).strip())
    if found:
        return "\n".join(dict.fromkeys(found[-TAIL_LINES:]))
    raised = _last_exception(lines)
    if raised:
        return raised
    meaningful = [line for line in lines if line.strip() and not SEPARATOR.match(line)]
    return "\n".join(meaningful[-TAIL_LINES:])


def _last_exception(lines: list[str]) -> str:
    """The exception a traceback ended with (the unindented lines after its last frame)."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    if not starts:
        return ""
    after = lines[starts[-1] + 1 :]
    frames = [i for i, line in enumerate(after) if line.startswith(" ")]
    tail = after[frames[-1] + 1 :] if frames else after
    return "\n".join(line for line in tail[:4] if line.strip())


def _indent(text: str) -> str:
    return ("\n" + text) if text else ""


#: what a cell's failure looks like when a file of its env is damaged (a truncated binary,
#: a module that no longer imports)
DAMAGE_SIGNS = re.compile(
    r"Exec format error|bad marshal data|invalid ELF header|cannot open shared object"
    r"|ImportError|ModuleNotFoundError|killed by signal (?:4|7|11)\b"
)


def looks_damaged(result: CellResult) -> bool:
    if result.status not in (CellStatus.CRASHED, CellStatus.ERROR, CellStatus.FAILED):
        return False
    texts = [result.message, *(t.longrepr for t in result.tests if t.longrepr)]
    return any(DAMAGE_SIGNS.search(text) for text in texts[:50])
