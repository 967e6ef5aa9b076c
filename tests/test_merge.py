"""`condamatrix merge`: per-job results files into the report of one run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import MakeProject, run_matrix_in
from pytest_condamatrix.ci.merge import load_shard, merge_shards
from pytest_condamatrix.cli.main import main
from pytest_condamatrix.errors import ExitCode
from pytest_condamatrix.report.differential import differences
from pytest_condamatrix.report.failures import group_failures
from pytest_condamatrix.report.markdown import grid
from pytest_condamatrix.results import (
    CellResult,
    CellStatus,
    RunResult,
    TestResult,
    to_json,
    write_json,
)


def cell(cell_id: str, *outcomes: str, status: str | None = None, **extra: Any) -> CellResult:
    python, _, variant = cell_id.removeprefix("py").partition("-")
    tests = [TestResult(nodeid=f"t.py::test_{i}", outcome=o) for i, o in enumerate(outcomes)]
    if status is None:
        status = "failed" if "failed" in outcomes else "passed"
    return CellResult(
        cell=cell_id,
        python=python,
        cuda="cpu" if variant == "cpu" else variant.removeprefix("cu"),
        status=CellStatus(status),
        tests=tests,
        **extra,
    )


def shard(tmp_path: Path, name: str, *cells: CellResult, **run: Any) -> Path:
    path = tmp_path / "results" / f"{name}.json"
    write_json(RunResult(cells=list(cells), **run), path)
    return path


def merge(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what came before
    code = main(["merge", *(str(a) for a in args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_shards_become_one_run_in_version_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [
        shard(tmp_path, "py3.12-cpu", cell("py3.12-cpu", "passed", "passed"), duration=3.0),
        shard(tmp_path, "py3.9-cpu", cell("py3.9-cpu", "passed", "failed"), duration=5.0),
        shard(tmp_path, "py3.11-cu12.1", cell("py3.11-cu12.1", "passed", "skipped")),
        shard(tmp_path, "py3.11-cpu", cell("py3.11-cpu", "passed", "passed")),
    ]
    run = merge_shards([load_shard(f) for f in sorted(files)])
    assert [c.cell for c in run.cells] == ["py3.9-cpu", "py3.11-cpu", "py3.11-cu12.1", "py3.12-cpu"]
    assert run.totals()["passed"] == 6 and run.totals()["failed"] == 1
    assert run.duration == 5.0  # jobs ran side by side
    assert run.exit_code == ExitCode.TESTS_FAILED

    json_out, junit, md = tmp_path / "m.json", tmp_path / "j.xml", tmp_path / "s.md"
    code, out, _ = merge(
        capsys, *sorted(files), "--json", json_out, "--junit", junit, "--markdown", md
    )
    assert code == 1
    assert "t.py::test_1: fails only on py3.9" in out
    assert "4 cells (1 failed, 3 passed)" in out
    assert "merged 4 results files" in out
    merged = json.loads(json_out.read_text())
    assert [c["cell"] for c in merged["cells"]] == [c.cell for c in run.cells]
    assert merged["exit_code"] == 1
    assert junit.read_text().count("<testsuite ") == 4
    assert "| py3.9 | ❌ failed" in md.read_text()


@pytest.mark.parametrize(
    ("cells", "code"),
    [
        ([cell("py3.12-cpu", "passed"), cell("py3.11-cpu", "skipped")], ExitCode.OK),
        ([cell("py3.12-cpu", status="no-tests"), cell("py3.11-cpu", status="no-tests")], 5),
        ([cell("py3.12-cpu", "passed"), cell("py3.11-cpu", status="env-error")], 1),
        ([cell("py3.12-cpu", "passed"), cell("py3.11-cpu", status="timeout")], 1),
    ],
)
def test_exit_code_is_the_whole_matrix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cells: list[CellResult], code: int
) -> None:
    files = [shard(tmp_path, c.cell, c) for c in cells]
    assert merge(capsys, *files)[0] == code


def test_step_summary_is_appended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, _, _ = merge(capsys, shard(tmp_path, "a", cell("py3.12-cpu", "passed")))
    assert code == 0
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "conda matrix: 1 cells" in text


def test_paths_inside_files_are_never_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = tmp_path / "evil"
    bad = cell(
        "py3.12-cpu",
        "failed",
        env_prefix=str(evil / "prefix"),
        log=str(evil / "log.txt"),
        message="see ../../evil",
    )
    data = to_json(RunResult(cells=[bad], config=str(evil / "pyproject.toml")))
    data["json_path"] = str(evil / "out.json")  # unknown keys are ignored, never followed
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data))
    monkeypatch.chdir(tmp_path)
    code, _, _ = merge(capsys, path, "--junit", "junit.xml")
    assert code == 1
    assert not evil.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "junit.xml"]


def test_terminal_escapes_in_files_are_neutralised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sneaky = cell("py3.12-cpu", "failed", message="\x1b]0;pwned\x07\x1b[2Jgone")
    sneaky.tests[0].longrepr = "line one\r\nE   \x1b[8mhidden\x1b[0m"
    code, out, _ = merge(capsys, shard(tmp_path, "a", sneaky))
    assert code == 1
    assert "\x1b" not in out and "\x07" not in out
    assert "gone" in out and "hidden" in out


def test_expected_cells_without_results_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shard(tmp_path, "a", cell("py3.12-cpu", "passed"))
    code, out, _ = merge(capsys, path, "--expect", "py3.12-cpu", "--expect", "py3.11-cu12.1")
    assert code == 1
    assert "py3.11-cu12.1: no results file" in out
    # every job failed before writing results: the report still names each cell
    code, out, _ = merge(capsys, "--expect", "py3.12-cpu")
    assert code == 1 and "py3.12-cpu: no results file" in out


def _schema(version: int) -> dict[str, Any]:
    data = to_json(RunResult(cells=[cell("py3.12-cpu", "passed")]))
    data["version"] = version
    return data


def _cells(*cells: object) -> dict[str, Any]:
    data = to_json(RunResult(cells=[]))
    data["cells"] = list(cells)
    return data


GOOD_CELL = to_json(RunResult(cells=[cell("py3.12-cpu", "passed")]))["cells"][0]

# (file content, words of the message)
BAD_FILES: list[tuple[str, list[str]]] = [
    ("not json at all", ["not a pytest-condamatrix results file", "not JSON"]),
    ("[1, 2]", ["not a pytest-condamatrix results file"]),
    (json.dumps({"schema": "someone-else", "version": 1}), ["not a pytest-condamatrix"]),
    (json.dumps(_schema(99)), ["schema version 99 is not supported", "same pytest-condamatrix"]),
    (json.dumps(_cells(1)), ["cells[0]", "not an object"]),
    (json.dumps(_cells({"cell": "py3.12-cpu"})), ["cells[0]", "no 'python'"]),
    (json.dumps(_cells({**GOOD_CELL, "python": 3.12})), ["cells[0].python", "float"]),
    (json.dumps(_cells({**GOOD_CELL, "cell": "../x"})), ["'../x' is not a cell id"]),
    (json.dumps(_cells({**GOOD_CELL, "build_seconds": True})), ["build_seconds", "bool"]),
    (json.dumps(_cells({**GOOD_CELL, "tests": [{"nodeid": "x"}]})), ["tests[0]", "outcome"]),
    (json.dumps(_cells({**GOOD_CELL, "tests": ["x"]})), ["tests[0]", "not an object"]),
    (json.dumps(_cells({**GOOD_CELL, "packages": [1]})), ["packages", "not all strings"]),
    (json.dumps(_cells({**GOOD_CELL, "status": "Passed "})), ["cells[0]", "unknown status"]),
    (
        json.dumps(_cells({**GOOD_CELL, "env_status": "BUILT"})),
        ["cells[0]", "unknown env_status 'BUILT'", "known: built, reused, failed"],
    ),
    (json.dumps({**_cells(), "cells": {}}), ["'cells' is not a list"]),
    # the run's own fields: a string "false" is not false
    (json.dumps({**_cells(GOOD_CELL), "interrupted": "false"}), ["interrupted", "str", "bool"]),
    (json.dumps({**_cells(GOOD_CELL), "interrupted": 0}), ["interrupted", "int", "bool"]),
    (json.dumps({**_cells(GOOD_CELL), "duration": -1}), [".duration: -1 is not a duration"]),
    (json.dumps({**_cells(GOOD_CELL), "host": {"os": 1}}), ["host", "not all strings"]),
    (json.dumps({**_cells(GOOD_CELL), "config": ["x"]}), [".config", "list"]),
    (json.dumps(_cells({**GOOD_CELL, "deselected": -2})), ["deselected: -2 is negative"]),
    (json.dumps(_cells({**GOOD_CELL, "warnings": -1})), ["warnings: -1 is negative"]),
    (json.dumps(_cells({**GOOD_CELL, "specs": [["numpy"]]})), ["specs", "not all strings"]),
    (json.dumps(_cells({**GOOD_CELL, "channels": [None]})), ["channels", "not all strings"]),
    (
        json.dumps(
            _cells({**GOOD_CELL, "tests": [{"nodeid": "x", "outcome": "passed", "duration": -3}]})
        ),
        ["tests[0].duration: -3 is not a duration"],
    ),
]


@pytest.mark.parametrize(("content", "words"), BAD_FILES)
def test_bad_files_are_rejected_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, words: list[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, _, err = merge(capsys, path)
    assert code == int(ExitCode.RESULTS_ERROR) == 8
    assert "Traceback" not in err
    assert str(path) in err
    for word in words:
        assert word in err


def test_duplicate_cells_are_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = shard(tmp_path, "one", cell("py3.12-cpu", "passed"))
    second = shard(tmp_path, "two", cell("py3.12-cpu", "failed"))
    code, _, err = merge(capsys, first, second)
    assert code == 8
    assert f"cell py3.12-cpu has results in both {first} and {second}" in err
    assert "stale files" in err
    code, _, err = merge(capsys, first, first)
    assert code == 8 and "twice in" in err


def test_missing_file_folder_and_nothing_to_merge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = merge(capsys, tmp_path / "results" / "*.json")
    assert code == 8 and "no such file" in err and "glob" in err
    code, _, err = merge(capsys, tmp_path)
    assert code == 8 and "not a file" in err
    code, _, err = merge(capsys)
    assert code == ExitCode.USAGE_ERROR and "no results files to merge" in err
    code, _, err = merge(capsys, "--expect", "python3.12")
    assert code == ExitCode.USAGE_ERROR and "'python3.12' is not a cell id" in err


# -- the real thing: shards of a real matrix merge into the single run's report -------------


def _run(pytester: pytest.Pytester, cache: Path, code: int, *args: str) -> Path:
    result, out = run_matrix_in(pytester, cache, *args)
    assert result.ret == code, result.stdout.str()
    return out


@pytest.mark.integration
def test_merged_shards_equal_the_single_run(
    pytester: pytest.Pytester,
    matrix_project: MakeProject,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    matrix_project(
        python=("3.11", "3.12"),
        tests="""
import sys, pytest
def test_new_syntax():
    assert sys.version_info >= (3, 12), "needs 3.12"
def test_fine():
    pass
@pytest.mark.skip(reason="never")
def test_skipped():
    pass
""",
    )
    cache = tmp_path / "cache"  # its own: runs elsewhere cannot change these envs meanwhile
    single = _run(pytester, cache, 1)
    shards = [
        _run(pytester, cache, 0, "--conda-matrix-select", "py3.12-*"),
        _run(pytester, cache, 1, "--conda-matrix-select", "*3.11*"),
    ]

    whole = load_shard(single).run
    merged = merge_shards([load_shard(s) for s in shards])

    def outcomes(run: RunResult) -> dict[str, dict[str, str]]:
        return {c.cell: {t.nodeid: t.outcome for t in c.tests} for c in run.cells}

    assert [c.cell for c in merged.cells] == [c.cell for c in whole.cells]
    assert (
        [c.status for c in merged.cells]
        == [c.status for c in whole.cells]
        == [
            "failed",
            "passed",
        ]
    )
    assert outcomes(merged) == outcomes(whole)
    assert (
        merged.totals()
        == whole.totals()
        == {**dict.fromkeys(whole.totals(), 0), **{"passed": 3, "failed": 1, "skipped": 2}}
    )
    assert merged.exit_code == whole.exit_code == ExitCode.TESTS_FAILED
    assert grid(merged) == grid(whole)
    assert differences(merged.cells) == differences(whole.cells)
    assert [(g.nodeid, g.cells) for g in group_failures(merged.cells)] == [
        (g.nodeid, g.cells) for g in group_failures(whole.cells)
    ]

    # and through the command, with the rows of the terminal table
    code, out, _ = merge(capsys, *shards, "--junit", pytester.path / "junit.xml")
    assert code == 1
    rows = [line.split() for line in out.splitlines() if line.startswith("│ py3.")]
    assert [(r[1], r[-2]) for r in rows] == [("py3.11-cpu", "failed"), ("py3.12-cpu", "passed")]
    assert "test_things.py::test_new_syntax: fails only on py3.11" in out
    assert "2 cells (1 failed, 1 passed); 1 failed, 3 passed, 2 skipped" in out


def test_categories_nobody_knows_in_advance_are_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pytest-rerunfailures' `rerun`, pytest 9's subtests: merged, counted and shown."""
    summary = {"passed": 1, "rerun": 2, "subtests passed": 3}
    reran = cell("py3.12-cpu", "passed", "rerun", "rerun", summary=summary)
    files = [shard(tmp_path, "a", reran), shard(tmp_path, "b", cell("py3.11-cpu", "passed"))]
    code, out, _ = merge(capsys, *files, "--json", tmp_path / "merged.json")
    assert code == 0
    merged = json.loads((tmp_path / "merged.json").read_text())
    by_cell = {c["cell"]: c for c in merged["cells"]}
    assert by_cell["py3.12-cpu"]["counts"] == summary
    assert merged["totals"] == {"passed": 2, "rerun": 2, "subtests passed": 3}
    assert "rerun" in out and "subtests passed" in out
    assert "2 passed, 3 subtests passed, 2 rerun" in out  # pytest's order: known ones first


def test_negative_or_fractional_counts_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = shard(tmp_path, "a", cell("py3.12-cpu", "passed", summary={"passed": -1}))
    code, _, err = merge(capsys, bad)
    assert code == ExitCode.RESULTS_ERROR
    assert "counts.passed: not a count" in err
