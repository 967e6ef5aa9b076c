"""The conda / mamba / micromamba engines: finding the tool, its command, its errors, the cache.

Most tests here use FAKE executables: small Python scripts written into ``tmp_path`` and put
on PATH, named ``conda``, ``mamba`` or ``micromamba``, that print a version, record how
they were called and either fail or lay out a minimal prefix (``conda-meta`` records and a
``bin/python`` that runs this interpreter). They check what this project controls (the
command line, the environment, error mapping, in-place builds in the cache, engine
selection from config and command line) without the real tools, which this machine lacks.
The real builds at the end run only where one of the real tools is on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import textwrap
from pathlib import Path
from typing import Any, Protocol

import pytest

from pytest_condamatrix.config import ENGINES, parse_config
from pytest_condamatrix.envs.cache import EnvCache, builds_in_place
from pytest_condamatrix.envs.engines import make_engine
from pytest_condamatrix.envs.engines.cli_engines import (
    CLI_ENGINES,
    CliEngine,
    channel_argument,
    find_executable,
    read_conda_meta,
    read_version,
)
from pytest_condamatrix.envs.spec import EnvSpec
from pytest_condamatrix.envs.stamp import STAMP
from pytest_condamatrix.errors import ConfigError, EnvBuildError, ExitCode
from pytest_condamatrix.localchannel import LocalChannel
from pytest_condamatrix.options import VALUE_OPTIONS

FAKE_TOOL = r'''#!{python}
"""A FAKE {name} for tests: prints a version, records its call, then fails or makes a prefix."""
import json, os, sys
args = sys.argv[1:]
if args == ["--version"]:
    print({version!r})
    sys.exit(0)
log = os.environ.get("FAKE_CONDA_LOG")
if log:
    with open(log, "a") as fh:
        fh.write(json.dumps({{"argv": sys.argv, "cuda": os.environ.get("CONDA_OVERRIDE_CUDA")}}) + "\n")
fail = os.environ.get("FAKE_CONDA_FAIL")
if fail:
    for i in range(50):
        print(f"solving line {{i}}")
    print(fail, file=sys.stderr)
    sys.exit(3)
prefix = args[args.index("--prefix") + 1]
os.makedirs(os.path.join(prefix, "conda-meta"))
os.makedirs(os.path.join(prefix, "bin"))
if not os.environ.get("FAKE_CONDA_NO_PYTHON"):
    with open(os.path.join(prefix, "bin", "python"), "w") as fh:
        fh.write("#!/bin/sh\nexec {python} \"$@\"\n")
    os.chmod(os.path.join(prefix, "bin", "python"), 0o755)
packages = [("python", "3.12.0", "fake_0", ["bin/python"], [])]
packages += [tuple(p.split("=")) + ([], []) for p in os.environ.get("FAKE_CONDA_EXTRA", "").split()]
for name, version, build, files, depends in packages:
    record = {{"name": name, "version": version, "build": build, "files": files,
              "depends": depends}}
    with open(os.path.join(prefix, "conda-meta", f"{{name}}-{{version}}-{{build}}.json"), "w") as fh:
        json.dump(record, fh)
print("done")
'''


class MakeTool(Protocol):
    """The :func:`fake_tool` fixture: writes a fake conda-like tool, returns its path."""

    def __call__(self, name: str = ..., version: str = ...) -> Path: ...


@pytest.fixture
def fake_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeTool:
    """Write a FAKE tool into a bin folder put first on PATH; returns its path."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_CONDA_LOG", str(tmp_path / "calls.jsonl"))
    for variable in ("CONDA_EXE", "MAMBA_EXE", "FAKE_CONDA_FAIL", "FAKE_CONDA_EXTRA"):
        monkeypatch.delenv(variable, raising=False)

    def make(name: str = "conda", version: str = "conda 24.5.0") -> Path:
        path = bin_dir / name
        path.write_text(FAKE_TOOL.format(python=sys.executable, name=name, version=version))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    return make


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def spec_for(
    cuda: str = "cpu",
    *,
    engine: str = "conda 24.5.0",
    specs: tuple[str, ...] = ("python 3.12.*", "pytest"),
) -> EnvSpec:
    return EnvSpec(
        cell_id=f"py3.12-{'cpu' if cuda == 'cpu' else 'cu' + cuda}",
        engine=engine,
        platform="linux-64",
        channels=("conda-forge", "/srv/channel"),
        specs=specs,
        virtual_packages=(),
        cuda=cuda,
    )


# -- finding the tool ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLI_ENGINES)
def test_missing_tool_names_the_engine_and_how_to_install_it(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    monkeypatch.delenv("MAMBA_EXE", raising=False)
    with pytest.raises(EnvBuildError) as info:
        find_executable(name)
    text = str(info.value)
    assert f"the {name} engine needs the `{name}` command, and it is not on PATH" in text
    assert "install" in text and "engine = 'rattler'" in text
    assert info.value.exit_code == ExitCode.ENV_ERROR


def test_conda_is_found_through_conda_exe_when_only_a_shell_function(
    fake_tool: MakeTool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = fake_tool("conda")
    hidden = tmp_path / "miniforge" / "bin"
    hidden.mkdir(parents=True)
    shutil.move(tool, hidden / "conda")
    monkeypatch.setenv("CONDA_EXE", str(hidden / "conda"))
    assert find_executable("conda") == hidden / "conda"


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("conda 24.5.0", "24.5.0"),
        ("2.0.5", "2.0.5"),
        ("mamba 1.5.8\nconda 24.3.0", "1.5.8"),
        ("micromamba 2.1.0rc1", "2.1.0rc1"),
    ],
)
def test_version_is_read_from_the_first_line(
    fake_tool: MakeTool, output: str, version: str
) -> None:
    tool = fake_tool("mamba", version=output)
    assert read_version("mamba", tool) == version


def test_engine_id_is_name_and_version_and_keys_use_rattler_host_detection(
    fake_tool: MakeTool, tmp_path: Path
) -> None:
    fake_tool("micromamba", version="2.0.5")
    engine = make_engine("micromamba", tmp_path)
    assert isinstance(engine, CliEngine)
    assert engine.id == "micromamba 2.0.5"
    rattler = make_engine("rattler", tmp_path)
    assert engine.platform == rattler.platform
    assert engine.virtual_packages("cpu") == rattler.virtual_packages("cpu")
    assert "__cuda=12.1=0" in engine.virtual_packages("12.1")
    assert builds_in_place(engine.build) and not builds_in_place(rattler.build)


def test_unusable_tool_is_a_clear_error(fake_tool: MakeTool, tmp_path: Path) -> None:
    broken = tmp_path / "fake-bin" / "conda"
    broken.write_text("#!/bin/sh\necho 'Traceback: broken install' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(EnvBuildError, match=r"the conda engine cannot tell its version"):
        read_version("conda", broken)


# -- the command --------------------------------------------------------------------------------


def test_create_command_per_tool(fake_tool: MakeTool, tmp_path: Path) -> None:
    prefix = tmp_path / "envs" / "py3.12-cpu-0123abcd"
    for name in CLI_ENGINES:
        engine = CliEngine(name, Path(f"/opt/bin/{name}"), "1.0")
        argv = engine.create_command(spec_for(), prefix)
        expected = [f"/opt/bin/{name}", "create", "--yes", "--prefix", str(prefix)]
        if name == "conda":
            expected.append("--no-default-packages")  # condarc's create_default_packages
        expected += ["--override-channels", "--channel", "conda-forge"]
        expected += ["--channel", "file:///srv/channel", "python 3.12.*", "pytest"]
        assert argv == expected
    explicit = tmp_path / "explicit.txt"
    argv = CliEngine("micromamba", Path("micromamba"), "2.0").create_command(
        spec_for(), prefix, explicit
    )
    assert argv[-2:] == ["--file", str(explicit)] and "--channel" not in argv


def test_channel_argument() -> None:
    assert channel_argument("conda-forge") == "conda-forge"
    assert channel_argument("https://repo.example/ch") == "https://repo.example/ch"
    assert channel_argument("/srv/my channel") == "file:///srv/my%20channel"


def test_cuda_override_is_the_variant_and_empty_for_cpu_cells() -> None:
    engine = CliEngine("conda", Path("conda"), "24.5.0")
    base = {"PATH": "/bin", "CONDA_OVERRIDE_CUDA": "12.4"}  # e.g. set by a GPU runner
    assert engine.environment(spec_for("cpu"), base)["CONDA_OVERRIDE_CUDA"] == ""
    assert engine.environment(spec_for("11.8"), base)["CONDA_OVERRIDE_CUDA"] == "11.8"
    assert engine.environment(spec_for("11.8"), base)["PATH"] == "/bin"


# -- building -----------------------------------------------------------------------------------


def test_build_runs_the_tool_and_reads_conda_meta(fake_tool: MakeTool, tmp_path: Path) -> None:
    fake_tool("conda")
    engine = CliEngine.find("conda")
    prefix = tmp_path / "env"
    packages = engine.build(spec_for("12.1"), prefix, prefix)
    assert packages == ["python=3.12.0=fake_0"]
    (call,) = calls(tmp_path)
    assert call["cuda"] == "12.1"
    assert call["argv"][1:5] == ["create", "--yes", "--prefix", str(prefix)]
    assert [p.name for p in read_conda_meta(prefix)] == ["python"]


def test_failed_build_names_engine_cell_and_command_and_shows_the_last_lines(
    fake_tool: MakeTool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool("mamba", version="mamba 1.5.8")
    monkeypatch.setenv("FAKE_CONDA_FAIL", "nothing provides requested no-such-package")
    engine = CliEngine.find("mamba")
    with pytest.raises(EnvBuildError) as info:
        engine.build(spec_for(), tmp_path / "env", tmp_path / "env")
    text = str(info.value)
    assert "mamba 1.5.8 could not build the env of py3.12-cpu" in text
    assert "exited with code 3" in text
    assert "CONDA_OVERRIDE_CUDA= " in text and "create --yes --prefix" in text
    assert "nothing provides requested no-such-package" in text
    assert "solving line 49" in text and "solving line 5\n" not in text  # the tail only


def test_cpu_cell_with_cuda_packages_fails(
    fake_tool: MakeTool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool("conda")
    monkeypatch.setenv("FAKE_CONDA_EXTRA", "cuda-cudart=12.1.105=0")
    engine = CliEngine.find("conda")
    with pytest.raises(EnvBuildError, match=r"CPU cell py3.12-cpu would contain CUDA packages"):
        engine.build(spec_for("cpu"), tmp_path / "env", tmp_path / "env")
    # the same in a CUDA cell is what it is for
    assert "cuda-cudart=12.1.105=0" in engine.build(
        spec_for("12.1"), tmp_path / "env2", tmp_path / "env2"
    )


def test_env_without_python_is_an_error(
    fake_tool: MakeTool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool("conda")
    monkeypatch.setenv("FAKE_CONDA_NO_PYTHON", "1")
    with pytest.raises(EnvBuildError, match=r"without a Python interpreter"):
        CliEngine.find("conda").build(spec_for(), tmp_path / "env", tmp_path / "env")


# -- in-place builds in the cache ---------------------------------------------------------------


def test_cache_builds_cli_envs_in_place_and_the_stamp_publishes_them(
    fake_tool: MakeTool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool("conda")
    engine = CliEngine.find("conda")
    cache = EnvCache(tmp_path / "cache")
    spec = spec_for(engine=engine.id)
    final = cache.prefix_for(spec)
    with cache.use(spec, engine.build) as env:
        assert env.status == "built" and env.prefix == final
        assert (final / STAMP).is_file()
    (call,) = calls(tmp_path)
    assert call["argv"][4] == str(final)  # built where it is used
    assert not list((tmp_path / "cache" / "tmp").iterdir())
    with cache.use(spec, engine.build) as env:
        assert env.status == "reused"

    # A build that fails half-way (here: after the tool made the prefix) leaves nothing.
    monkeypatch.setenv("FAKE_CONDA_EXTRA", "cuda-cudart=12.1.105=0")
    other = spec_for(engine=engine.id, specs=("python 3.12.*", "torch"))
    with pytest.raises(EnvBuildError), cache.use(other, engine.build):
        pass
    assert not cache.prefix_for(other).exists()

    # A folder left without a stamp (a killed in-place build) is never reused.
    monkeypatch.delenv("FAKE_CONDA_EXTRA")
    shutil.rmtree(final)
    (final / "conda-meta").mkdir(parents=True)
    with cache.use(spec, engine.build) as env:
        assert env.status == "built" and "incomplete env (no stamp)" in env.reason


# -- selection: config and command line ---------------------------------------------------------


def test_config_accepts_the_cli_engines() -> None:
    assert set(CLI_ENGINES) < set(ENGINES)
    for name in ENGINES:
        config = parse_config({"python": ["3.12"], "engine": name}, source=None, root=Path())
        assert config.engine == name
    with pytest.raises(ConfigError, match=r"did you mean 'micromamba'"):
        parse_config({"python": ["3.12"], "engine": "micromamba2"}, source=None, root=Path())


def test_engine_option_is_stripped_from_cell_arguments() -> None:
    assert "--conda-matrix-engine" in VALUE_OPTIONS


def write_project(pytester: pytest.Pytester, engine: str, channel: str = "conda-forge") -> None:
    pytester.makepyprojecttoml(
        textwrap.dedent(
            f"""
            [tool.condamatrix]
            python = ["3.12"]
            channels = [{channel!r}]
            dependencies = ["pytest"]
            engine = {engine!r}
            """
        )
    )
    pytester.makepyfile(
        test_things="""
import os, sys
def test_in_the_cell():
    assert os.environ["CONDAMATRIX_CELL"] == "py3.12-cpu"
"""
    )


def test_matrix_run_with_a_missing_engine_says_so(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    monkeypatch.delenv("MAMBA_EXE", raising=False)
    write_project(pytester, "micromamba")
    result = pytester.runpytest_subprocess(
        "--conda-matrix", "--conda-matrix-cache-dir", str(tmp_path / "cache")
    )
    assert result.ret == ExitCode.ENV_ERROR
    result.stderr.fnmatch_lines(
        ["*the micromamba engine needs the `micromamba` command, and it is not on PATH*"]
    )
    assert "Traceback" not in result.stderr.str()


def test_matrix_run_through_a_fake_conda_end_to_end(
    pytester: pytest.Pytester, fake_tool: MakeTool, tmp_path: Path
) -> None:
    """Config says rattler, the command line says conda: the FAKE conda builds the env in place
    (its python runs this interpreter), the cell's tests run in it, and it is reused."""
    fake_tool("conda")
    write_project(pytester, "rattler")
    cache = tmp_path / "cache"
    args = ["--conda-matrix", "--conda-matrix-engine", "conda", "--conda-matrix-cache-dir"]
    for expected in ("built", "reused"):
        out = tmp_path / f"{expected}.json"
        result = pytester.runpytest_subprocess(
            *args, str(cache), "--conda-matrix-json", str(out), "-p", "no:cacheprovider"
        )
        assert result.ret == 0, result.stdout.str() + result.stderr.str()
        (cell,) = json.loads(out.read_text())["cells"]
        assert cell["status"] == "passed" and cell["env_status"] == expected
        assert cell["packages"] == ["python=3.12.0=fake_0"]
        assert Path(cell["env_prefix"]).parent == cache / "envs"
    assert len(calls(tmp_path)) == 1
    data = json.loads((tmp_path / "built.json").read_text())
    assert data["host"]["engine"] == "conda 24.5.0"


# -- real tools, where installed ------------------------------------------------------------------

REAL_TOOLS = [name for name in CLI_ENGINES if shutil.which(name)]


@pytest.mark.integration
@pytest.mark.skipif(not REAL_TOOLS, reason="conda/mamba/micromamba not on PATH")
@pytest.mark.parametrize("name", REAL_TOOLS or ["none"])
def test_real_tool_builds_a_cell_from_the_local_channel(
    name: str, pytester: pytest.Pytester, local_channel: LocalChannel, tmp_path: Path
) -> None:
    channel = str(local_channel.path)
    write_project(pytester, name, channel)
    out = tmp_path / "results.json"
    result = pytester.runpytest_subprocess(
        "--conda-matrix",
        "--conda-matrix-cache-dir",
        str(tmp_path / "cache"),
        "--conda-matrix-json",
        str(out),
        "-p",
        "no:cacheprovider",
        timeout=900,
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    (cell,) = json.loads(out.read_text())["cells"]
    assert cell["status"] == "passed" and cell["env_status"] == "built"
    assert any(p.startswith("python=3.12") for p in cell["packages"])
