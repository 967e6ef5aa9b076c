"""The checks the command line and ``condamatrix merge`` give their values to: hostile
values are a usage or results error naming the option or file, never a traceback, and never
a value that makes the run allocate without bound.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_condamatrix import validate
from pytest_condamatrix.errors import ResultsError, UsageError

from .conftest import Figures

JOBS_BAD = [
    "0",
    "-2",
    "two",
    "100000000",
    "9223372036854775807",
    "9" * 5000,
    "",
    " ",
    "1.5",
    "\uff14",
    "1_0",
    "0x10",
    "nan",
    "inf",
    "1e3",
    "+",
    "\x00",
    "\ud800",
    "4 4",
    "1025",
]
PATHS_BAD = ["", " ", "\t", "\x00", "a\x00b"]
DAYS_BAD = ["nan", "NaN", "inf", "-inf", "-1", "", "x", "1e400", "\uff13\uff10", "--1"]


@pytest.mark.parametrize("value", JOBS_BAD)
def test_bad_job_counts_are_usage_errors(value: str) -> None:
    with pytest.raises(UsageError, match="--conda-matrix-jobs") as info:
        validate.check_jobs(value, "--conda-matrix-jobs")
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(("value", "expected"), [("1", 1), (" 8 ", 8), ("1024", 1024), (3, 3)])
def test_good_job_counts(value: str | int, expected: int) -> None:
    assert validate.check_jobs(value, "--conda-matrix-jobs") == expected


@pytest.mark.parametrize("option", ["--conda-matrix-json", "--conda-matrix-cache-dir"])
@pytest.mark.parametrize("value", PATHS_BAD)
def test_empty_path_options_are_usage_errors(option: str, value: str) -> None:
    with pytest.raises(UsageError, match=option):
        validate.check_path(value, option)


def test_one_file_for_two_reports_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "out.xml"
    with pytest.raises(UsageError, match="--junitxml and --conda-matrix-json both write"):
        validate.check_distinct_outputs(
            {"--junitxml": out, "--conda-matrix-json": tmp_path / "." / "out.xml"}
        )
    (tmp_path / "link.json").symlink_to(out)
    with pytest.raises(UsageError, match="both write"):
        validate.check_distinct_outputs(
            {"--junitxml": out, "--conda-matrix-json": tmp_path / "link.json"}
        )
    validate.check_distinct_outputs({"--junitxml": out, "--conda-matrix-json": None, "x": ""})


@pytest.mark.parametrize("value", DAYS_BAD)
def test_bad_day_counts_are_usage_errors(value: str) -> None:
    with pytest.raises(UsageError, match="--older-than"):
        validate.check_days(value, "--older-than")


RESULTS_BAD = [
    ('{"cells": [{"build_seconds": NaN}]}', "NaN is not a JSON number"),
    ('{"cells": [{"build_seconds": Infinity}]}', "Infinity is not a JSON number"),
    ('{"cells": [{"build_seconds": -Infinity}]}', "-Infinity is not a JSON number"),
    ("[" * 100_000 + "]" * 100_000, "nested 100000 levels deep"),
    ('{"a": ' * 50 + "1" + "}" * 50, "nested 50 levels deep"),
    ("{", "not JSON"),
    ('{"a": "\\ud800"', "not JSON"),
]


@pytest.mark.parametrize(("text", "words"), RESULTS_BAD)
def test_results_json_is_strict_and_shallow(text: str, words: str) -> None:
    with pytest.raises(ResultsError, match=r"shard\.json") as info:
        validate.load_results_json(text, "shard.json")
    assert words in str(info.value)


def test_a_results_string_that_looks_deep_is_not() -> None:
    data = validate.load_results_json(json.dumps({"id": "[" * 1000}), "shard.json")
    assert data == {"id": "[" * 1000}


CELLS_BAD: list[tuple[dict[str, Any], str]] = [
    ({"status": "passed-ish"}, "unknown status 'passed-ish'"),
    ({"status": "[bold]x[/]"}, "unknown status"),
    ({"status": None}, "unknown status"),
    ({"status": "x" * 10_000}, "unknown status"),
    ({"status": "passed", "collected": -1}, "collected: -1 is negative"),
    ({"status": "passed", "build_seconds": -5}, "build_seconds: -5 is not a duration"),
    ({"status": "passed", "test_seconds": float("nan")}, "test_seconds: nan"),
    ({"status": "passed", "test_seconds": float("inf")}, "test_seconds: inf"),
    ({"status": "passed", "counts": {"passed": -3}}, "counts.passed: not a count"),
    ({"status": "passed", "counts": {"passed": 1.5}}, "counts.passed: not a count"),
    ({"status": "passed", "counts": {"passed": True}}, "counts.passed: not a count"),
]


@pytest.mark.parametrize(("cell", "words"), CELLS_BAD)
def test_merged_cells_with_impossible_values_are_refused(cell: dict[str, Any], words: str) -> None:
    with pytest.raises(ResultsError, match=r"shard\.json: cells\[0\]") as info:
        validate.check_merged_cell(cell, "shard.json: cells[0]")
    assert words in str(info.value)
    assert len(str(info.value)) < 400


def test_figures(figures: Figures) -> None:
    cases = (
        len(JOBS_BAD) + 2 * len(PATHS_BAD) + 2 + len(DAYS_BAD) + len(RESULTS_BAD) + len(CELLS_BAD)
    )
    figures.record("hostile input", option_and_results_cases=cases)
