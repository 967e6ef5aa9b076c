"""The start order of cells from their last times (pure logic and the cache file)."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_condamatrix.results import CellResult, CellStatus, RunResult
from pytest_condamatrix.run.timings import load_timings, save_timings, start_order, timings_file

IDS = ["py3.9-cpu", "py3.11-cpu", "py3.12-cpu", "py3.12-cu12.1"]


def test_one_at_a_time_or_all_at_once_keeps_the_matrix_order() -> None:
    slow_last = {"py3.9-cpu": 1.0, "py3.12-cu12.1": 30.0}
    assert start_order(IDS, slow_last, jobs=1) == [0, 1, 2, 3]
    assert start_order(IDS, slow_last, jobs=4) == [0, 1, 2, 3]
    assert start_order(IDS, slow_last, jobs=8) == [0, 1, 2, 3]


def test_in_parallel_new_cells_first_then_the_longest() -> None:
    previous = {"py3.9-cpu": 1.0, "py3.11-cpu": 5.0, "py3.12-cu12.1": 30.0}
    # py3.12-cpu has never run: it may be the longest of all
    assert start_order(IDS, previous, jobs=2) == [2, 3, 1, 0]
    assert start_order(IDS, {}, jobs=2) == [0, 1, 2, 3]
    ties = dict.fromkeys(IDS, 2.0)
    assert start_order(IDS, ties, jobs=3) == [0, 1, 2, 3]


def cell(name: str, status: str, seconds: float) -> CellResult:
    return CellResult(
        cell=name, python="3.12", cuda="cpu", status=CellStatus(status), test_seconds=seconds
    )


def test_saved_times_merge_with_those_of_cells_not_run(tmp_path: Path) -> None:
    path = timings_file(tmp_path / "cache", tmp_path / "project")
    assert path != timings_file(tmp_path / "cache", tmp_path / "other-project")
    assert load_timings(path) == {}
    save_timings(path, RunResult(cells=[cell("a", "passed", 2.5), cell("b", "failed", 1.0)]))
    assert load_timings(path) == {"a": 2.5, "b": 1.0}
    # a run of one cell keeps the other's time; cut-short cells say nothing of their length
    run = RunResult(cells=[cell("a", "passed", 4.0), cell("b", "timeout", 300.0)])
    save_timings(path, run)
    assert load_timings(path) == {"a": 4.0, "b": 1.0}
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_damaged_times_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    for text in ("{not json", "[1, 2]", '{"a": "slow", "b": -1, "c": NaN, "d": 2}'):
        path.write_text(text)
        assert load_timings(path) == ({"d": 2.0} if '"d"' in text else {})
    save_timings(path, RunResult(cells=[cell("a", "passed", 1.0)]))
    assert json.loads(path.read_text()) == {"a": 1.0, "d": 2.0}


def test_an_unwritable_cache_costs_only_the_times(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    save_timings(blocker / "timings" / "x.json", RunResult(cells=[cell("a", "passed", 1.0)]))
    assert load_timings(blocker / "timings" / "x.json") == {}
