"""A failed solve lists every spec without a candidate; a network failure says it is one."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import MakeProject, RunMatrix
from pytest_condamatrix.envs.solve_errors import explain


def test_network_failure_names_the_url_and_the_channel() -> None:
    exc = RuntimeError(
        "failed to fetch repodata: error sending request for url "
        "(https://conda.anaconda.org/conda-forge/noarch/repodata.json)"
    )
    error = explain("py3.12-cpu", ["numpy"], ["conda-forge"], exc, list, str(exc))
    text = str(error)
    assert "a network failure: could not fetch https://conda.anaconda.org/conda-forge/" in text
    assert "of the channel conda-forge" in text
    assert "the specs are not the problem" in text


def test_explanation_never_hides_the_solver_message() -> None:
    def broken() -> list[str]:
        raise ValueError("boom")

    error = explain("c", ["a"], ["ch"], RuntimeError("conflict"), broken, "conflict")
    assert "cannot solve the env of c: conflict" in str(error)


@pytest.mark.integration
def test_every_spec_without_a_candidate_is_listed(
    run_matrix: RunMatrix, matrix_project: MakeProject, tmp_path: Path
) -> None:
    project = matrix_project(
        dependencies=("pytest", "no-such-package", "pluggy >=99", "iniconfig"),
        extra="environment = 'environment.yml'\n",
    )
    (project / "environment.yml").write_text("dependencies:\n  - from-the-file=1.0\n")
    result, data = run_matrix(tmp_path / "cache")
    assert result.ret != 0
    message = data["cells"][0]["message"]
    assert (
        "no package in the channels matches 'from-the-file=1.0' (from environment.yml), "
        "'no-such-package', 'pluggy >=99' (3 of 6 specs)"
    ) in message  # python, pytest and iniconfig have candidates
