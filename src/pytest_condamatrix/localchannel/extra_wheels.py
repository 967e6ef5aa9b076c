"""Any wheels as conda packages: ``local-channel --wheel REQ`` and ``--wheelhouse DIR``.

For each Python of the channel, pip resolves the requirements (with their dependencies) for
that Python and this platform and downloads the wheels, pure or binary (numpy's manylinux
wheels); a wheelhouse is used as it is, with no network. What pip chose is recorded per
(requirements, Python), so an unchanged channel asks pip nothing on the next build.

A pure wheel becomes a noarch package like the pinned ones; a binary wheel becomes a package
of the platform's subdir, with its files at ``lib/python3.X/site-packages`` and its console
scripts written into ``bin/`` (noarch entry points are for noarch packages only).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from filelock import FileLock
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from pytest_condamatrix.localchannel.conda_package import PackageFile, PackageMeta
from pytest_condamatrix.localchannel.errors import ChannelBuildError
from pytest_condamatrix.localchannel.wheels import Wheel, pip_download, read_wheel

__all__ = ["binary_files", "binary_meta", "is_pure", "select_extra_wheels"]

#: the prefix a console script of a binary package is written for; conda rewrites it
PLACEHOLDER = "/opt/condamatrix-placeholder-prefix-for-the-local-channel"

_SCRIPT = """\
#!{prefix}/bin/python{minor}
import sys
from {module} import {head}
if __name__ == "__main__":
    sys.exit({call}())
"""


def is_pure(wheel: Path) -> bool:
    _, _, _, tags = parse_wheel_filename(wheel.name)
    return all(t.abi == "none" and t.platform == "any" for t in tags)


def select_extra_wheels(
    requirements: Sequence[str],
    wheelhouse: Path | None,
    python_versions: Mapping[str, str],
    cache: Path,
    progress: Callable[[str], None],
) -> dict[str, list[Wheel]]:
    """For each target ("3.12" -> "3.12.1"), the wheels of ``requirements`` and their
    dependencies (or, without requirements, the wheelhouse's newest fitting wheels)."""
    if not requirements and wheelhouse is None:
        return {}
    store = cache / "extra"
    store.mkdir(parents=True, exist_ok=True)
    chosen: dict[str, list[Wheel]] = {}
    with FileLock(str(store / ".condamatrix.lock")):
        for minor, version in sorted(python_versions.items()):
            if requirements:
                paths = _resolved(requirements, wheelhouse, minor, store, progress)
            else:
                assert wheelhouse is not None
                paths = _fitting(sorted(wheelhouse.glob("*.whl")), minor)
            chosen[minor] = [read_wheel(p) for p in paths]
            del version
    return chosen


def _resolved(
    requirements: Sequence[str],
    wheelhouse: Path | None,
    minor: str,
    store: Path,
    progress: Callable[[str], None],
) -> list[Path]:
    house = sorted(p.name for p in wheelhouse.glob("*.whl")) if wheelhouse else []
    inputs = json.dumps([sorted(requirements), minor, house, sys.platform])
    record = store / f"resolved-{hashlib.sha256(inputs.encode()).hexdigest()[:16]}.json"
    try:
        names = json.loads(record.read_text(encoding="utf-8"))
        paths = [store / n for n in names]
        if all(p.is_file() for p in paths):
            return paths
    except (OSError, ValueError, TypeError):
        pass
    progress(f"Python {minor}: pip resolves and downloads {' '.join(requirements)}")
    with tempfile.TemporaryDirectory(prefix="condamatrix-wheels-") as tmp:
        _pip_download(requirements, wheelhouse, minor, Path(tmp))
        names = sorted(p.name for p in Path(tmp).glob("*.whl"))
        for name in names:
            if not (store / name).is_file():
                shutil.move(str(Path(tmp) / name), store / name)
    tmp_record = record.with_suffix(f".{os.getpid()}.tmp")
    tmp_record.write_text(json.dumps(names), encoding="utf-8")
    tmp_record.replace(record)
    return [store / n for n in names]


def _pip_download(
    requirements: Sequence[str], wheelhouse: Path | None, minor: str, dest: Path
) -> None:
    nodot = minor.replace(".", "")
    argv = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
        "--only-binary=:all:", "--python-version", minor, "--implementation", "cp",
        "--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none", "--dest", str(dest),
    ]  # fmt: skip
    if wheelhouse is not None:
        argv += ["--find-links", str(wheelhouse)]
    proc = pip_download([*argv, *requirements], "wheels", timeout=1800)
    if proc.returncode != 0:
        raise ChannelBuildError(
            f"pip could not get wheels of {' '.join(requirements)} for Python {minor} "
            f"(exit {proc.returncode}): {proc.stderr.strip()[-1500:]}\n"
            "Check access to PyPI and that the projects publish wheels for that Python, "
            "or give the wheels with --wheelhouse DIR."
        )


def _fitting(paths: Sequence[Path], minor: str) -> list[Path]:
    """The newest wheel of each project in ``paths`` that installs on CPython ``minor``."""
    major, min_ = (int(x) for x in minor.split("."))
    ranks = {tag: i for i, tag in enumerate(_tags((major, min_)))}
    best: dict[str, tuple[Version, int, Path]] = {}
    for path in paths:
        try:
            name, version, _, tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        rank = min((ranks[t] for t in tags if t in ranks), default=None)
        if rank is None:
            continue
        key = canonicalize_name(name)
        current = best.get(key)
        if current is None or (version, -rank) > (current[0], -current[1]):
            best[key] = (version, rank, path)
    return [entry[2] for _, entry in sorted(best.items())]


def _tags(version: tuple[int, int]) -> list[Tag]:
    abi = f"cp{version[0]}{version[1]}"
    return [*cpython_tags(version, abis=[abi, "abi3", "none"]), *compatible_tags(version)]


def binary_meta(
    wheel: Wheel, minor: str, depends: Sequence[str], key: str, subdir: str
) -> PackageMeta:
    return PackageMeta(
        name=wheel.name,
        version=wheel.version,
        build=f"py{minor.replace('.', '')}_{key[:8]}",
        subdir=subdir,
        timestamp_ms=wheel.timestamp_ms,
        depends=(f"python {minor}.*", *depends),
        license=wheel.license,
        summary=wheel.summary,
    )


def binary_files(
    wheel: Wheel, minor: str, noarch_files: Sequence[PackageFile]
) -> list[PackageFile]:
    """The files of a binary wheel's package: the noarch layout moved to its real paths."""
    site = f"lib/python{minor}/site-packages/"
    files: list[PackageFile] = []
    for entry in noarch_files:
        path = entry.path
        if path.startswith("site-packages/"):
            path = site + path[len("site-packages/") :]
        elif path.startswith("python-scripts/"):
            path = "bin/" + path[len("python-scripts/") :]
        files.append(PackageFile(path, source=entry.source, data=entry.data,
                                 executable=entry.executable))  # fmt: skip
    for line in wheel.console_scripts:
        name, _, target = (part.strip() for part in line.partition("="))
        module, _, attr = target.partition(":")
        attr = attr.split("[")[0].strip() or "main"
        body = _SCRIPT.format(prefix=PLACEHOLDER, minor=minor, module=module.strip(),
                              head=attr.split(".")[0], call=attr)  # fmt: skip
        files.append(PackageFile(f"bin/{name}", data=body.encode(), executable=True,
                                 prefix=PLACEHOLDER))  # fmt: skip
    return files
