"""Shared fixtures: a real local conda channel and env caches kept outside the clone.

The channel (and a warm env cache) live under ``$CONDAMATRIX_TEST_CACHE``, else the user
cache folder, so that repeated runs, locally and in CI, reuse what is already built: both
are keyed by content, so a change to an input builds anew instead of reusing a stale copy.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Protocol

import platformdirs
import pytest

from pytest_condamatrix.localchannel import LocalChannel, build_local_channel

PYTHONS = ("3.9", "3.11", "3.12")
#: the `condamatrix` command, as the tests start it (the installed script may be another
#: checkout's)
CONDAMATRIX = [sys.executable, "-m", "pytest_condamatrix.cli.main"]


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here rather than in tests/reliability/conftest.py so that `pytest --stress` from the
    # project root (testpaths) accepts it too.
    parser.addoption(
        "--stress",
        action="store_true",
        default=False,
        help="scale the reliability scenarios up (more processes, kills, cases)",
    )


def test_cache_root() -> Path:
    explicit = os.environ.get("CONDAMATRIX_TEST_CACHE")
    if explicit:
        return Path(explicit).resolve()
    return Path(platformdirs.user_cache_dir("pytest-condamatrix", appauthor=False)) / "tests"


test_cache_root.__test__ = False  # type: ignore[attr-defined]  # pytest's opt-out, unknown to a function's type


@pytest.fixture(scope="session")
def local_channel() -> LocalChannel:
    # Where `condamatrix demo --cache-dir <test cache root>` builds its channel: shared.
    channel = build_local_channel(test_cache_root() / "channels" / "local", PYTHONS)
    if not channel.pythons:
        pytest.skip(f"no CPython {', '.join(PYTHONS)} on this machine to build a channel from")
    return channel


@pytest.fixture(scope="session")
def warm_cache(local_channel: LocalChannel) -> Path:
    """An env cache shared by the tests that only read envs (kept between test runs)."""
    return test_cache_root()


class MakeProject(Protocol):
    """The :func:`matrix_project` fixture: writes a project, returns its folder."""

    def __call__(
        self,
        *,
        python: tuple[str, ...] = ...,
        tests: str = ...,
        extra: str = ...,
        dependencies: tuple[str, ...] = ...,
    ) -> Path: ...


@pytest.fixture
def matrix_project(pytester: pytest.Pytester, local_channel: LocalChannel) -> MakeProject:
    """Write a project whose matrix uses the local channel; returns its folder."""

    def make(
        *,
        python: tuple[str, ...] = ("3.12",),
        tests: str = "def test_ok():\n    assert True\n",
        extra: str = "",
        dependencies: tuple[str, ...] = ("pytest",),
    ) -> Path:
        missing = [p for p in python if p not in local_channel.pythons]
        if missing:
            pytest.skip(f"Python {', '.join(missing)} is not on this machine")
        pytester.makepyprojecttoml(
            textwrap.dedent(
                f"""
                [tool.condamatrix]
                python = {list(python)!r}
                channels = [{str(local_channel.path)!r}]
                dependencies = {list(dependencies)!r}
                """
            )
            + textwrap.dedent(extra)
        )
        pytester.makepyfile(test_things=tests)
        return pytester.path

    return make


class RunMatrix(Protocol):
    """The :func:`run_matrix` fixture: pytest's result and the ``--conda-matrix-json`` data."""

    def __call__(
        self, cache: Path, *args: str, timeout: float = ...
    ) -> tuple[pytest.RunResult, dict[str, Any]]: ...


def run_matrix_in(
    pytester: pytest.Pytester, cache: Path, *args: str, timeout: float = 300
) -> tuple[pytest.RunResult, Path]:
    """Run ``pytest --conda-matrix`` in the pytester project as a user would (a subprocess);
    returns pytest's result and the path given to ``--conda-matrix-json``."""
    out = pytester.path / f"results-{time.monotonic_ns()}.json"
    result = pytester.runpytest_subprocess(
        "--conda-matrix",
        "--conda-matrix-cache-dir",
        str(cache),
        "--conda-matrix-json",
        str(out),
        "-p",
        "no:cacheprovider",
        *args,
        timeout=timeout,
    )
    assert "Traceback" not in result.stderr.str(), result.stderr.str()
    return result, out


@pytest.fixture
def run_matrix(pytester: pytest.Pytester) -> RunMatrix:
    """:func:`run_matrix_in` for the pytester project; returns pytest's result and the
    ``--conda-matrix-json`` data ({} when none was written)."""

    def run(
        cache: Path, *args: str, timeout: float = 300
    ) -> tuple[pytest.RunResult, dict[str, Any]]:
        result, out = run_matrix_in(pytester, cache, *args, timeout=timeout)
        return result, json.loads(out.read_text()) if out.exists() else {}

    return run
