"""A cache folder that holds envs but cannot be used as it is: a read-only mount, a file in
place of one of its folders. One message naming what, exit code 7, no traceback.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_condamatrix.envs.cache import EnvCache
from pytest_condamatrix.errors import ExitCode
from pytest_condamatrix.localchannel import LocalChannel

from .conftest import Figures
from .helpers import assert_no_traceback, start_matrix
from .test_shared_cache import SPEC, builder

VALID = """
[tool.condamatrix]
python = ["3.12"]
channels = ["{channel}"]
dependencies = ["pytest"]
"""


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bind.returncode:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode(errors='replace').strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, check=False)


def matrix_exit(project: Path, cache: Path, out: Path) -> tuple[int, str]:
    run = start_matrix(project, cache, out=out)
    code = run.wait(120)
    assert_no_traceback(run.output())
    return code, run.output()


@pytest.fixture
def project(tmp_path: Path, local_channel: LocalChannel) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "pyproject.toml").write_text(VALID.format(channel=local_channel.path))
    (folder / "test_a.py").write_text("def test_ok():\n    pass\n")
    return folder


@pytest.mark.parametrize("part", ["runs", "locks", "envs"])
def test_a_file_in_place_of_a_cache_folder(
    part: str, project: Path, tmp_path: Path, figures: Figures
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / part).write_text("not a folder\n")
    code, output = matrix_exit(project, cache, tmp_path / "out")
    assert code == ExitCode.CACHE_ERROR, output
    assert f"{part} in it is not a folder" in output
    figures.add("cache folder unusable", "cases")


def test_a_read_only_cache_that_holds_envs(project: Path, tmp_path: Path, figures: Figures) -> None:
    mount = tmp_path / "mount"
    cache = mount / "cache"
    with EnvCache(cache).use(SPEC, builder):
        pass
    with read_only(mount):
        code, output = matrix_exit(project, cache, tmp_path / "out")
    assert code == ExitCode.CACHE_ERROR, output
    assert "is not writable for this user" in output
    figures.add("cache folder unusable", "cases")
