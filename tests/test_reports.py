"""Reports rendered from constructed results: differential view, failures, JUnit, JSON, Markdown."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import cast
from xml.etree import ElementTree

import pytest
from rich.console import Console

from pytest_condamatrix.errors import ExitCode, ResultsError
from pytest_condamatrix.matrix import cell_id
from pytest_condamatrix.report.differential import differences
from pytest_condamatrix.report.failures import group_failures
from pytest_condamatrix.report.junit import split_nodeid, write_junit
from pytest_condamatrix.report.markdown import to_markdown
from pytest_condamatrix.report.terminal import render_run
from pytest_condamatrix.results import (
    CellResult,
    CellStatus,
    EnvState,
    RunResult,
    TestResult,
    aggregate_exit_code,
    from_json,
    to_json,
)

PYTHONS = ("3.9", "3.11", "3.12")
CUDAS = ("cpu", "11.8", "12.1")


def make_run(
    failing: dict[str, set[str]],
    *,
    pythons: tuple[str, ...] = PYTHONS,
    cudas: tuple[str, ...] = CUDAS,
) -> RunResult:
    """A run where test ``t::name`` fails exactly in the cells listed for it."""
    cells = []
    for python in pythons:
        for cuda in cudas:
            cell = cell_id(python, cuda)
            tests = [TestResult(nodeid="t.py::test_ok", outcome="passed", duration=0.01)]
            for name, where in failing.items():
                bad = cell in where
                tests.append(
                    TestResult(
                        nodeid=f"t.py::{name}",
                        outcome="failed" if bad else "passed",
                        message="AssertionError: boom" if bad else "",
                        longrepr="def test():\n>   assert 0\nE   AssertionError: boom"
                        if bad
                        else "",
                    )
                )
            status = (
                CellStatus.FAILED if any(cell in w for w in failing.values()) else CellStatus.PASSED
            )
            cells.append(
                CellResult(
                    cell=cell,
                    python=python,
                    cuda=cuda,
                    status=status,
                    env_status=EnvState.REUSED,
                    tests=tests,
                    exit_code=1 if status == "failed" else 0,
                )
            )
    return RunResult(cells=cells, duration=1.0)


def describe(failing: set[str]) -> str:
    (diff,) = differences(make_run({"test_x": failing}).cells)
    return diff.description


def test_fails_everywhere() -> None:
    every = {c.cell for c in make_run({}).cells}
    assert describe(every) == "fails everywhere"


def test_single_python_axis() -> None:
    assert describe({"py3.9-cpu", "py3.9-cu11.8", "py3.9-cu12.1"}) == "fails only on py3.9"


def test_two_python_values() -> None:
    cells = {f"py{p}-{c}" for p in ("3.9", "3.11") for c in ("cpu", "cu11.8", "cu12.1")}
    assert describe(cells) == "fails only on py3.9, py3.11"


def test_single_cuda_axis() -> None:
    assert describe({"py3.9-cu11.8", "py3.11-cu11.8", "py3.12-cu11.8"}) == "fails only on cu11.8"


def test_interaction_of_two_axes() -> None:
    assert describe({"py3.9-cu11.8"}) == "fails only on py3.9 + cu11.8"


def test_no_axis_explains_it() -> None:
    assert describe({"py3.9-cpu", "py3.12-cu12.1"}) == "fails on py3.9-cpu, py3.12-cu12.1"


def test_passing_tests_have_no_difference() -> None:
    assert differences(make_run({}).cells) == []


def test_cells_that_did_not_run_a_test_do_not_count() -> None:
    run = make_run({"test_x": {"py3.9-cpu"}}, cudas=("cpu",))
    run.cells[1].tests = [t for t in run.cells[1].tests if t.nodeid != "t.py::test_x"]
    (diff,) = differences(run.cells)
    assert diff.ran == ("py3.9-cpu", "py3.12-cpu")
    assert diff.description == "fails only on py3.9"


def test_identical_failures_are_grouped() -> None:
    run = make_run({"test_x": {"py3.9-cpu", "py3.11-cpu"}})
    (group,) = group_failures(run.cells)
    assert group.cells == ("py3.9-cpu", "py3.11-cpu")
    assert group.message == "AssertionError: boom"


def render(run: RunResult) -> str:
    out = io.StringIO()
    render_run(Console(file=out, width=120, force_terminal=False), run)
    return out.getvalue()


def test_terminal_report_shows_failures_once_differences_and_grid() -> None:
    text = render(make_run({"test_x": {"py3.9-cpu", "py3.9-cu11.8", "py3.9-cu12.1"}}))
    assert text.count("AssertionError: boom\n") == 1
    assert "failed on py3.9-cpu, py3.9-cu11.8, py3.9-cu12.1" in text
    assert "t.py::test_x: fails only on py3.9" in text
    assert "python x cuda" in text
    assert "9 cells (3 failed, 6 passed)" in text
    assert "exit code 1" in text


def test_terminal_report_without_failures() -> None:
    text = render(make_run({}, cudas=("cpu",)))
    assert "failures" not in text and "python x cuda" not in text
    assert "3 cells (3 passed); 3 passed" in text


def test_exit_codes_follow_pytest() -> None:
    ok = CellResult(cell="a", python="3.12", cuda="cpu", status=CellStatus.PASSED)
    empty = CellResult(cell="b", python="3.12", cuda="cpu", status=CellStatus.NO_TESTS)
    broken = CellResult(cell="c", python="3.12", cuda="cpu", status=CellStatus.ENV_ERROR)
    skipped = CellResult(cell="d", python="3.12", cuda="12.1", status=CellStatus.NOT_RUN)
    assert aggregate_exit_code([ok, skipped]) == ExitCode.OK
    assert aggregate_exit_code([ok, broken]) == ExitCode.TESTS_FAILED
    assert aggregate_exit_code([empty]) == ExitCode.NO_TESTS_COLLECTED
    assert aggregate_exit_code([ok, empty]) == ExitCode.OK
    assert aggregate_exit_code([ok], interrupted=True) == ExitCode.INTERRUPTED
    # a cell that never finished (a merged job's file written mid-run) is no success
    for status in (CellStatus.PENDING, CellStatus.RUNNING):
        unfinished = CellResult(cell="e", python="3.12", cuda="cpu", status=status)
        assert aggregate_exit_code([ok, unfinished]) == ExitCode.TESTS_FAILED


def test_json_round_trip() -> None:
    run = make_run({"test_x": {"py3.9-cpu"}})
    data = json.loads(json.dumps(to_json(run)))
    assert data["schema"] == "pytest-condamatrix/results" and data["version"] == 2
    assert data["exit_code"] == 1
    again = from_json(data)
    assert to_json(again) == to_json(run)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "not a pytest-condamatrix results file"),
        ({"schema": "other"}, "not a pytest-condamatrix results file"),
        ({"schema": "pytest-condamatrix/results", "version": 99}, "version 99 is not supported"),
        ({"schema": "pytest-condamatrix/results", "version": 2, "cells": [{"x": 1}]}, "malformed"),
    ],
)
def test_foreign_json_is_rejected(data: object, message: str) -> None:
    with pytest.raises(ResultsError, match=message):
        from_json(data)


JUNIT_XSD = Path(__file__).parent / "data" / "junit-10.xsd"  # pytest's; see data/README.md


def test_junit_is_valid_and_has_a_suite_per_cell(tmp_path: Path) -> None:
    xmlschema = pytest.importorskip("xmlschema")
    run = make_run({"test_x": {"py3.9-cpu"}}, cudas=("cpu", "12.1"))
    for cell in run.cells:
        cell.tests.append(TestResult(nodeid="t.py::TestK::test_y[1]", outcome="skipped"))
    run.cells.append(
        CellResult(
            cell="py3.13-cpu",
            python="3.13",
            cuda="cpu",
            status=CellStatus.ENV_ERROR,
            message="cannot solve\x01 <bad>",
        )
    )
    path = tmp_path / "junit.xml"
    write_junit(run, path)
    schema = xmlschema.XMLSchema(JUNIT_XSD)
    schema.validate(str(path))  # raises with every error
    root = ElementTree.parse(path).getroot()
    suites = {s.get("name", ""): s for s in root.iter("testsuite")}
    assert list(suites) == [
        "py3.9-cpu",
        "py3.9-cu12.1",
        "py3.11-cpu",
        "py3.11-cu12.1",
        "py3.12-cpu",
        "py3.12-cu12.1",
        "py3.13-cpu",
    ]
    assert suites["py3.9-cpu"].get("failures") == "1"
    assert suites["py3.9-cpu"].get("skipped") == "1"
    assert suites["py3.13-cpu"].get("errors") == "1"
    props = {p.get("name"): p.get("value") for p in suites["py3.9-cpu"].iter("property")}
    assert props["python"] == "3.9" and props["cuda"] == "cpu"
    # Readers that see only classname + name still tell every cell's test apart
    cases = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert len(cases) == len(set(cases)) == 6 * 3 + 1
    assert ("py3.9-cu12.1.t", "test_x") in cases
    assert ("py3.9-cu12.1.t.TestK", "test_y[1]") in cases
    assert ("py3.13-cpu", "environment") in cases
    for name, suite in suites.items():
        assert all(c.get("classname", "").startswith(name) for c in suite.iter("testcase"))


def test_pytests_own_junit_follows_the_same_schema(pytester: pytest.Pytester) -> None:
    """The schema is the one pytest's xunit2 output follows: a check on the check."""
    xmlschema = pytest.importorskip("xmlschema")
    pytester.makepyfile("import pytest\n\ndef test_a(): pass\n\ndef test_b(): pytest.skip('x')\n")
    pytester.runpytest("--junitxml=out.xml", "-o", "junit_family=xunit2")
    xmlschema.XMLSchema(JUNIT_XSD).validate(str(pytester.path / "out.xml"))


def test_junit_names_follow_pytest() -> None:
    assert split_nodeid("tests/test_a.py::TestX::test_y[1]") == ("tests.test_a.TestX", "test_y[1]")
    assert split_nodeid("tests/test_a.py::test_z") == ("tests.test_a", "test_z")


def test_markdown_summary() -> None:
    text = to_markdown(make_run({"test_x": {"py3.9-cu11.8"}}))
    assert text.startswith("## ❌ conda matrix: 9 cells")
    assert "| Python | cpu | cu11.8 | cu12.1 |" in text
    assert "| <code>t.py::test_x</code> | fails only on py3.9 + cu11.8 |" in text
    assert "<details>" in text and "AssertionError: boom" in text


def test_live_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_condamatrix.report.live import LiveProgress, make_reporter, wants_live
    from pytest_condamatrix.report.terminal import ProgressPrinter

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("CI", raising=False)
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True)
    assert wants_live(console)
    reporter = make_reporter(console, ["py3.12-cpu"], verbosity=0)
    assert isinstance(reporter, LiveProgress)
    with reporter:
        reporter.cell_phase("py3.12-cpu", "building")
        reporter.cell_collected("py3.12-cpu", 2)
        reporter.test_done("py3.12-cpu", TestResult(nodeid="t::a", outcome="passed"))
        reporter.test_done("py3.12-cpu", TestResult(nodeid="t::b", outcome="failed"))
        reporter.cell_done(
            CellResult(cell="py3.12-cpu", python="3.12", cuda="cpu", status=CellStatus.FAILED)
        )
    text = out.getvalue()
    assert "2/2" in text and "1 failed" in text and "1/1" in text

    monkeypatch.setenv("CI", "true")
    assert isinstance(make_reporter(console, ["py3.12-cpu"], verbosity=0), ProgressPrinter)
    monkeypatch.delenv("CI")
    # NO_COLOR is about colour: the live display stays, without colour
    monkeypatch.setenv("NO_COLOR", "1")
    colourless = Console(file=io.StringIO(), width=100, force_terminal=True)
    assert wants_live(colourless)
    colourless.print("[red]x[/]")
    assert "\x1b[31m" not in cast(io.StringIO, colourless.file).getvalue()
    plain = Console(file=io.StringIO(), width=100, force_terminal=False)
    monkeypatch.delenv("NO_COLOR")
    assert not wants_live(plain)


RED = "\x1b[31m"


def _rendered(**options: str) -> tuple[str, bool]:
    from pytest_condamatrix.report.live import wants_live
    from pytest_condamatrix.report.terminal import make_console

    out = io.StringIO()  # a pipe, not a terminal
    console = make_console(out, width=80, **options)
    console.print("[red]x[/]")
    return out.getvalue(), wants_live(console)


@pytest.mark.parametrize(
    ("env", "color", "coloured"),
    [
        ({}, None, False),  # a pipe: no colour
        ({"PY_COLORS": "1"}, None, True),
        ({"PY_COLORS": "1"}, "auto", True),
        ({"PY_COLORS": "1"}, "no", False),  # --color wins over the environment
        ({"PY_COLORS": "0", "FORCE_COLOR": "1"}, None, False),
        ({}, "yes", True),
        ({"NO_COLOR": "1"}, "yes", True),
        ({"FORCE_COLOR": "1"}, None, True),  # as before: a forced terminal
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, None, False),
        ({"FORCE_COLOR": "1", "NO_COLOR": ""}, None, True),  # an empty NO_COLOR is ignored
    ],
)
def test_colour_follows_pytest_and_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], color: str | None, coloured: bool
) -> None:
    for name in ("PY_COLORS", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "CI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    text, live = _rendered(**({"color": color} if color else {}))
    assert (RED in text) is coloured, repr(text)
    assert "x" in text
    # colour asked for a pipe makes no live display there (FORCE_COLOR still forces one)
    assert live is bool(env.get("FORCE_COLOR"))


def test_plain_progress_lines_follow_verbosity() -> None:
    from pytest_condamatrix.report.terminal import ProgressPrinter

    def lines(verbosity: int) -> str:
        out = io.StringIO()
        printer = ProgressPrinter(Console(file=out, width=100, force_terminal=False), verbosity)
        printer.cell_phase("py3.9-cpu", "building")
        printer.test_done("py3.9-cpu", TestResult(nodeid="t::a", outcome="passed"))
        printer.test_done("py3.9-cpu", TestResult(nodeid="t::b", outcome="failed"))
        return out.getvalue()

    assert lines(0) == "[py3.9-cpu] building ...\n[py3.9-cpu] t::b FAILED\n"
    assert "t::a PASSED" in lines(1)
    assert lines(-1) == ""


def test_json_follows_the_published_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import pytest_condamatrix

    schema_path = Path(pytest_condamatrix.__file__).parent / "schemas" / "results-v2.schema.json"
    schema = json.loads(schema_path.read_text())
    run = make_run({"test_x": {"py3.9-cpu"}})
    run.cells[0].status = CellStatus.ENV_ERROR
    run.host = {"platform": "linux-64", "glibc": "2.36"}
    jsonschema.validate(json.loads(json.dumps(to_json(run))), schema)
    bad = to_json(run)
    bad["cells"][0]["status"] = "exploded"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_the_schema_the_dataclasses_and_the_enums_say_the_same() -> None:
    """One description of a results file: the JSON schema's statuses are the enums', its
    fields are the dataclasses' (which from_json reads and merge checks), and every status
    has a style in the terminal and an icon in Markdown."""
    import pytest_condamatrix
    from pytest_condamatrix.ci.merge import CELL_FIELDS, TEST_FIELDS
    from pytest_condamatrix.report.markdown import ICONS
    from pytest_condamatrix.report.terminal import STATUS_STYLE
    from pytest_condamatrix.results import CellStatus, EnvState

    schema_path = Path(pytest_condamatrix.__file__).parent / "schemas" / "results-v2.schema.json"
    schema = json.loads(schema_path.read_text())
    cell_schema = schema["$defs"]["cell"]
    assert cell_schema["properties"]["status"]["enum"] == [s.value for s in CellStatus]
    assert cell_schema["properties"]["env_status"]["enum"] == [s.value for s in EnvState]
    assert set(CELL_FIELDS) <= set(cell_schema["properties"])
    test_schema = cell_schema["properties"]["tests"]["items"]
    assert set(TEST_FIELDS) <= set(test_schema["properties"])
    assert set(STATUS_STYLE) == set(CellStatus) and set(ICONS) == set(CellStatus)


def test_markdown_escapes_every_value_and_stays_under_githubs_limit() -> None:
    """A merged results file is another machine's: its values must not become Markdown
    (a heading, a remote image, HTML), lone surrogates must not stop the write, and 1000
    long failures must fit GitHub's 1 MiB step summary, saying what was left out."""
    hostile = "3.9\n# injected heading ![x](https://example.invalid/x.png) <img src=x> \udcff"
    failures = [
        TestResult(nodeid=f"t.py::test_{i}", outcome="failed", message="boom", longrepr="x" * 3000)
        for i in range(1000)
    ]
    cell = CellResult(
        cell="py3.9-cpu", python=hostile, cuda="cpu", status=CellStatus.FAILED, tests=failures
    )
    cell.message = "`code` | pipe <b>bold</b>"
    text = to_markdown(RunResult(cells=[cell]))
    assert "\n# injected" not in text and "![x]" not in text and "<img" not in text
    assert "<b>" not in text
    assert "\ufffd" in text  # the surrogate, replaced
    assert len(text.encode("utf-8")) <= 1_000_000 + 1000
    assert "more failures are not shown" in text


def test_a_huge_failure_message_is_capped_in_the_results() -> None:
    """A 30 MB assertion message must not go whole into JSON and JUnit: the crash message is
    capped as the traceback is."""
    from pytest_condamatrix.run.protocol import MAX_MESSAGE, MAX_TEXT, ReportRelay

    huge = "x" * 3_000_000
    longrepr = {
        "reprcrash": {"path": "t.py", "lineno": 1, "message": huge},
        "reprtraceback": {"reprentries": [], "extraline": None, "style": "long"},
        "sections": [],
        "chain": [
            [
                {"reprentries": [], "extraline": None, "style": "long"},
                {"path": "t.py", "lineno": 1, "message": huge},
                None,
            ]
        ],
    }
    record = {
        "e": "test",
        "cat": "failed",
        "r": {
            "$report_type": "TestReport",
            "nodeid": "t.py::test_big",
            "location": ["t.py", 0, "test_big"],
            "keywords": {},
            "outcome": "failed",
            "longrepr": longrepr,
            "when": "call",
            "sections": [],
            "duration": 0.1,
            "user_properties": [],
        },
    }
    test = ReportRelay().test("py3.12-cpu", record)
    assert test is not None and test.outcome == "failed"
    assert len(test.message) <= MAX_MESSAGE + 20
    assert len(test.longrepr) <= MAX_TEXT + 20
