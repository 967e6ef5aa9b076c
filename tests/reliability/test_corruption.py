"""Damaged envs and foreign things in the cache: detected, said why, rebuilt; nothing outside
the cache is touched.

One cache serves all the cases of this module (its package cache stays warm, so each rebuild
is quick); each case damages the env that the previous one left valid.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import MakeProject
from pytest_condamatrix.envs import inventory, prune
from pytest_condamatrix.envs.cache import Builder, EnvCache
from pytest_condamatrix.envs.spec import EnvSpec

from .conftest import Figures
from .helpers import env_problems, run_matrix, tree_snapshot

STAMP = Path("conda-meta") / "condamatrix-stamp.json"


def delete_python(prefix: Path, outside: Path) -> None:
    real = (prefix / "bin" / "python").resolve()  # bin/python is a link to python3.X
    real.unlink()


def delete_stdlib_module(prefix: Path, outside: Path) -> None:
    (module,) = prefix.glob("lib/python3.*/json/decoder.py")
    module.unlink()


def delete_package_record(prefix: Path, outside: Path) -> None:
    (record,) = (prefix / "conda-meta").glob("pytest-*.json")
    record.unlink()


def truncate_stamp(prefix: Path, outside: Path) -> None:
    stamp = prefix / STAMP
    stamp.write_bytes(stamp.read_bytes()[:40])


def stamp_of_another_key(prefix: Path, outside: Path) -> None:
    stamp = json.loads((prefix / STAMP).read_text())
    stamp["key"] = "0" * 64
    (prefix / STAMP).write_text(json.dumps(stamp))


def empty_env_folder(prefix: Path, outside: Path) -> None:
    shutil.rmtree(prefix)
    prefix.mkdir()
    (prefix / "stray-file").write_text("not an env\n")


def link_to_outside(prefix: Path, outside: Path) -> None:
    # The env's name pointing at a folder outside the cache that looks like an env: the cache
    # must neither use it (no valid stamp) nor delete anything in it.
    shutil.rmtree(prefix)
    prefix.symlink_to(outside, target_is_directory=True)


def dangling_link(prefix: Path, outside: Path) -> None:
    shutil.rmtree(prefix)
    prefix.symlink_to(prefix.parent / "gone", target_is_directory=True)


def foreign_folders(prefix: Path, outside: Path) -> None:
    envs = prefix.parent
    (envs / "not-an-env").mkdir()
    (envs / "not-an-env" / "data").write_text("keep me\n")
    (envs / "py3.12-cpu-deadbeef").mkdir()  # named like an env of ours, without a stamp
    (envs / "py3.12-cpu-0badf00d").mkdir()
    (envs / "py3.12-cpu-0badf00d" / "conda-meta").mkdir()
    (envs / "py3.12-cpu-0badf00d" / STAMP).write_text('["a list", "not a stamp"]')
    (envs / "stray-file.txt").write_text("a file where folders are\n")
    (envs / "link-out").symlink_to(outside, target_is_directory=True)


Damage = Callable[[Path, Path], None]
# name, damage, env status of the next run, words of its reason
CASES: list[tuple[str, Damage, str, str]] = [
    ("deleted python", delete_python, "built", "damaged env: its python executable is missing"),
    ("deleted stdlib file", delete_stdlib_module, "built", "json/decoder.py"),
    ("deleted package record", delete_package_record, "built", "package record conda-meta/pytest-"),
    ("truncated stamp", truncate_stamp, "built", "damaged env: its stamp is unreadable"),
    ("stamp of another key", stamp_of_another_key, "built", "stamp belongs to another key"),
    ("env folder emptied", empty_env_folder, "built", "incomplete env (no stamp)"),
    ("env is a link out of the cache", link_to_outside, "built", "a symbolic link is in place"),
    ("env is a dangling link", dangling_link, "built", "a symbolic link is in place"),
    ("foreign folders in envs/", foreign_folders, "reused", ""),
]


@pytest.fixture(scope="module")
def corruption_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corruption") / "cache"


def valid_env(project: Path, cache: Path, out: Path) -> Path:
    """The cell's env, valid: the one the previous case left, else a new one."""
    found = [p for p in cache.glob("envs/py3.12-cpu-*") if p.is_dir() and not env_problems(p)]
    if len(found) == 1:
        return found[0]
    before = run_matrix(project, cache, out=out, name="before")
    assert before.proc.returncode == 0, before.output()
    (cell,) = before.cells().values()
    return Path(cell["env_prefix"])


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "damage", "env_status", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_damage_is_detected_reported_and_rebuilt(
    matrix_project: MakeProject,
    corruption_cache: Path,
    tmp_path: Path,
    figures: Figures,
    name: str,
    damage: Damage,
    env_status: str,
    reason: str,
) -> None:
    project = matrix_project(python=("3.12",))
    out = tmp_path / "out"
    prefix = valid_env(project, corruption_cache, out)

    outside = tmp_path / "outside"  # a look-alike env beside the cache, which must stay as is
    shutil.copytree(prefix, outside, symlinks=True)
    (outside / STAMP).write_text('{"key": "not this one"}')
    snapshot = tree_snapshot(outside)
    damage(prefix, outside)

    after = run_matrix(project, corruption_cache, out=out, name="after")
    assert after.proc.returncode == 0, after.output()
    (cell,) = after.cells().values()
    assert cell["status"] == "passed"
    assert cell["env_status"] == env_status, cell
    assert reason in cell["env_reason"], cell["env_reason"]
    if reason:  # the terminal report says why too
        assert cell["env_reason"].split(":")[0] in after.output()
    assert not prefix.is_symlink() and not env_problems(prefix)
    assert tree_snapshot(outside) == snapshot, "something outside the cache was touched"
    if damage is foreign_folders:
        envs = prefix.parent
        assert (envs / "not-an-env" / "data").read_text() == "keep me\n"
        assert (envs / "link-out").is_symlink()
    figures.add("corruption", "cases")
    figures.add("corruption", "detected_and_rebuilt", env_status == "built")
    figures.record("corruption", outside_touched=0, failures=0)


@pytest.mark.integration
def test_a_damaged_lock_file_is_reported_with_the_way_out(
    matrix_project: MakeProject, corruption_cache: Path, tmp_path: Path, figures: Figures
) -> None:
    project = matrix_project(python=("3.12",))
    cache = corruption_cache
    out = tmp_path / "out"
    prefix = valid_env(project, cache, out)
    lock = cache / "locks" / f"{prefix.name}.lock"
    lock.write_bytes(os.urandom(4096))
    broken = run_matrix(project, cache, out=out, name="broken")
    assert broken.proc.returncode == 1
    (cell,) = broken.cells().values()
    assert cell["status"] == "env-error"
    assert f"cannot use the lock file {lock}" in cell["message"]
    assert "delete that file" in cell["message"]
    lock.unlink()  # what the hint says to do
    again = run_matrix(project, cache, out=out, name="again")
    assert again.proc.returncode == 0, again.output()
    figures.add("corruption", "cases")
    figures.record("corruption", damaged_lock_reported=True)


def fake_builder(files: list[str], made: list[str]) -> Builder:
    """A builder that installs one package whose record lists ``files``, making ``made``."""

    def build(spec: EnvSpec, prefix: Path, final: Path) -> list[str]:
        (prefix / "conda-meta").mkdir(parents=True)
        (prefix / "bin").mkdir()
        (prefix / "bin" / "python").write_text("")
        for rel in made:
            (prefix / rel).write_text("")
        record = {"name": "pkg", "version": "1.0", "build": "0", "files": ["bin/python", *files]}
        (prefix / "conda-meta" / "pkg-1.0-0.json").write_text(json.dumps(record))
        return ["pkg=1.0=0"]

    return build


def test_files_missing_from_the_start_are_not_a_reason_to_rebuild_forever(
    tmp_path: Path,
) -> None:
    # A pip layer may replace a conda package's files: the env lacks them from its build on,
    # and reusing it must not turn into a rebuild on every run.
    cache = EnvCache(tmp_path / "cache")
    spec = EnvSpec("py3.12-cpu", "fake", "linux-64", ("chan",), ("python 3.12.*",), ())
    builder = fake_builder(["a", "b"], made=["a"])
    with cache.use(spec, builder) as first:
        assert first.status == "built"
    with cache.use(spec, builder) as second:
        assert second.status == "reused"


def test_a_file_lost_after_the_build_is_found_on_reuse(tmp_path: Path) -> None:
    cache = EnvCache(tmp_path / "cache")
    spec = EnvSpec("py3.12-cpu", "fake", "linux-64", ("chan",), ("python 3.12.*",), ())
    builder = fake_builder(["a", "b"], made=["a", "b"])
    with cache.use(spec, builder) as first:
        assert first.status == "built"
    (first.prefix / "b").unlink()
    with cache.use(spec, builder) as second:
        assert second.status == "built"
        assert second.reason == (
            "damaged env: 1 installed file(s) differ from their package: b (of pkg-1.0-0) is missing"
        )


def test_a_link_in_place_of_an_env_is_seen_by_list_prune_and_remove(
    tmp_path: Path, figures: Figures
) -> None:
    root = tmp_path / "cache"
    EnvCache(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep me\n")
    envs = root / "envs"
    (envs / "py3.12-cpu-0123abcd").symlink_to(tmp_path / "gone", target_is_directory=True)
    (envs / "py3.11-cpu-4567abcd").symlink_to(outside, target_is_directory=True)
    (envs / "link-out").symlink_to(outside, target_is_directory=True)  # not named as ours

    listing = inventory.scan(root)
    assert {e.name: e.valid for e in listing.envs} == {
        "py3.11-cpu-4567abcd": False,
        "py3.12-cpu-0123abcd": False,
    }
    result, matched = prune.remove_envs(root, "py3.12-cpu")
    assert [e.name for e in matched] == ["py3.12-cpu-0123abcd"] and result.actions[0].done
    assert not os.path.lexists(envs / "py3.12-cpu-0123abcd")
    pruned = prune.prune(root)
    assert [a.name for a in pruned.actions if a.kind == "env"] == ["py3.11-cpu-4567abcd"]
    assert not os.path.lexists(envs / "py3.11-cpu-4567abcd")
    assert (envs / "link-out").is_symlink()
    assert (outside / "keep").read_text() == "keep me\n"
    assert not list((root / "trash").iterdir())
    figures.add("corruption", "cases")
