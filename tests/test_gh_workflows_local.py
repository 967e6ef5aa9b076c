"""The workflows of `condamatrix init-ci`, run on this machine job by job, step by step.

Each job's steps run in order, as GitHub runs them (tests/gha_local.py says how): the matrix
job lists the cells with `gh-matrix`, a test job per cell builds its env and runs the tests,
the merge job merges what the test jobs uploaded. Real envs from the local test channel;
the project under test fails on Python 3.11 and passes on 3.12.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gha_local import JobRun, LocalRunner, caller_workflow, load_workflow
from pytest_condamatrix.ci.init_ci import REUSABLE, WORKFLOW, render_template
from pytest_condamatrix.localchannel import LocalChannel

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash, as GitHub's runners"),
]

TESTS = "import sys\n\ndef test_new():\n    assert sys.version_info >= (3, 12)\n"


def make_repo(root: Path, channels: str) -> Path:
    repo = root / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "demo-thing"\nversion = "0"\n\n'
        f'[tool.condamatrix]\npython = ["3.11", "3.12"]\nchannels = {channels}\n'
        'dependencies = ["pytest"]\n'
    )
    (repo / "test_it.py").write_text(TESTS)
    return repo


@pytest.fixture
def pythons(local_channel: LocalChannel) -> LocalChannel:
    missing = {"3.11", "3.12"} - set(local_channel.pythons)
    if missing:
        pytest.skip(f"Python {', '.join(sorted(missing))} is not on this machine")
    return local_channel


def by_cell(runs: list[JobRun]) -> dict[str, JobRun]:
    return {json.loads(r.name.split(" ", 1)[1])["cell"]: r for r in runs}


def merged(runner: LocalRunner, artifact: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        next((runner.artifacts / artifact).glob("*.json")).read_text()
    )
    return data


def test_workflow_runs_for_two_cells_and_merges(tmp_path: Path, pythons: LocalChannel) -> None:
    """`init-ci --install '.[test]'`: every job installs from the repository, the merge job
    too, which needs its checkout for that."""
    repo = make_repo(tmp_path, json.dumps([str(pythons.path)]))
    workflow = load_workflow(render_template(WORKFLOW, install=".[test]"))
    runner = LocalRunner(tmp_path / "run", repo)
    jobs = runner.run_workflow(workflow)

    (matrix,) = jobs["matrix"]
    assert matrix.result == "success", matrix.text
    cells = [e["cell"] for e in json.loads(matrix.outputs["matrix"])["include"]]
    assert cells == ["py3.11-cpu", "py3.12-cpu"]
    tests = by_cell(jobs["test"])
    assert tests["py3.11-cpu"].result == "failure", tests["py3.11-cpu"].text
    assert tests["py3.12-cpu"].result == "success", tests["py3.12-cpu"].text
    for cell, job in tests.items():
        assert "cache saved" in job.text  # a failing cell's env is saved too
        assert cell in job.summary  # the cell's own step summary
    (merge,) = jobs["merge"]
    assert merge.result == "failure", merge.text  # the matrix failed: so does its report
    assert "(pip stand-in) would install .[test]" in merge.text
    assert "test_it.py::test_new: fails only on py3.11" in merge.text
    assert "2 cells (1 failed, 1 passed)" in merge.text
    assert "conda matrix" in merge.summary and "py3.11" in merge.summary
    report = merged(runner, "condamatrix-report")
    assert {c["cell"]: c["status"] for c in report["cells"]} == {
        "py3.11-cpu": "failed",
        "py3.12-cpu": "passed",
    }
    assert (runner.artifacts / "condamatrix-report" / "junit.xml").is_file()

    # The stand-in pip is what catches a merge job without a checkout.
    steps = workflow["jobs"]["merge"]["steps"]
    workflow["jobs"]["merge"]["steps"] = [s for s in steps if "checkout" not in s.get("uses", "")]
    bare = runner.run_job(workflow, "merge", needs={"matrix": matrix, "test": tests["py3.12-cpu"]})
    assert bare.result == "failure" and "is not installable" in bare.text


def test_reusable_workflow_called_twice_in_one_workflow(
    tmp_path: Path, pythons: LocalChannel
) -> None:
    """As the project's own CI calls it: the channel built by `setup` in each test job and
    given through pytest-args; two calls, whose artifacts must not mix."""
    repo = make_repo(tmp_path, '["conda-forge"]')
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "condamatrix-reusable.yml").write_text(render_template(REUSABLE))
    common = {
        "setup": f"ln -s {pythons.path} .condamatrix-channel",
        "pytest-args": "--conda-matrix-channel .condamatrix-channel -p no:cacheprovider",
    }
    calls = {
        "everything": {**common, "install": ".[test]"},
        "newest": {**common, "select": "py3.12-*"},
    }
    caller = caller_workflow(calls, "./.github/workflows/condamatrix-reusable.yml")
    runner = LocalRunner(tmp_path / "run", repo)
    runs = runner.run_caller(load_workflow(caller))

    ids = {name: run["matrix"][0].outputs["call"] for name, run in runs.items()}
    assert all(len(i) == 8 for i in ids.values()) and len(set(ids.values())) == 2
    first, second = ids["everything"], ids["newest"]
    assert sorted(p.name for p in runner.artifacts.iterdir()) == sorted(
        [
            f"condamatrix-{first}-cell-py3.11-cpu",
            f"condamatrix-{first}-cell-py3.12-cpu",
            f"condamatrix-{second}-cell-py3.12-cpu",
            f"condamatrix-report-{first}",
            f"condamatrix-report-{second}",
        ]
    )
    everything, newest = runs["everything"], runs["newest"]
    assert [r.result for r in everything["test"]] == ["failure", "success"]
    assert everything["merge"][0].result == "failure"
    assert "2 cells (1 failed, 1 passed)" in everything["merge"][0].text
    assert everything["merge"][0].outputs["report-artifact"] == f"condamatrix-report-{first}"
    (test,) = newest["test"]
    # The first call saved the env under a key that holds the channel's index: the second
    # call's job restores it, and the cell reuses it rather than building it again.
    assert test.result == "success" and "cache restored" in test.text, test.text
    assert " reused " in test.text
    (merge,) = newest["merge"]
    assert merge.result == "success", merge.text
    assert "1 cells (1 passed)" in merge.text  # the other call's results stayed out
    assert [c["cell"] for c in merged(runner, f"condamatrix-report-{second}")["cells"]] == [
        "py3.12-cpu"
    ]
