"""``install = wheel | editable | none`` through real envs from the local channel.

The project's JSON results go outside its folder: a results file in a project that is not a
git checkout would count as a changed source and rebuild the wheel on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import CONDAMATRIX
from pytest_condamatrix.localchannel import LocalChannel

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).parents[1] / "examples" / "cext"


def run(
    pytester: pytest.Pytester, cache: Path, channel: LocalChannel, out: Path, *args: str
) -> tuple[pytest.RunResult, dict[str, dict[str, Any]]]:
    target = out / f"results-{len(list(out.iterdir()))}.json"
    result = pytester.runpytest_subprocess(
        "--conda-matrix", "--conda-matrix-cache-dir", str(cache),
        "--conda-matrix-channel", str(channel.path), "--conda-matrix-json", str(target),
        "-p", "no:cacheprovider", *args, timeout=600,
    )  # fmt: skip
    assert "Traceback" not in result.stderr.str(), result.stderr.str()
    data = json.loads(target.read_text()) if target.is_file() else {"cells": []}
    return result, {c["cell"]: c for c in data["cells"]}


def git_checkout(folder: Path) -> None:
    """Make ``folder`` a git checkout that ignores what pytester writes into it."""
    (folder / ".gitignore").write_text("stdout\nstderr\n")
    if subprocess.run(["git", "init", "-q", str(folder)], check=False).returncode != 0:
        pytest.skip("git is not usable here")


def env_digest(prefix: Path) -> str:
    """Every path, mode and byte of an env: it must stay as built."""
    digest = hashlib.sha256()
    for folder, dirs, names in os.walk(prefix):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            digest.update(str(path.relative_to(prefix)).encode())
            if path.is_symlink():
                digest.update(str(path.readlink()).encode())
            else:
                digest.update(oct(path.stat().st_mode).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("mode", ["wheel", "editable"])
def test_c_extension_installed_in_every_cell(
    mode: str,
    pytester: pytest.Pytester,
    local_channel: LocalChannel,
    warm_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if missing := {"3.9", "3.11", "3.12"} - set(local_channel.pythons):
        pytest.skip(f"Python {', '.join(sorted(missing))} is not on this machine")
    project = pytester.path
    shutil.copytree(EXAMPLE, project, dirs_exist_ok=True)
    git_checkout(project)
    out = tmp_path_factory.mktemp("out")
    result, first = run(pytester, warm_cache, local_channel, out, "--conda-matrix-install", mode)
    assert result.ret == 0, result.stdout.str()
    assert set(first) == {"py3.9-cpu", "py3.11-cpu", "py3.12-cpu"}
    envs = {cell: env_digest(Path(c["env_prefix"])) for cell, c in first.items()}
    for cell in first.values():
        assert cell["status"] == "passed" and cell["counts"]["passed"] == 5, cell["message"]

    # unchanged: nothing is rebuilt, neither the envs nor the project
    result, second = run(pytester, warm_cache, local_channel, out, "--conda-matrix-install", mode)
    assert result.ret == 0, result.stdout.str()
    for cell in second.values():
        assert (cell["env_status"], cell["env_reason"]) == ("reused", "")

    # a changed source rebuilds the project's wheel of each cell, not the envs
    with (project / "src" / "cext" / "_add.c").open("a") as f:
        f.write("/* changed */\n")
    result, third = run(pytester, warm_cache, local_channel, out, "--conda-matrix-install", mode)
    assert result.ret == 0, result.stdout.str()
    what = "editable wheel" if mode == "editable" else "wheel"
    for cell in third.values():
        assert cell["env_status"] == "reused"
        assert cell["env_reason"] == f"project {what} rebuilt: sources changed: src/cext/_add.c"
    result.stdout.fnmatch_lines([f"*project {what} rebuilt: sources changed*"])
    assert {cell: env_digest(Path(c["env_prefix"])) for cell, c in third.items()} == envs


PURE_TESTS = """
import importlib.metadata, shutil, subprocess

def test_metadata_and_script():
    assert importlib.metadata.version("puretool") == "1.2"
    exe = shutil.which("puretool")
    assert exe and subprocess.run([exe], capture_output=True, text=True).stdout == "pure\\n"
"""


def pure_project(pytester: pytest.Pytester, local_channel: LocalChannel, extra: str = "") -> None:
    pytester.makepyprojecttoml(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=64"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "puretool"
            version = "1.2"
            {extra}

            [project.scripts]
            puretool = "puretool:main"

            [tool.condamatrix]
            python = ["3.11", "3.12"]
            channels = [{str(local_channel.path)!r}]
            dependencies = ["pytest", "setuptools"]
            """
        )
    )
    pkg = pytester.mkdir("src") / "puretool"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("def main():\n    print('pure')\n")
    pytester.makepyfile(test_pure=PURE_TESTS)
    git_checkout(pytester.path)


@pytest.mark.parametrize("mode", ["wheel", "editable", "none"])
def test_metadata_and_scripts_in_every_mode(
    mode: str,
    pytester: pytest.Pytester,
    local_channel: LocalChannel,
    warm_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if missing := {"3.11", "3.12"} - set(local_channel.pythons):
        pytest.skip(f"Python {', '.join(sorted(missing))} is not on this machine")
    pure_project(pytester, local_channel)
    out = tmp_path_factory.mktemp("out")
    result, cells = run(pytester, warm_cache, local_channel, out, "--conda-matrix-install", mode)
    assert result.ret == 0, result.stdout.str()
    assert [c["status"] for c in cells.values()] == ["passed", "passed"]
    if mode != "none":
        # a pure wheel is built once and shared: one cell built it, the other reused it
        notes = sorted(c["env_reason"].rpartition("; ")[2] for c in cells.values())
        what = "editable wheel" if mode == "editable" else "wheel"
        assert notes[-1] == f"project {what} built" and "project" not in notes[0]


def test_missing_requirement_is_a_cell_error_with_its_fix(
    pytester: pytest.Pytester,
    local_channel: LocalChannel,
    warm_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if "3.12" not in local_channel.pythons:
        pytest.skip("Python 3.12 is not on this machine")
    pure_project(
        pytester, local_channel, extra="dependencies = [\"numpy>=1.24; python_version >= '3.12'\"]"
    )
    out = tmp_path_factory.mktemp("out")
    result, cells = run(pytester, warm_cache, local_channel, out)
    assert result.ret != 0
    assert cells["py3.11-cpu"]["status"] == "passed"  # the marker leaves 3.11 out
    bad = cells["py3.12-cpu"]
    assert bad["status"] == "env-error"
    assert "numpy>=1.24" in bad["message"]
    assert "add 'numpy >=1.24' to dependencies (conda)" in bad["message"]


def test_missing_backend_names_it_and_the_fix(
    pytester: pytest.Pytester,
    local_channel: LocalChannel,
    warm_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if "3.12" not in local_channel.pythons:
        pytest.skip("Python 3.12 is not on this machine")
    pure_project(pytester, local_channel)
    text = (pytester.path / "pyproject.toml").read_text()
    text = text.replace(
        'requires = ["setuptools>=64"]', 'requires = ["condamatrix-no-such-backend"]'
    )
    text = text.replace("setuptools.build_meta", "no_such_backend")
    (pytester.path / "pyproject.toml").write_text(text.replace('"3.11", ', ""))
    out = tmp_path_factory.mktemp("out")
    result, cells = run(pytester, warm_cache, local_channel, out)
    assert result.ret != 0
    message = cells["py3.12-cpu"]["message"]
    assert "'no_such_backend' needs condamatrix-no-such-backend" in message
    assert "add 'condamatrix-no-such-backend' to dependencies" in message


def _pypi_reachable() -> bool:
    import socket

    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
    except OSError:
        return False
    return True


def test_backend_missing_from_the_env_comes_from_the_index(
    pytester: pytest.Pytester,
    local_channel: LocalChannel,
    warm_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if "3.12" not in local_channel.pythons:
        pytest.skip("Python 3.12 is not on this machine")
    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable: the backend cannot come from the index")
    pure_project(pytester, local_channel, extra='description = "flit-built"')
    text = (pytester.path / "pyproject.toml").read_text()
    text = text.replace('requires = ["setuptools>=64"]', 'requires = ["flit_core>=3.9,<4"]')
    text = text.replace("setuptools.build_meta", "flit_core.buildapi")
    text = text.replace('"3.11", ', "").replace('"pytest", "setuptools"', '"pytest"')
    (pytester.path / "pyproject.toml").write_text(text)
    shutil.move(pytester.path / "src" / "puretool", pytester.path / "puretool")
    out = tmp_path_factory.mktemp("out")
    result, cells = run(pytester, warm_cache, local_channel, out, "--conda-matrix-install", "wheel")
    assert result.ret == 0, result.stdout.str()
    assert cells["py3.12-cpu"]["env_reason"].endswith("project wheel built")


def test_condamatrix_run_sees_the_project_installed_as_the_matrix_installs_it(
    pytester: pytest.Pytester, local_channel: LocalChannel, warm_cache: Path
) -> None:
    """`condamatrix run` (and `shell`) give a cell's command the project as a matrix run
    installs it: its metadata and console scripts from the wheel, not the sources."""
    if "3.12" not in local_channel.pythons:
        pytest.skip("Python 3.12 is not on this machine")
    pure_project(pytester, local_channel)
    code = (
        "import importlib.metadata, json, shutil, puretool; print(json.dumps(["
        "importlib.metadata.version('puretool'), puretool.__file__, shutil.which('puretool')]))"
    )
    argv = [*CONDAMATRIX, "run", "py3.12-cpu"]
    done = subprocess.run(
        [*argv, "--cache-dir", str(warm_cache), "--", "python", "-c", code],
        cwd=pytester.path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    version, module, script = json.loads(done.stdout.strip().splitlines()[-1])
    assert version == "1.2"
    assert not Path(module).is_relative_to(pytester.path / "src")  # installed, not the sources
    assert script and Path(script).parent.name == "bin" and "overlays" in Path(script).parts
