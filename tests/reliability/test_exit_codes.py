"""The exit codes that the documentation promises: the table itself, and usage errors.

docs/troubleshooting.md holds the table users read; ``errors.ExitCode`` is what the code
returns. A bad command line is 4 for every command (argparse's own 2 is the code of an
interrupted run).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import CONDAMATRIX
from pytest_condamatrix.errors import ExitCode

DOCS = Path(__file__).parents[2] / "docs"


def documented_codes(page: str) -> dict[int, str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    table = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| (.+) \|$", table, re.M)}


def test_the_troubleshooting_table_lists_every_exit_code() -> None:
    assert set(documented_codes("troubleshooting.md")) == {int(code) for code in ExitCode}
    assert "bad configuration or command line" in documented_codes("troubleshooting.md")[4]


def test_the_ci_table_agrees_with_the_codes() -> None:
    for code, meaning in documented_codes("ci.md").items():
        assert code in {int(c) for c in ExitCode}, (code, meaning)
    assert "bad command line" in documented_codes("ci.md")[4]


def condamatrix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONDAMATRIX, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("cache", "prune", "--older-than", "nan"),
        ("cache", "list", "--stale-days", "x"),
        ("cache", "remove"),
        ("merge",),
        ("gh-matrix", "--format", "nope"),
    ],
)
def test_usage_errors_exit_4(args: tuple[str, ...], tmp_path: Path) -> None:
    result = condamatrix(*args, "--cache-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE_ERROR, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("bogus-command",),
        ("--no-such-option",),
        ("cache",),
    ],
)
def test_top_level_usage_errors_exit_4(args: tuple[str, ...], tmp_path: Path) -> None:
    result = condamatrix(*args, cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE_ERROR, result.stderr
