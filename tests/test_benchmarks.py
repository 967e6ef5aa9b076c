"""Smoke tests of the benchmarks (benchmarks/): argument parsing, generated projects, targets
and report writing on made-up numbers, and one small real measurement (slow)."""

from __future__ import annotations

import configparser
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_condamatrix.config import load_config
from pytest_condamatrix.localchannel import LocalChannel

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the benchmarks package lives beside src/, not inside it
    sys.path.insert(0, str(REPO))

from benchmarks import plan, projects, report, run  # noqa: E402
from benchmarks.tools import BENCH_DIR_VAR, bench_dir  # noqa: E402


def test_parser_picks_the_plan_and_repeats(tmp_path: Path) -> None:
    args = run.build_parser().parse_args(["--quick", "--repeats", "3", "--bench-dir", "x"])
    chosen = run.choose_plan(args)
    assert chosen.mode == "quick"
    assert {s.repeats for s in chosen.scenarios} == {3}
    assert run.choose_plan(run.build_parser().parse_args([])) is plan.FULL
    assert run.build_parser().parse_args(["--only", "decision"]).only == ["decision"]
    with pytest.raises(SystemExit):
        run.build_parser().parse_args(["--only", "nothing"])


def test_full_plan_writes_the_committed_files_quick_plan_the_bench_dir(tmp_path: Path) -> None:
    parser = run.build_parser()
    full = parser.parse_args([])
    assert run.outputs(full, plan.FULL, tmp_path) == (run.FULL_JSON, run.FULL_MARKDOWN)
    quick = parser.parse_args(["--quick"])
    json_path, md_path = run.outputs(quick, plan.QUICK, tmp_path)
    assert json_path.parent == md_path.parent == tmp_path / "results"
    only = parser.parse_args(["--only", "runs"])  # a partial full run leaves the docs alone
    assert run.outputs(only, plan.FULL, tmp_path)[0].parent == tmp_path / "results"


def test_bench_dir_comes_from_option_env_or_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bench_dir(tmp_path / "a") == tmp_path / "a"
    monkeypatch.setenv(BENCH_DIR_VAR, str(tmp_path / "b"))
    assert bench_dir(None) == tmp_path / "b"
    monkeypatch.delenv(BENCH_DIR_VAR)
    assert bench_dir(None).parts[-2:] == ("pytest-condamatrix", "bench")


def test_plans_name_known_tools_workloads_and_matrices() -> None:
    for chosen in plan.PLANS.values():
        for scenario in chosen.scenarios:
            assert scenario.workload in plan.WORKLOADS
            assert scenario.matrix in plan.MATRICES
            assert set(scenario.tools) <= set(plan.TOOLS)
            if plan.MATRICES[scenario.matrix].is_cuda:  # nox and tox have no CUDA axis
                assert not any(t.startswith(("nox", "tox")) for t in scenario.tools)
        assert chosen.build_matrix in plan.MATRICES
    assert plan.MATRICES["cuda9"].cells == 9
    assert plan.MATRICES["cuda9"].cell_ids[:2] == ("py3.9-cpu", "py3.9-cu11.8")
    assert plan.MATRICES["cpu3"].only(("3.11",)).cell_ids == ("py3.11-cpu",)


def test_generated_suite_is_a_valid_matrix_project(tmp_path: Path) -> None:
    channel = tmp_path / "channel"
    channel.mkdir()
    workload = plan.Workload("suite-t", tests=10, files=3)
    project = projects.prepare(workload, tmp_path, channel, ("3.11", "3.12"), ("cpu", "12.1"))
    tests = sorted((project.path / "tests").glob("test_*.py"))
    assert len(tests) == 3
    assert sum(p.read_text().count("\ndef test_") for p in tests) == 10
    for path in tests:
        compile(path.read_text(), str(path), "exec")
    config = load_config(None, start=project.path)
    assert config.python == ("3.11", "3.12")
    assert config.cuda == ("cpu", "12.1")
    compile((project.path / "noxfile.py").read_text(), "noxfile.py", "exec")
    tox = configparser.ConfigParser()
    tox.read(project.path / "tox.ini")
    assert tox["tox"]["env_list"] == "py311, py312"
    # Rewriting the same content leaves the files alone (warm runs keep their bytecode).
    before = {p: p.stat().st_mtime_ns for p in tests}
    projects.prepare(workload, tmp_path, channel, ("3.11", "3.12"), ("cpu", "12.1"))
    assert {p: p.stat().st_mtime_ns for p in tests} == before
    smaller = plan.Workload("suite-t", tests=4, files=2)
    projects.prepare(smaller, tmp_path, channel, ("3.11",), ("cpu",))
    assert len(list((project.path / "tests").glob("test_*.py"))) == 2


def fake_results(tmp_path: Path) -> dict[str, Any]:
    results = report.new_results("quick", "python -m benchmarks --quick", {"cpus": 2})
    tools: list[dict[str, Any]] = [
        {"tool": "direct", "wall": 10.0, "cpu": 9.0},
        {"tool": "condamatrix-j1", "wall": 10.3, "cpu": 9.5, "outer_rss_mb_max": 60.0,
         "outer_cpu_min": 0.6},
        {"tool": "condamatrix-j2", "wall": 7.0, "cpu": 9.6, "outer_rss_mb_max": 61.0},
        {"tool": "nox", "error": f"failed in {tmp_path}/work\nmore"},
    ]  # fmt: skip
    results["runs"] = [
        {"workload": "suite-1k", "matrix": "cpu3", "cells": 3, "tests": 3000, "repeats": 2,
         "tools": tools},
        {"workload": "suite-1k", "matrix": "cuda9", "cells": 9, "tests": 9000, "repeats": 2,
         "tools": [dict(t, outer_rss_mb_max=120.0) for t in tools[:2]]},
    ]  # fmt: skip
    results["decision"] = {
        "cells": 3, "rounds": 5, "median_ms": 12.0, "p90_ms": 15.0, "min_ms": 9.0,
        "cpu_median_ms": 11.0, "detect_ms": 40.0,
    }  # fmt: skip
    results["builds"] = {
        "workload": "suite-1k", "matrix": "cpu3", "cells": 3,
        "warm_package_cache": {"total_s": 0.9, "per_cell_s": {"py3.9-cpu": 0.3}},
        "empty_package_cache": {"total_s": 4.0, "per_cell_s": {"py3.9-cpu": 1.3}},
    }  # fmt: skip
    results["cold"] = {
        "workload": "demo", "matrix": "cpu3", "cells": 3,
        "tools": {"condamatrix-j1": {"wall": 5.0}, "nox": {"wall": 20.0},
                  "nox-uv": {"wall": 4.0}, "tox": {"error": "boom"}},
    }  # fmt: skip
    variants = {"plain": 10.0, "worker": 10.2, "junit": 12.0, "cell": 10.25}
    results["streaming"] = {
        "micro": {
            "tests": 20000, "worker_cpu_us": {"py3.9-cpu": 14.0, "py3.12-cpu": 12.0},
            "worker_python": {"py3.9-cpu": "3.9.18", "py3.12-cpu": "3.12.1"},
            "outer_cpu_us": 9.0, "total_cpu_us": 23.0,
        },
        "workload": "suite-10k", "cell": "py3.12-cpu", "tests": 10000, "repeats": 2,
        "variants": {k: {"wall": v, "cpu": v} for k, v in variants.items()},
        "worker_us_per_test_cpu": 20.0, "worker_us_per_test_wall": 21.0,
        "junit_us_per_test_cpu": 200.0, "cell_us_per_test_cpu": 25.0,
    }  # fmt: skip
    results["memory"] = report.memory_figure(results, "suite-1k", "cuda9")
    return results


def test_paired_ratio_is_the_median_of_same_round_ratios() -> None:
    run = {
        "tools": [
            {"tool": "direct", "walls": [10.0, 20.0, 10.0]},
            {"tool": "condamatrix-j1", "walls": [11.0, 21.0, 30.0]},
        ]
    }
    paired = report.paired_ratio(run, "condamatrix-j1")
    assert paired is not None and abs(paired - 1.1) < 1e-9
    assert report.paired_ratio(run, "nox") is None


def test_targets_on_fake_numbers(tmp_path: Path) -> None:
    verdicts = {t.name: t.met for t in report.targets(fake_results(tmp_path))}
    assert verdicts == {
        "warm run, -j 1 (suite-1k, 3 cells)": True,  # 1.03x
        "warm run, -j 2 (suite-1k, 3 cells)": False,  # 0.70x
        "cache-hit decision per cell": True,
        "9 cells built from a warm package cache": False,  # 0.9 s for 3 cells -> 2.7 s
        "cold run, empty package cache vs nox cold (virtualenv)": True,
        "cold run, empty package cache vs nox cold (uv)": False,
        "result streaming, per test (worker + outer process)": True,
        "outer process peak memory (suite-1k, 9 cells)": False,  # 120 MB
    }
    assert report.targets(report.new_results("full", "x", {}))[0].met is None


def test_results_and_markdown_are_written_without_machine_paths(tmp_path: Path) -> None:
    results = report.finish(fake_results(tmp_path))
    scrub = [(str(tmp_path), "<bench-dir>")]
    report.write_json(results, tmp_path / "out" / "r.json", scrub)
    report.write_markdown(results, tmp_path / "out" / "r.md", scrub)
    data = json.loads((tmp_path / "out" / "r.json").read_text())
    assert data["schema"] == report.SCHEMA
    assert [t["verdict"] for t in data["targets"]][:2] == ["met", "**not met**"]
    markdown = (tmp_path / "out" / "r.md").read_text()
    for text in (
        "## Targets",
        "| warm run, -j 1 (suite-1k, 3 cells) | ≤ 1.05x direct | 1.03x | met |",
        "`pytest --conda-matrix --conda-matrix-jobs 2` | 7.00 | 0.70x | - |",
        "not measured: failed in <bench-dir>/work",
        "## How the cost grows with cells and tests",
        "## Cache-hit decision",
        "| **all, one after the other** | 0.90 | 4.00 |",
        "| nox, virtualenv backend (pip's cache warm) | 20.00 | 0.25x |",
        "| + `--junitxml` only | 12.00 | 12.00 | 200.0 |",
        "| worker plugin, in the py3.9-cpu env (Python 3.9.18) | 14.0 |",
        "| **total** (slowest worker + outer) | 23.0 |",
    ):
        assert text in markdown, text
    assert str(tmp_path) not in markdown + (tmp_path / "out" / "r.json").read_text()


def test_markdown_can_be_written_again_from_a_results_file(tmp_path: Path) -> None:
    results = report.finish(fake_results(tmp_path))
    report.write_json(results, tmp_path / "r.json")
    assert (
        run.main(["--from-results", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "x.md")])
        == 0
    )
    assert "## Targets" in (tmp_path / "x.md").read_text()
    (tmp_path / "bad.json").write_text("{}")
    assert (
        run.main(
            ["--from-results", str(tmp_path / "bad.json"), "--markdown", str(tmp_path / "y.md")]
        )
        == 2
    )


@pytest.mark.slow
@pytest.mark.integration
def test_quick_decision_measurement_runs(local_channel: LocalChannel, tmp_path: Path) -> None:
    """The smallest real piece of the quick benchmark: build three envs from the test channel
    and time the cache-hit decision on them."""
    out = tmp_path / "results"
    code = run.main(
        [
            "--quick", "--only", "decision", "--bench-dir", str(tmp_path / "bench"),
            "--channel", str(local_channel.path),
            "--results", str(out / "r.json"), "--markdown", str(out / "r.md"),
        ]
    )  # fmt: skip
    data = json.loads((out / "r.json").read_text())
    assert code == 0, data["errors"]
    assert data["decision"]["cells"] == len(local_channel.pythons)
    assert data["decision"]["median_ms"] > 0
    assert "## Cache-hit decision" in (out / "r.md").read_text()
