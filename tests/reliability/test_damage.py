"""Damage that a hard-linked package cache spreads, and envs edited by hand.

An env's files are hard links into the package cache: a file damaged in an env is damaged
there too, and a plain rebuild would link the damaged file again. Reuse compares every
file's size with its package record, a build compares content; a damaged package cache
entry is extracted again. An env edited by hand (its stamp or a record) is rebuilt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import MakeProject
from pytest_condamatrix.envs.cache import EnvCache
from pytest_condamatrix.envs.spec import EnvSpec
from pytest_condamatrix.envs.stamp import STAMP

from .conftest import Figures
from .helpers import env_problems, run_matrix
from .test_corruption import fake_builder

# A test that writes into an installed module, as a careless test may: through the hard link,
# into the package cache and every env built from it.
WRITES_SITE_PACKAGES = """
import os
from pathlib import Path

import iniconfig

def test_writes_into_its_env():
    if os.environ.get("DAMAGE"):
        path = Path(iniconfig.__file__)
        path.write_text(path.read_text() + "# written by a test\\n")
"""


def python_record(prefix: Path) -> dict[str, dict[str, Any]]:
    (record,) = (prefix / "conda-meta").glob("python-3*.json")
    data = json.loads(record.read_text())
    return {e["_path"]: e for e in data["paths_data"]["paths"]} | {"": {"dir": data["link"]}}


@pytest.mark.integration
def test_a_damaged_file_is_found_and_the_package_cache_repaired(
    matrix_project: MakeProject, tmp_path: Path, figures: Figures
) -> None:
    project = matrix_project(
        python=("3.12",), tests=WRITES_SITE_PACKAGES, dependencies=("pytest", "iniconfig")
    )
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    first = run_matrix(project, cache, out=out, name="first")
    assert first.proc.returncode == 0, first.output()
    prefix = Path(next(iter(first.cells().values()))["env_prefix"])
    interpreter = (prefix / "bin" / "python").resolve()
    rel = str(interpreter.relative_to(prefix))
    size = int(python_record(prefix)[rel]["size_in_bytes"])
    cached = cache / "pkgs" / Path(str(python_record(prefix)[""]["dir"]["source"])).name / rel
    assert cached.samefile(interpreter)  # a hard link: one file for both

    cases = 0
    for name, args in (("reuse", ()), ("forced", ("--conda-matrix-rebuild",))):
        with interpreter.open("r+b") as fh:  # what `truncate` in a shell does
            fh.truncate(4096)
        assert cached.stat().st_size == 4096  # the package cache's copy is damaged too
        run = run_matrix(project, cache, *args, out=out, name=name)
        assert run.proc.returncode == 0, run.output()
        (cell,) = run.cells().values()
        assert cell["env_status"] == "built"
        if name == "reuse":
            assert f"{rel} (of python-3.12" in cell["env_reason"], cell["env_reason"]
            assert f"has 4096 bytes, its package says {size}" in cell["env_reason"]
        assert "repaired the package cache" in cell["env_reason"], cell["env_reason"]
        assert (prefix / "bin" / "python").resolve().stat().st_size == size
        assert not env_problems(prefix)
        cases += 1

    damaging = run_matrix(project, cache, out=out, name="damaging", env={"DAMAGE": "1"})
    assert damaging.proc.returncode == 0, damaging.output()
    after = run_matrix(project, cache, out=out, name="after")
    assert after.proc.returncode == 0, after.output()
    (cell,) = after.cells().values()
    assert cell["env_status"] == "built"
    assert "site-packages/iniconfig/__init__.py" in cell["env_reason"], cell["env_reason"]
    assert "repaired the package cache" in cell["env_reason"]
    cases += 1
    figures.record(
        "damaged package cache",
        cases=cases,
        detected=cases,
        repaired=cases,
        damaged_reused=0,
        failures=0,
    )


SPEC = EnvSpec("py3.12-cpu", "fake", "linux-64", ("chan",), ("python 3.12.*",), ())


def edit_stamp(prefix: Path, **fields: object) -> None:
    stamp = json.loads((prefix / STAMP).read_text())
    stamp.update(fields)
    (prefix / STAMP).write_text(json.dumps(stamp))


def test_an_env_of_an_earlier_version_is_reused_when_whole(tmp_path: Path) -> None:
    # An upgrade must not rebuild every env of a shared cache: a stamp of format 1 (no seal,
    # no record hashes) is trusted when every package it lists has its record, naming it.
    cache = EnvCache(tmp_path / "cache")
    builder = fake_builder(["a", "b"], made=["a", "b"])
    with cache.use(SPEC, builder) as first:
        assert first.status == "built"
    stamp = json.loads((first.prefix / STAMP).read_text())
    for field in ("seal", "records", "unchecked"):
        del stamp[field]
    stamp["format"] = 1
    (first.prefix / STAMP).write_text(json.dumps(stamp))
    with cache.use(SPEC, builder) as second:
        assert second.status == "reused"
    (first.prefix / "b").unlink()
    with cache.use(SPEC, builder) as third:
        assert third.status == "built" and "b (of pkg-1.0-0) is missing" in third.reason


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("files_complete set to false, a file deleted", "its stamp was edited after the build"),
        ("record emptied, a file deleted", "conda-meta/pkg-1.0-0.json was changed after"),
        ("record deleted", "conda-meta/pkg-1.0-0.json is missing"),
        ("record added", "conda-meta/other-1.0-0.json was added after the build"),
        ("stamp without its seal", "its stamp was edited after the build (no seal)"),
        ("old stamp, record emptied", "conda-meta/pkg-1.0-0.json was changed"),
        ("old stamp, files_complete false", "old env: its files cannot be checked"),
    ],
)
def test_an_env_edited_by_hand_is_rebuilt(
    tmp_path: Path, figures: Figures, case: str, reason: str
) -> None:
    cache = EnvCache(tmp_path / "cache")
    builder = fake_builder(["a", "b"], made=["a", "b"])
    with cache.use(SPEC, builder) as first:
        assert first.status == "built"
    prefix = first.prefix
    meta = prefix / "conda-meta"
    if case.startswith("files_complete"):
        edit_stamp(prefix, files_complete=False)
        (prefix / "b").unlink()
    elif case.startswith("record emptied"):
        (meta / "pkg-1.0-0.json").write_text("{}")
        (prefix / "b").unlink()
    elif case == "record deleted":
        (meta / "pkg-1.0-0.json").unlink()
    elif case == "record added":
        (meta / "other-1.0-0.json").write_text('{"files": ["c"]}')
    else:
        stamp = json.loads((prefix / STAMP).read_text())
        del stamp["seal"]
        if case.startswith("old stamp"):  # as an earlier version wrote it
            stamp["format"] = 1
            del stamp["records"], stamp["unchecked"]
            if "record emptied" in case:
                (meta / "pkg-1.0-0.json").write_text("{}")
            else:
                stamp["files_complete"] = False
        (prefix / STAMP).write_text(json.dumps(stamp))
    with cache.use(SPEC, builder) as second:
        assert second.status == "built"
        assert reason in second.reason, second.reason
    assert sorted(p.name for p in prefix.iterdir()) == ["a", "b", "bin", "conda-meta"]
    figures.add("hand-edited envs", "cases")
    figures.add("hand-edited envs", "rebuilt")
    figures.record("hand-edited envs", reused_with_files_missing=0, failures=0)
