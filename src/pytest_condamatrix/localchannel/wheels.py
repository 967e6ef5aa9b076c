"""Pure-Python wheels from PyPI, turned into noarch conda packages (one per target Python).

Each wheel's `Requires-Dist` markers are evaluated for the target Python, and the result
becomes the conda package's `depends`; the `.pyc` files are compiled by the target
interpreter and shipped, which is why a package is specific to one Python minor version
(`depends: python 3.X.*`, build string `py3X_<hash>`).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import re
import subprocess
import sys
import zipfile
from calendar import timegm
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path

from filelock import FileLock
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from pytest_condamatrix import processes
from pytest_condamatrix.localchannel.conda_package import PackageFile, PackageMeta
from pytest_condamatrix.localchannel.errors import ChannelBuildError
from pytest_condamatrix.markers import marker_environment
from pytest_condamatrix.wheelfiles import UnsafeMember, wheel_files

__all__ = [
    "WHEEL_PINS",
    "Pin",
    "Wheel",
    "check_closure",
    "conda_depends",
    "conda_name",
    "extract_wheel",
    "marker_environment",
    "noarch_key",
    "noarch_meta",
    "pep440_to_conda",
    "pip_download",
    "read_wheel",
    "select_wheels",
]


@dataclass(frozen=True)
class Pin:
    """Exact versions of one project, newest first: each target Python gets the first one
    whose Requires-Python admits it."""

    project: str
    versions: tuple[str, ...]


# Exact pins keep the channel reproducible. pytest 9 and pluggy 1.7 need Python >= 3.10.
WHEEL_PINS: tuple[Pin, ...] = (
    Pin("pytest", ("9.2.0", "8.4.2")),
    Pin("pluggy", ("1.7.0", "1.6.0")),
    Pin("iniconfig", ("2.3.1", "2.1.0")),
    Pin("packaging", ("26.3",)),
    Pin("pygments", ("2.21.0",)),
    Pin("exceptiongroup", ("1.3.2",)),
    Pin("tomli", ("2.5.0",)),
    Pin("typing-extensions", ("4.16.0",)),
    Pin("pip", ("26.3", "25.3")),
    Pin("setuptools", ("84.2.1", "80.10.2")),
    Pin("wheel", ("0.48.0",)),
)

_PURE_TAGS = {"none-any"}


@dataclass(frozen=True)
class Wheel:
    """What the builder needs from one `.whl` file."""

    path: Path
    name: str  # conda package name
    version: str
    sha256: str
    requires_python: str
    requires_dist: tuple[str, ...]
    console_scripts: tuple[str, ...]  # "name = module:function"
    license: str
    summary: str
    timestamp_ms: int  # newest member's date: fixed for a given wheel
    dist_info: str  # "pytest-9.2.0.dist-info"

    def admits(self, python_version: str) -> bool:
        return SpecifierSet(self.requires_python).contains(python_version, prereleases=True)


def conda_name(name: str) -> str:
    """Conda-forge's spelling of a PyPI name: lower case, runs of '-'/'_' become '-'
    (dots are kept: conda-forge has `jaraco.functools`, `ruamel.yaml`)."""
    return re.sub(r"[-_]+", "-", name).lower()


def pep440_to_conda(specifier: str) -> str:
    """Translate a PEP 440 specifier set to a conda version spec ('' for any version)."""
    try:
        specs = sorted(SpecifierSet(specifier), key=str)
    except InvalidSpecifier as exc:
        raise ChannelBuildError(f"cannot translate version specifier {specifier!r}: {exc}") from exc
    parts: list[str] = []
    for spec in specs:
        op, version = spec.operator, spec.version
        if op == "==":
            parts.append(version if version.endswith(".*") else f"=={version}")
        elif op == "===":
            parts.append(f"=={version}")
        elif op == "~=":
            # ~=1.4.5 means >=1.4.5 and 1.4.*: spelled out, every conda solver reads it.
            release = version.split(".")
            parts.append(f">={version}")
            parts.append(".".join(release[:-1]) + ".*")
        else:
            parts.append(f"{op}{version}")
    return ",".join(parts)


def conda_depends(requires_dist: Sequence[str], python_version: str) -> tuple[str, ...]:
    """Requires-Dist entries that apply to `python_version`, as conda match specs
    (without the `python` one). Extras are not modelled: `pkg[x]` depends on `pkg`."""
    env = marker_environment(python_version)
    constraints: dict[str, list[str]] = {}
    for line in requires_dist:
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise ChannelBuildError(f"cannot read requirement {line!r}: {exc}") from exc
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        if req.url:
            raise ChannelBuildError(f"requirement {line!r} points at a URL; conda cannot use it")
        version = pep440_to_conda(str(req.specifier))
        # One name listed twice (under different markers): both constraints apply.
        constraints.setdefault(conda_name(req.name), []).extend([version] if version else [])
    return tuple(
        f"{name} {','.join(parts)}" if parts else name
        for name, parts in sorted(constraints.items())
    )


def check_closure(
    chosen: Mapping[str, Sequence[Wheel]], python_versions: Mapping[str, str]
) -> None:
    """Fail early when a wheel needs a project (or version) that no pinned wheel provides."""
    for minor, wheels in sorted(chosen.items()):
        env = marker_environment(python_versions[minor])
        available = {w.name: w.version for w in wheels}
        for wheel in wheels:
            for line in wheel.requires_dist:
                req = Requirement(line)
                if req.marker is not None and not req.marker.evaluate(env):
                    continue
                name = conda_name(req.name)
                have = available.get(name)
                if have is None or not req.specifier.contains(have, prereleases=True):
                    found = f"the pinned version is {have}" if have else "nothing provides it"
                    raise ChannelBuildError(
                        f"{wheel.name} {wheel.version} needs {line!r} on Python {minor}, "
                        f"but {found}: update WHEEL_PINS in {__name__}"
                    )


def read_wheel(path: Path) -> Wheel:
    try:
        data = path.read_bytes()
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            dist_info = _dist_info(path, [m.filename for m in members])
            meta = BytesHeaderParser().parsebytes(zf.read(f"{dist_info}/METADATA"))
            scripts: tuple[str, ...] = ()
            if f"{dist_info}/entry_points.txt" in zf.namelist():
                scripts = _console_scripts(zf.read(f"{dist_info}/entry_points.txt").decode())
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ChannelBuildError(
            f"cannot read wheel {path}: {exc}; delete it to download it again"
        ) from exc
    license_text = meta.get("License-Expression") or meta.get("License") or ""
    newest = max(m.date_time for m in members)
    return Wheel(
        path=path,
        name=conda_name(str(meta["Name"])),
        version=str(Version(str(meta["Version"]))),
        sha256=hashlib.sha256(data).hexdigest(),
        requires_python=str(meta.get("Requires-Python") or ""),
        requires_dist=tuple(str(r) for r in meta.get_all("Requires-Dist") or ()),
        console_scripts=scripts,
        license=license_text.strip().splitlines()[0][:100] if license_text.strip() else "",
        summary=str(meta.get("Summary") or ""),
        timestamp_ms=timegm((*newest, 0, 0, 0)) * 1000,
        dist_info=dist_info,
    )


def _dist_info(path: Path, names: list[str]) -> str:
    tops = {n.split("/", 1)[0] for n in names if n.count("/") == 1 and n.endswith("/METADATA")}
    candidates = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(candidates) != 1:
        raise ChannelBuildError(f"{path}: expected one top-level .dist-info, found {candidates}")
    return candidates[0]


def _console_scripts(text: str) -> tuple[str, ...]:
    parser = _CaseConfigParser(delimiters=("=",), interpolation=None)
    parser.read_string(text)
    if not parser.has_section("console_scripts"):
        return ()
    return tuple(f"{k} = {v.strip()}" for k, v in sorted(parser.items("console_scripts")))


class _CaseConfigParser(configparser.ConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return optionstr  # script names are case-sensitive


def select_wheels(
    python_versions: Mapping[str, str],
    cache: Path,
    progress: Callable[[str], None],
    pins: Sequence[Pin] = WHEEL_PINS,
) -> dict[str, list[Wheel]]:
    """For each target ("3.12" -> "3.12.1"), the wheels of `pins` that admit it.

    Wheels already in `cache` are used as they are (no network); missing ones are
    downloaded by pip, one call per round of candidates (newest versions first, older ones
    only for the Pythons the newer ones exclude).
    """
    cache.mkdir(parents=True, exist_ok=True)
    # Several channels may share one wheel cache: never read a wheel pip is still writing.
    with FileLock(cache / ".condamatrix.lock"):
        return _select_wheels(python_versions, cache, progress, pins)


def _select_wheels(
    python_versions: Mapping[str, str],
    cache: Path,
    progress: Callable[[str], None],
    pins: Sequence[Pin],
) -> dict[str, list[Wheel]]:
    chosen: dict[str, list[Wheel]] = {minor: [] for minor in python_versions}
    pending = {pin.project: set(python_versions) for pin in pins}
    by_project = {pin.project: pin for pin in pins}
    round_no = 0
    while any(pending.values()):
        wanted = [
            (project, by_project[project].versions[round_no])
            for project, minors in pending.items()
            if minors and round_no < len(by_project[project].versions)
        ]
        if not wanted:
            break
        cached = _cached_wheels(cache)
        missing = [(p, v) for p, v in wanted if (canonicalize_name(p), Version(v)) not in cached]
        if missing:
            specs = [f"{p}=={v}" for p, v in missing]
            progress(f"downloading {len(specs)} wheels from PyPI: {' '.join(specs)}")
            _pip_download(specs, cache)
            cached = _cached_wheels(cache)
        for project, version in wanted:
            path = cached.get((canonicalize_name(project), Version(version)))
            if path is None:
                raise ChannelBuildError(
                    f"pip did not leave a pure-Python wheel of {project}=={version} in {cache}"
                )
            wheel = read_wheel(path)
            for minor in sorted(pending[project]):
                if wheel.admits(python_versions[minor]):
                    chosen[minor].append(wheel)
                    pending[project].discard(minor)
        round_no += 1
    for project, minors in sorted(pending.items()):
        for minor in sorted(minors):
            progress(f"no pinned version of {project} supports Python {minor}; left out")
    return chosen


def _cached_wheels(cache: Path) -> dict[tuple[str, Version], Path]:
    found: dict[tuple[str, Version], Path] = {}
    for path in sorted(cache.glob("*.whl")):
        try:
            name, version, _build, tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if any(f"{t.abi}-{t.platform}" in _PURE_TAGS for t in tags):
            found[(canonicalize_name(name), version)] = path
    return found


def _pip_download(specs: list[str], cache: Path) -> None:
    # The outer interpreter's pip; the platform options make pip pick the pure wheels even
    # for projects that also publish compiled ones (tomli), --ignore-requires-python because
    # the wheel is for the target Pythons, not for this one.
    argv = [
        sys.executable, "-m", "pip", "download",
        "--disable-pip-version-check", "--no-input", "--no-deps", "--only-binary=:all:",
        "--ignore-requires-python", "--platform", "any", "--implementation", "py",
        "--abi", "none", "--dest", str(cache), *specs,
    ]  # fmt: skip
    proc = pip_download(argv, " ".join(specs), timeout=900)
    if proc.returncode != 0:
        raise ChannelBuildError(
            f"pip could not download {' '.join(specs)} from PyPI "
            f"(exit {proc.returncode}): {proc.stderr.strip()[-1500:]}\n"
            f"Check access to PyPI, or put those wheels into {cache}."
        )


def pip_download(argv: list[str], what: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``pip download`` (``argv``); a pip that cannot start is the channel's error."""
    try:
        return processes.run(argv, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ChannelBuildError(f"could not run pip to download {what}: {exc}") from exc


def noarch_key(wheel: Wheel, minor: str, depends: Sequence[str], builder_version: str) -> str:
    inputs = {
        "builder": builder_version,
        "wheel": wheel.sha256,
        "python": minor,
        "depends": list(depends),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def noarch_meta(wheel: Wheel, minor: str, depends: Sequence[str], key: str) -> PackageMeta:
    return PackageMeta(
        name=wheel.name,
        version=wheel.version,
        build=f"py{minor.replace('.', '')}_{key[:8]}",
        subdir="noarch",
        noarch="python",
        timestamp_ms=wheel.timestamp_ms,
        depends=(f"python {minor}.*", *depends),
        entry_points=wheel.console_scripts,
        license=wheel.license,
        summary=wheel.summary,
    )


def extract_wheel(wheel: Wheel, dest: Path) -> list[PackageFile]:
    """Unpack `wheel` into `dest`; return its files at their noarch-python package paths."""
    data_dir = wheel.dist_info[: -len(".dist-info")] + ".data"
    files: list[PackageFile] = []
    with zipfile.ZipFile(wheel.path) as zf:
        try:
            for member, parts in wheel_files(zf):
                rel = _package_path(parts, data_dir)
                if rel is None or rel == f"site-packages/{wheel.dist_info}/INSTALLER":
                    continue
                target = dest / member.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(member))
                executable = bool((member.external_attr >> 16) & 0o111)
                files.append(PackageFile(rel, source=target, executable=executable))
        except UnsafeMember as exc:
            raise ChannelBuildError(f"{wheel.path}: unsafe member path {exc.name!r}") from None
    # Tells pip the files belong to conda.
    files.append(PackageFile(f"site-packages/{wheel.dist_info}/INSTALLER", data=b"conda\n"))
    return files


def _package_path(parts: tuple[str, ...], data_dir: str) -> str | None:
    if parts[0] != data_dir:
        return "site-packages/" + "/".join(parts)
    scheme, rest = parts[1], "/".join(parts[2:])
    if scheme in ("purelib", "platlib"):
        return f"site-packages/{rest}"
    if scheme == "scripts":
        return f"python-scripts/{rest}"
    if scheme == "data":
        return rest
    return None  # headers: not needed by anything in this channel
