"""A warm start: with the envs built and fresh, the outer process imports only what a run
of the cells needs (each import there is time added to every run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import RunMatrix

pytestmark = pytest.mark.integration

#: modules a warm run with ``install = "none"`` has no use for: the build machinery of
#: install/ and the requirement parsing (packaging) it brings, and rattler (~100 ms), which
#: only solving or installing an env needs (the host's facts are kept in the cache)
NOT_ON_THE_WARM_PATH = (
    "rattler",
    "pytest_condamatrix.install.backend",
    "pytest_condamatrix.install.wheels",
    "pytest_condamatrix.install.requirements",
    "packaging.requirements",
)

# In the outer run only (a cell's pytest loads this conftest too): what it imported.
CONFTEST = """
import json, os, sys

def pytest_unconfigure(config):
    if not os.environ.get("CONDAMATRIX_CELL"):
        with open("outer-modules.json", "w") as out:
            json.dump(sorted(sys.modules), out)
"""


def test_a_warm_run_imports_no_build_machinery(
    run_matrix: RunMatrix,
    pytester: pytest.Pytester,
    matrix_project: Callable[..., Path],
    warm_cache: Path,
) -> None:
    matrix_project(extra='install = "none"\n')
    pytester.makeconftest(CONFTEST)
    run_matrix(warm_cache)  # builds the env if no earlier test did
    result, data = run_matrix(warm_cache)
    assert result.ret == 0, result.stdout.str()
    assert {c["env_status"] for c in data["cells"]} == {"reused"}
    modules = set(json.loads((pytester.path / "outer-modules.json").read_text()))
    assert not modules & set(NOT_ON_THE_WARM_PATH)
