"""The worker's fast line for a test that passed says what its general path would say."""

from __future__ import annotations

import json

import pytest
from _pytest.reports import TestReport

from pytest_condamatrix import worker


@pytest.mark.parametrize(
    "nodeid",
    ["tests/test_a.py::test_b", 'tests/t.py::test_q[a"b\\\\c]', "t.py::test_é[\n\t\x00]"],
)
def test_the_passed_line_is_the_short_record(nodeid: str) -> None:
    report = TestReport(nodeid, ("t.py", 1, "test"), {}, "passed", None, "call", [], 0.000123)
    line = worker._PASSED_LINE % (worker._quote(nodeid), report.duration)
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert json.loads(line) == {"e": "test", "cat": "passed", "r": worker._short(report)}
