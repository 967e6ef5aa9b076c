"""The local conda channel: unit tests of its pieces, and integration tests that build it
from this machine's interpreters, then solve, install and run real environments."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
import rattler
import rattler.package_streaming
from rattler.exceptions import SolverError

from pytest_condamatrix.localchannel import (
    ChannelBuildError,
    LocalChannel,
    build_local_channel,
    find_interpreters,
)
from pytest_condamatrix.localchannel import channel as channel_module
from pytest_condamatrix.localchannel.conda_package import PackageFile, PackageMeta, write_conda
from pytest_condamatrix.localchannel.cuda_packages import CUDA_VERSIONS, cuda_packages
from pytest_condamatrix.localchannel.wheels import (
    WHEEL_PINS,
    conda_depends,
    conda_name,
    marker_environment,
    pep440_to_conda,
)

PYTHONS = ("3.9", "3.11", "3.12")
IMPORTS = "import sqlite3, ssl, ctypes, json, zlib, bz2, lzma, hashlib, decimal, venv, ensurepip"


# --- unit tests --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("typing_extensions", "typing-extensions"),
        ("Pygments", "pygments"),
        ("iniconfig", "iniconfig"),
        ("foo__bar-_baz", "foo-bar-baz"),
        ("jaraco.functools", "jaraco.functools"),  # conda-forge keeps the dot
    ],
)
def test_conda_name(name: str, expected: str) -> None:
    assert conda_name(name) == expected


@pytest.mark.parametrize(
    ("pep440", "conda", "inside", "outside"),
    [
        ("", "", ["0.1"], []),
        ("<2,>=1.5", "<2,>=1.5", ["1.5", "1.9.9"], ["1.4", "2.0"]),
        ("==1.2", "==1.2", ["1.2"], ["1.2.1", "1.3"]),
        ("==1.2.*", "1.2.*", ["1.2", "1.2.7"], ["1.3"]),
        ("!=1.3", "!=1.3", ["1.2"], ["1.3"]),
        ("~=1.4.5", ">=1.4.5,1.4.*", ["1.4.5", "1.4.9"], ["1.4.4", "1.5.0"]),
        ("~=2.2", ">=2.2,2.*", ["2.2", "2.9"], ["2.1", "3.0"]),
        (">=4.6.0", ">=4.6.0", ["4.16.0"], ["4.5"]),
    ],
)
def test_pep440_to_conda(pep440: str, conda: str, inside: list[str], outside: list[str]) -> None:
    assert pep440_to_conda(pep440) == conda
    if conda:
        spec = rattler.VersionSpec(conda)  # the conda solver reads the translation
        assert all(spec.matches(rattler.Version(v)) for v in inside)
        assert not any(spec.matches(rattler.Version(v)) for v in outside)


def test_pep440_to_conda_rejects_garbage() -> None:
    with pytest.raises(ChannelBuildError, match="cannot translate"):
        pep440_to_conda(">>1")


PYTEST_8_REQUIRES = (
    'colorama>=0.4; sys_platform == "win32"',
    'exceptiongroup>=1; python_version < "3.11"',
    "iniconfig>=1",
    "packaging>=20",
    "pluggy<2,>=1.5",
    "pygments>=2.7.2",
    'tomli>=1; python_version < "3.11"',
    'argcomplete; extra == "dev"',
    'requests; extra == "dev"',
)


def test_conda_depends_evaluates_markers_per_python() -> None:
    on_windows = ("colorama >=0.4",) if sys.platform == "win32" else ()
    common = ("iniconfig >=1", "packaging >=20", "pluggy <2,>=1.5", "pygments >=2.7.2")
    old = conda_depends(PYTEST_8_REQUIRES, "3.9.18")
    new = conda_depends(PYTEST_8_REQUIRES, "3.12.1")
    assert old == tuple(sorted((*on_windows, *common, "exceptiongroup >=1", "tomli >=1")))
    assert new == tuple(sorted((*on_windows, *common)))
    for spec in old:
        rattler.MatchSpec(spec)  # valid conda match specs


def test_conda_depends_normalises_and_merges_names() -> None:
    requires = [
        "Typing_Extensions>=4.6; python_version < '3.13'",
        "typing-extensions<5; python_version < '3.13'",
        "Foo[bar]",
    ]
    assert conda_depends(requires, "3.12.1") == ("foo", "typing-extensions >=4.6,<5")
    assert conda_depends(requires, "3.13.0") == ("foo",)


def test_conda_depends_rejects_url_requirements() -> None:
    with pytest.raises(ChannelBuildError, match="URL"):
        conda_depends(["foo @ https://example.invalid/foo.whl"], "3.12.1")


def test_marker_environment_is_the_target_python() -> None:
    env = marker_environment("3.9.18")
    assert env["python_version"] == "3.9"
    assert env["python_full_version"] == "3.9.18"
    assert env["implementation_name"] == "cpython"


def test_wheel_pins_are_exact_and_newest_first() -> None:
    from packaging.version import Version

    for pin in WHEEL_PINS:
        versions = [Version(v) for v in pin.versions]
        assert versions == sorted(versions, reverse=True), pin
        assert pin.project == conda_name(pin.project)


def _meta() -> PackageMeta:
    return PackageMeta(
        name="demo-pkg",
        version="1.0",
        build="py312_0",
        subdir="noarch",
        noarch="python",
        timestamp_ms=1_700_000_000_000,
        depends=("python 3.12.*",),
        entry_points=("demo = demo_pkg:main",),
    )


def test_write_conda_is_reproducible_and_readable(tmp_path: Path) -> None:
    source = tmp_path / "data.txt"
    source.write_text(f"prefix is {tmp_path}/x\n")
    files = [
        PackageFile("site-packages/demo_pkg/__init__.py", data=b"def main():\n    return 0\n"),
        PackageFile("site-packages/demo_pkg/data.txt", source=source, prefix=str(tmp_path)),
        PackageFile("site-packages/demo_pkg/link.txt", symlink="data.txt"),
    ]
    first = write_conda(tmp_path / "a", _meta(), files)
    second = write_conda(tmp_path / "b", _meta(), list(reversed(files)))
    assert first.name == "demo-pkg-1.0-py312_0.conda"
    assert first.read_bytes() == second.read_bytes()
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temp file left

    with zipfile.ZipFile(first) as zf:
        names = zf.namelist()
        assert names[0] == "metadata.json"
        assert json.loads(zf.read("metadata.json")) == {"conda_pkg_format_version": 2}
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    out = tmp_path / "extracted"
    rattler.package_streaming.extract(first, out)
    index = json.loads((out / "info" / "index.json").read_text())
    assert index["noarch"] == "python"
    assert index["timestamp"] == 1_700_000_000_000
    assert json.loads((out / "info" / "link.json").read_text())["noarch"]["entry_points"] == [
        "demo = demo_pkg:main"
    ]
    paths = {
        p.relative_path.as_posix(): p for p in rattler.PathsJson.from_package_directory(out).paths
    }
    text = paths["site-packages/demo_pkg/data.txt"]
    assert text.prefix_placeholder is not None
    assert text.prefix_placeholder.placeholder == str(tmp_path)
    assert paths["site-packages/demo_pkg/__init__.py"].prefix_placeholder is None
    assert (out / "site-packages/demo_pkg/link.txt").is_symlink()


def test_write_conda_rejects_duplicate_paths(tmp_path: Path) -> None:
    files = [PackageFile("a", data=b"1"), PackageFile("a", data=b"2")]
    with pytest.raises(ChannelBuildError, match="two files"):
        write_conda(tmp_path, _meta(), files)
    assert list(tmp_path.iterdir()) == []


def test_cuda_packages_metadata() -> None:
    packages = {meta.filename: meta for _, meta, _ in cuda_packages("test")}
    versions = [m for m in packages.values() if m.name == "cuda-version"]
    assert sorted(m.version for m in versions) == sorted(CUDA_VERSIONS)
    for meta in versions:
        assert meta.constrains == (f"__cuda >={meta.version}",)
        assert meta.noarch == "generic"
    demos = {m.build.split("_")[0]: m for m in packages.values() if m.name == "cudademo"}
    assert set(demos) == {"cpu", "cuda118", "cuda121", "cuda124"}
    assert demos["cpu"].depends == ("python",)
    assert demos["cpu"].constrains == ()
    assert "cuda-version 12.1.*" in demos["cuda121"].depends
    assert "__cuda" in demos["cuda121"].depends
    assert demos["cuda124"].build_number > demos["cuda118"].build_number > 0


def test_find_interpreters_rejects_bad_versions() -> None:
    with pytest.raises(ValueError, match="minor version"):
        find_interpreters(["3"])


# --- channels without interpreters (fast: only the cuda packages) ------------------------


def _index_names(channel: Path, subdir: str) -> set[str]:
    repodata = json.loads((channel / subdir / "repodata.json").read_text())
    return set(repodata.get("packages.conda", {})) | set(repodata.get("packages", {}))


def test_channel_without_pythons_reports_missing(tmp_path: Path) -> None:
    messages: list[str] = []
    chan = build_local_channel(tmp_path / "chan", ("3.99",), progress=messages.append)
    assert chan.pythons == ()
    assert chan.missing == ("3.99",)
    assert any("3.99" in m and "skipped" in m for m in messages)
    assert len(chan.packages) == len(CUDA_VERSIONS) * 2 + 1
    assert _index_names(chan.path, "noarch") == set(chan.packages)
    assert (chan.path / str(rattler.Subdir.current()) / "repodata.json").is_file()
    assert chan.url.startswith("file://")
    (chan.path / "noarch" / "repodata.json").unlink()
    messages.clear()
    assert build_local_channel(tmp_path / "chan", ("3.99",), progress=messages.append) == chan
    assert _index_names(chan.path, "noarch") == set(chan.packages)
    assert any("indexing" in m for m in messages)


def test_changed_builder_replaces_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = build_local_channel(tmp_path / "chan", ())
    monkeypatch.setattr(channel_module, "BUILDER_VERSION", "changed-for-test")
    second = build_local_channel(tmp_path / "chan", ())
    assert len(second.packages) == len(first.packages)
    assert set(first.packages).isdisjoint(second.packages)  # new content, new file names
    on_disk = {p.name for p in (tmp_path / "chan" / "noarch").glob("*.conda")}
    assert on_disk == set(second.packages)
    assert _index_names(second.path, "noarch") == set(second.packages)


def test_build_from_inside_an_event_loop(tmp_path: Path) -> None:
    async def main() -> LocalChannel:
        return build_local_channel(tmp_path / "chan", ())

    assert len(asyncio.run(main()).packages) == len(CUDA_VERSIONS) * 2 + 1


def test_missing_zstandard_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)  # makes `import zstandard` fail
    with pytest.raises(ChannelBuildError, match=r"pytest-condamatrix\[channel\]"):
        write_conda(tmp_path, _meta(), [])


def test_missing_patchelf_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ChannelBuildError, match=r"patchelf.*pytest-condamatrix\[channel\]"):
        channel_module._find_patchelf()


_CONCURRENT = """
import sys
import sysconfig
from pathlib import Path
from pytest_condamatrix.localchannel import build_local_channel
chan = build_local_channel(Path(sys.argv[1]), ())
print(len(chan.packages))
"""


def test_concurrent_builds_share_one_channel(tmp_path: Path) -> None:
    dest = tmp_path / "chan"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONCURRENT, str(dest)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    assert {out.strip() for out, _ in results} == {str(len(CUDA_VERSIONS) * 2 + 1)}, results
    assert not list(dest.rglob(".*.tmp"))


# --- integration: the real channel -------------------------------------------------------


@pytest.fixture(scope="session")
def local_channel(tmp_path_factory: pytest.TempPathFactory) -> LocalChannel:
    pytest.importorskip("zstandard", reason="needs the 'channel' extra")
    found = find_interpreters(PYTHONS)
    if not found:
        pytest.skip(f"no CPython {', '.join(PYTHONS)} interpreter on this machine")
    cache = os.environ.get("CONDAMATRIX_TEST_CACHE")
    base = Path(cache) if cache else tmp_path_factory.mktemp("condamatrix-cache")
    return build_local_channel(base / "channel", PYTHONS)


@pytest.fixture(scope="session")
def package_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pkgs")


def _need(chan: LocalChannel, minor: str) -> None:
    if minor not in chan.pythons:
        pytest.skip(f"no CPython {minor} on this machine")


def _newest(chan: LocalChannel) -> str:
    if not chan.pythons:
        pytest.skip("no CPython interpreter on this machine")
    return chan.pythons[-1]


def _cuda(version: str) -> rattler.GenericVirtualPackage:
    return rattler.GenericVirtualPackage(
        rattler.PackageName("__cuda"), rattler.Version(version), rattler.BuildString("0")
    )


def _solve(
    chan: LocalChannel,
    specs: Sequence[str],
    virtual_packages: Sequence[rattler.GenericVirtualPackage] = (),
) -> dict[str, rattler.RepoDataRecord]:
    records = asyncio.run(
        rattler.solve(
            [rattler.Channel(chan.url)], list(specs), virtual_packages=list(virtual_packages)
        )
    )
    return {r.name.normalized: r for r in records}


def _install(
    records: Iterable[rattler.RepoDataRecord],
    prefix: Path,
    cache: Path,
    final: Path | None = None,
) -> None:
    asyncio.run(
        rattler.install(
            list(records),
            target_prefix=prefix,
            cache_dir=cache,
            show_progress=False,
            alternative_target_prefix=final,
        )
    )


def _run(argv: Sequence[str | Path], cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=300, cwd=cwd
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.integration
def test_find_interpreters_finds_working_pythons() -> None:
    found = find_interpreters(PYTHONS)
    if set(found) != set(PYTHONS):
        pytest.skip(f"this machine lacks CPython {sorted(set(PYTHONS) - set(found))}")
    for minor, exe in found.items():
        assert exe.is_absolute()
        out = _run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        assert out.strip() == minor


@pytest.mark.integration
def test_channel_contents(local_channel: LocalChannel) -> None:
    subdir = str(rattler.Subdir.current())
    assert local_channel.missing == tuple(v for v in PYTHONS if v not in local_channel.pythons)
    names = set(local_channel.packages)
    indexed = _index_names(local_channel.path, "noarch") | _index_names(local_channel.path, subdir)
    assert indexed == names
    for minor in local_channel.pythons:
        assert any(n.startswith(f"python-{minor}.") for n in names), minor
        tag = "py" + minor.replace(".", "")
        assert any(n.startswith("pytest-") and f"-{tag}_" in n for n in names), minor
    assert sum(n.startswith("cuda-version-") for n in names) == len(CUDA_VERSIONS)
    assert sum(n.startswith("cudademo-") for n in names) == len(CUDA_VERSIONS) + 1


@pytest.mark.integration
def test_second_build_is_a_noop(local_channel: LocalChannel) -> None:
    files = sorted(local_channel.path.glob("*/*"))
    before = {p: p.stat().st_mtime_ns for p in files}
    messages: list[str] = []
    start = time.perf_counter()
    again = build_local_channel(local_channel.path, PYTHONS, progress=messages.append)
    elapsed = time.perf_counter() - start
    assert again == local_channel
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert not [m for m in messages if "packaging" in m or "indexing" in m]
    assert elapsed < 1.0


@pytest.mark.integration
@pytest.mark.parametrize(
    ("minor", "pytest_major", "pluggy"), [("3.9", "8", "1.6"), ("3.12", "9", "1.7")]
)
def test_solve_picks_pytest_for_the_python(
    local_channel: LocalChannel, minor: str, pytest_major: str, pluggy: str
) -> None:
    _need(local_channel, minor)
    solved = _solve(local_channel, [f"python {minor}.*", "pytest"])
    assert str(solved["python"].version).startswith(f"{minor}.")
    assert str(solved["pytest"].version).split(".")[0] == pytest_major
    assert str(solved["pluggy"].version).startswith(pluggy)
    old = tuple(int(p) for p in minor.split(".")) < (3, 11)
    assert ("exceptiongroup" in solved) == old
    assert "cuda-version" not in solved


@pytest.mark.integration
@pytest.mark.parametrize("minor", PYTHONS)
def test_installed_env_runs_pytest(
    local_channel: LocalChannel, package_cache: Path, tmp_path: Path, minor: str
) -> None:
    _need(local_channel, minor)
    prefix = tmp_path / "env"
    _install(
        _solve(local_channel, [f"python {minor}.*", "pytest", "pip"]).values(),
        prefix,
        package_cache,
    )
    python = prefix / "bin" / "python"
    assert "pytest" in _run([python, "-m", "pytest", "--version"])
    assert "pytest" in _run([prefix / "bin" / "pytest", "--version"])
    assert "pip" in _run([python, "-m", "pip", "--version"])
    _run([python, "-c", IMPORTS])
    paths = json.loads(
        _run([python, "-c", "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))"])
    )
    assert Path(paths["purelib"]) == prefix / "lib" / f"python{minor}" / "site-packages"
    libdir = _run([python, "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"])
    assert Path(libdir.strip()) == prefix / "lib"  # _sysconfigdata was rewritten at install
    (tmp_path / "test_demo.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    assert "1 passed" in _run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_demo.py"], cwd=tmp_path
    )


@pytest.mark.integration
def test_atomic_install_then_rename(
    local_channel: LocalChannel, package_cache: Path, tmp_path: Path
) -> None:
    minor = _newest(local_channel)
    final = tmp_path / "envs" / "final"
    staging = tmp_path / "envs" / ".final.tmp"
    records = _solve(local_channel, [f"python {minor}.*", "pytest"]).values()
    _install(records, staging, package_cache, final=final)
    staging.rename(final)  # what the env cache does: os.rename
    script = (final / "bin" / "pytest").read_text()
    assert script.startswith(f"#!{final}/bin/python")
    assert "pytest" in _run([final / "bin" / "pytest", "--version"])
    for meta in (final / "conda-meta").glob("*.json"):
        assert str(staging) not in meta.read_text(), meta


@pytest.mark.integration
def test_cuda_variants_need_the_cuda_virtual_package(
    local_channel: LocalChannel, package_cache: Path, tmp_path: Path
) -> None:
    minor = _newest(local_channel)
    python = f"python {minor}.*"
    # A CUDA build needs a driver: without __cuda it cannot be solved ...
    with pytest.raises(SolverError):
        _solve(local_channel, [python, "cudademo * cuda121*"])
    # ... nor with a driver older than its cuda-version.
    with pytest.raises(SolverError):
        _solve(local_channel, [python, "cudademo * cuda121*"], [_cuda("11.8")])
    with pytest.raises(SolverError):
        _solve(local_channel, ["cuda-version=12.1"], [_cuda("11.8")])
    solved = _solve(local_channel, [python, "cudademo[build=cuda121*]"], [_cuda("12.4")])
    assert str(solved["cuda-version"].version) == "12.1"
    assert str(
        _solve(local_channel, [python, "cudademo * cpu*"], [_cuda("12.4")])["cudademo"].build
    ).startswith("cpu")
    # Unpinned, the newest variant the driver allows wins; without a driver, CPU.
    for driver, variant in [("12.4", "cuda124"), ("12.1", "cuda121"), ("11.8", "cuda118")]:
        chosen = _solve(local_channel, [python, "cudademo"], [_cuda(driver)])["cudademo"]
        assert str(chosen.build).startswith(variant), driver
    cpu = _solve(local_channel, [python, "cudademo"])
    assert str(cpu["cudademo"].build).startswith("cpu")
    assert "cuda-version" not in cpu
    pinned = _solve(local_channel, [python, "cudademo", "cuda-version=11.8"], [_cuda("12.4")])
    assert str(pinned["cudademo"].build).startswith("cuda118")

    prefix = tmp_path / "env"
    _install(solved.values(), prefix, package_cache)
    out = _run([prefix / "bin" / "python", "-c", "import cudademo; print(cudademo.VARIANT)"])
    assert out.strip() == "12.1"
