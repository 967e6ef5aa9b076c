"""Errors a user can act on, and the exit codes they map to.

Every error here is shown as a message, never as a traceback: what is wrong, where
(file, key, value) and how to fix it. One place (:func:`exit_code_for`) maps them to codes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """Exit codes of ``pytest --conda-matrix`` and ``condamatrix``; pytest's where shared."""

    OK = 0
    TESTS_FAILED = 1  # a test failed, a cell crashed or timed out, or an env failed to build
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4  # bad command line or bad configuration
    NO_TESTS_COLLECTED = 5
    ENV_ERROR = 6  # an environment (or channel) could not be built: nothing was tested in it
    CACHE_ERROR = 7  # the cache folder cannot be used (unwritable, full disk)
    RESULTS_ERROR = 8  # a results file to merge is not ours, or unreadable


class CondaMatrixError(Exception):
    """Base of errors that end a run with a message instead of a traceback."""

    exit_code: ExitCode = ExitCode.INTERNAL_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(CondaMatrixError):
    """A bad command-line value."""

    exit_code = ExitCode.USAGE_ERROR


class ConfigError(CondaMatrixError):
    """A bad configuration value; names the file, the key and the value."""

    exit_code = ExitCode.USAGE_ERROR

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if file is not None:
            where = f"{file}"
            if key:
                where += f": {key}"
            where += ": "
        elif key:
            where = f"{key}: "
        super().__init__(where + message, hint=hint)
        self.file = file
        self.key = key


class EnvBuildError(CondaMatrixError):
    """A cell's environment could not be solved or installed."""

    exit_code = ExitCode.ENV_ERROR


class CacheError(CondaMatrixError):
    """The cache folder cannot be created, locked or written."""

    exit_code = ExitCode.CACHE_ERROR


class ResultsError(CondaMatrixError):
    """A results file is malformed, of another schema, or not written by us."""

    exit_code = ExitCode.RESULTS_ERROR


class InstallError(CondaMatrixError):
    """The project under test could not be built or installed into a cell's overlay."""

    exit_code = ExitCode.ENV_ERROR


def exit_code_for(action: Callable[[], int], *, error_prefix: str, interrupted: str) -> int:
    """Run ``action``: its exit code, or, when it ends with one of our errors or Ctrl-C, that
    error's code after its message on stderr (``condamatrix`` and ``pytest --conda-matrix``
    word the message each their own way; the codes are the same)."""
    try:
        return action()
    except CondaMatrixError as exc:
        sys.stderr.write(f"{error_prefix}{exc}\n")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write(f"{interrupted}\n")
        return int(ExitCode.INTERRUPTED)
