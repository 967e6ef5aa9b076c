"""Files the tool writes never follow a link planted where a temporary or lock file goes.

Another user of a shared folder (or a leftover) can put a symlink at a fixed temporary name
(``report.json.tmp``) or at a lock file's name: writing through it would overwrite the file
it points at. Here every such link points at a victim file whose content must not change.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pytest_condamatrix import atomic
from pytest_condamatrix.envs import locks
from pytest_condamatrix.envs.cache import EnvCache
from pytest_condamatrix.envs.spec import EnvSpec

from .conftest import Figures

SPEC = EnvSpec("py3.12-cpu", "fake", "linux-64", ("chan",), ("python 3.12.*",), ())
VICTIM = "the victim's data\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text(VICTIM)
    return path


def plant(link: Path, victim: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(victim)


@pytest.mark.parametrize("name", ["report.json.tmp", ".report.json.tmp"])
def test_an_atomic_write_never_follows_a_planted_temporary_name(
    tmp_path: Path, victim: Path, name: str, figures: Figures
) -> None:
    target = tmp_path / "out" / "report.json"
    plant(target.parent / name, victim)
    atomic.write_text(target, '{"ok": true}\n')
    assert target.read_text() == '{"ok": true}\n'
    assert victim.read_text() == VICTIM
    assert (target.parent / name).is_symlink()  # left alone, not written through
    assert sorted(p.name for p in target.parent.iterdir()) == sorted(["report.json", name])
    figures.add("planted links", "cases")


def test_an_atomic_write_replaces_a_link_at_the_target_itself(tmp_path: Path, victim: Path) -> None:
    target = tmp_path / "report.json"
    plant(target, victim)
    atomic.write_text(target, "new\n")
    assert not target.is_symlink() and target.read_text() == "new\n"
    assert victim.read_text() == VICTIM


def test_an_atomic_write_honours_the_umask_and_leaves_nothing_on_failure(
    tmp_path: Path,
) -> None:
    old = os.umask(0o027)
    try:
        atomic.write_text(tmp_path / "a.json", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640
    with pytest.raises(RuntimeError), atomic.open_atomic(tmp_path / "b.json") as fh:
        fh.write("half")
        raise RuntimeError("a failure while writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_lock_files_are_never_opened_through_a_link(
    tmp_path: Path, victim: Path, figures: Figures
) -> None:
    cache = EnvCache(tmp_path / "cache")
    lock = cache.root / "locks" / f"{SPEC.dirname}.lock"
    plant(lock, victim)
    with locks.hold(cache.lock_for(SPEC), "write", None):
        pass
    assert victim.read_text() == VICTIM
    assert lock.is_file() and not lock.is_symlink()
    other = cache.root / "locks" / "py3.11-cpu-0123abcd.lock"
    plant(other, victim)
    locks.env_lock(cache.root, "py3.11-cpu-0123abcd")
    assert victim.read_text() == VICTIM and not other.is_symlink()
    figures.add("planted links", "cases", 2)


def test_the_stamp_is_never_written_through_a_link(tmp_path: Path, victim: Path) -> None:
    def builder(spec: EnvSpec, prefix: Path, final: Path) -> list[str]:
        (prefix / "bin").mkdir(parents=True)
        (prefix / "bin" / "python").write_text("")
        (prefix / "conda-meta").mkdir()
        # a build that leaves links at the names a fixed temporary stamp would have used
        for name in ("condamatrix-stamp.json.tmp", ".condamatrix-stamp.json.tmp"):
            (prefix / "conda-meta" / name).symlink_to(victim)
        return []

    cache = EnvCache(tmp_path / "cache")
    with cache.use(SPEC, builder) as env:
        assert env.status == "built"
    assert victim.read_text() == VICTIM


# The report writers live in results.py and report/: these pass once they write through
# atomic.write_text / atomic.open_atomic (then drop the mark).
@pytest.mark.parametrize("writer", ["json", "junit"])
def test_reports_never_follow_a_planted_temporary_name(
    tmp_path: Path, victim: Path, writer: str
) -> None:
    from pytest_condamatrix.report.junit import write_junit
    from pytest_condamatrix.results import RunResult, write_json

    target = tmp_path / f"report.{writer}"
    plant(target.with_name(target.name + ".tmp"), victim)
    (write_json if writer == "json" else write_junit)(RunResult(cells=[]), target)
    assert victim.read_text() == VICTIM
