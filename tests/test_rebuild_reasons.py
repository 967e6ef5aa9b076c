"""Rebuild reasons: against the same project's previous env of the cell, said in values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pytest_condamatrix.envs.cache import EnvCache
from pytest_condamatrix.envs.spec import EnvSpec, describe_changes


def build(spec: EnvSpec, prefix: Path, final: Path) -> list[str]:
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "bin").mkdir()
    (prefix / "bin" / "python").write_text("")
    record = {"name": "pkg", "files": ["bin/python"]}
    (prefix / "conda-meta" / "pkg-1.0-0.json").write_text(json.dumps(record))
    return ["pkg=1.0=0"]


def spec(*specs: str, pip: tuple[str, ...] = ()) -> EnvSpec:
    return EnvSpec("py3.12-cpu", "fake", "linux-64", ("chan",), specs, (), pip=pip)


def reason(cache: EnvCache, env: EnvSpec) -> str:
    with cache.use(env, build) as status:
        return status.reason if status.status == "built" else "reused"


def test_first_run_of_a_project_is_new_even_if_another_project_shares_the_cell(
    tmp_path: Path,
) -> None:
    demo = EnvCache(tmp_path, project="/projects/demo")
    assert reason(demo, spec("python 3.12.*", "cudademo")) == "new"
    mine = EnvCache(tmp_path, project="/projects/mine")
    assert reason(mine, spec("python 3.12.*")) == "new"  # not "specs: -cudademo"
    assert reason(mine, spec("python 3.12.*", "numpy")) == "inputs changed: specs: +numpy"
    # the demo's own history is its own
    assert reason(demo, spec("python 3.12.*", "cudademo")) == "reused"
    assert reason(demo, spec("python 3.12.*", "cudademo", "tomli")) == (
        "inputs changed: specs: +tomli"
    )


def test_a_removed_env_says_so(tmp_path: Path) -> None:
    cache = EnvCache(tmp_path, project="/p")
    env = spec("python 3.12.*")
    assert reason(cache, env) == "new"
    shutil.rmtree(cache.prefix_for(env))  # e.g. `condamatrix cache remove`
    assert reason(cache, env) == "the env was removed from the cache"


def test_without_a_project_the_newest_env_of_the_cell_explains(tmp_path: Path) -> None:
    assert reason(EnvCache(tmp_path), spec("python 3.12.*", "a")) == "new"
    assert reason(EnvCache(tmp_path), spec("python 3.12.*")) == "inputs changed: specs: -a"


def test_reasons_print_values_not_reprs() -> None:
    assert describe_changes({}, {"pip": ["hypothesis"]}) == "pip: +hypothesis"
    assert describe_changes({"pip": ["a", "b"]}, {}) == "pip: -a, -b"
    assert describe_changes({"engine": "rattler"}, {"engine": "conda"}) == (
        "engine: rattler -> conda"
    )
    assert describe_changes({"format": 1}, {}) == "format: 1 -> (none)"
