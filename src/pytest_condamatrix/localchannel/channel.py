"""Build a real, local conda channel for tests and demos, with no conda and no conda server.

The channel holds:

- `python` for the current subdir, one per CPython interpreter found on this machine
  (`python_package`);
- noarch python packages made from pinned pure-Python wheels from PyPI: pytest, pluggy,
  pip, setuptools, ... one per (wheel, Python minor) (`wheels`);
- any other wheels asked for (`wheels=`, `wheelhouse=`; `extra_wheels`), pure ones as
  noarch packages and binary ones (numpy) as packages of the current subdir, one per Python;
- `cuda-version` metapackages and the `cudademo` package with CPU/CUDA variants
  (`cuda_packages`).

Every package file name holds a hash of its inputs (the index and rattler's package cache
are keyed by file name, so changed content must mean a changed name). A call builds only
the packages whose files are missing and re-indexes only when the set of package files
changed, so a repeated call does no packaging work. Calls are serialised by a file lock
beside the channel folder; packages are written under temporary names and moved into place.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import sysconfig
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from pytest_condamatrix import processes
from pytest_condamatrix.localchannel.conda_package import PackageFile, PackageMeta, write_conda
from pytest_condamatrix.localchannel.cuda_packages import cuda_packages
from pytest_condamatrix.localchannel.errors import INSTALL_HINT, ChannelBuildError
from pytest_condamatrix.localchannel.extra_wheels import (
    binary_files,
    binary_meta,
    is_pure,
    select_extra_wheels,
)
from pytest_condamatrix.localchannel.interpreters import Interpreter, probe_interpreters
from pytest_condamatrix.localchannel.pyc import compile_pyc
from pytest_condamatrix.localchannel.python_package import (
    collect_python_files,
    python_key,
    python_meta,
)
from pytest_condamatrix.localchannel.wheels import (
    Wheel,
    check_closure,
    conda_depends,
    extract_wheel,
    noarch_key,
    noarch_meta,
    select_wheels,
)

__all__ = ["BUILDER_VERSION", "DEFAULT_PYTHONS", "LocalChannel", "build_local_channel"]

# Part of every package's hash: bump it when the builder changes what it puts in a package.
BUILDER_VERSION = "1"
DEFAULT_PYTHONS = ("3.9", "3.11", "3.12")
_MANIFEST = ".condamatrix-channel.json"
_PACKAGE_SUFFIXES = (".conda", ".tar.bz2")


@dataclass(frozen=True)
class LocalChannel:
    """A channel folder built by `build_local_channel`."""

    path: Path  # channel root: noarch/ and <current subdir>/, each with repodata.json
    pythons: tuple[str, ...]  # minor versions packaged, e.g. ("3.9", "3.11", "3.12")
    missing: tuple[str, ...]  # requested versions with no interpreter on this machine
    packages: tuple[str, ...]  # file names of the packages in the channel

    @property
    def url(self) -> str:
        """`file://` URL of the channel, for `rattler.Channel` or a conda `-c` option."""
        return self.path.as_uri()


@dataclass(frozen=True)
class _Item:
    """One package the channel should hold."""

    slot: str  # a package replaces an older one of the same slot (e.g. "pytest|py3.12")
    meta: PackageMeta
    interp: Interpreter | None = None  # python and wheel packages: the target interpreter
    wheel: Wheel | None = None
    files: tuple[PackageFile, ...] = ()  # ready-made content (cuda packages)

    @property
    def relpath(self) -> str:
        return f"{self.meta.subdir}/{self.meta.filename}"


@contextlib.contextmanager
def _scratch(dest: Path) -> Iterator[Path]:
    """A work folder beside ``dest`` (so under the cache for the demo and the tests), not in
    /tmp: a build killed there leaves it where the next build (under the same lock, so no
    build of this channel is running) finds and removes it."""
    for stale in dest.parent.glob(f".{dest.name}.build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = dest.parent / f".{dest.name}.build-{os.getpid()}-{secrets.token_hex(4)}"
    work.mkdir()
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_local_channel(
    dest: Path,
    pythons: Sequence[str] = DEFAULT_PYTHONS,
    *,
    wheel_cache: Path | None = None,
    progress: Callable[[str], None] | None = None,
    wheels: Sequence[str] = (),
    wheelhouse: Path | None = None,
) -> LocalChannel:
    """Build (or update incrementally) a conda channel in `dest`.

    `pythons` are minor versions ("3.12"); those without an interpreter on this machine are
    skipped and reported through `progress` and `LocalChannel.missing`. Wheels are downloaded
    once into `wheel_cache` (default: `wheels/` beside `dest`). Idempotent: a second call with
    the same inputs builds nothing. Safe to call from several processes at once.

    `wheels` are pip requirements (``numpy``, ``hypothesis>=6``) resolved with their
    dependencies for each Python, `wheelhouse` a folder of wheels: both become packages,
    binary wheels included; where they name a pinned project, they replace its pin.
    """
    say = progress or _quiet
    dest = Path(dest).absolute()
    cache = Path(wheel_cache).absolute() if wheel_cache is not None else dest.parent / "wheels"
    subdir = _current_subdir()
    requested = tuple(dict.fromkeys(pythons))
    interps = probe_interpreters(requested)
    missing = tuple(v for v in requested if v not in interps)
    for minor in missing:
        say(f"Python {minor}: no CPython {minor} on PATH or in pyenv's versions folder; skipped")

    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(dest.parent / f"{dest.name}.lock"):
        for folder in ("noarch", subdir):
            (dest / folder).mkdir(parents=True, exist_ok=True)
            _remove_temp_files(dest / folder)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="condamatrix-wheels")
        with _scratch(dest) as work, pool:
            # Downloading wheels waits on the network: overlap it with packaging Pythons.
            wheel_plan = pool.submit(
                _wheel_items, interps, cache, say, tuple(wheels), wheelhouse, subdir
            )
            plan = _python_items(interps, subdir)
            _build_pythons(_absent(plan, dest), dest, work, say)
            plan += wheel_plan.result()
            _build_wheel_packages(_absent(plan, dest), dest, work, say)
            plan += _cuda_items()
            for item in _absent(plan, dest):
                if item.interp is None:
                    say(f"writing {item.meta.filename}")
                    write_conda(dest / item.meta.subdir, item.meta, item.files)
        present = _reconcile(dest, subdir, plan, say)
    return LocalChannel(
        path=dest,
        pythons=tuple(v for v in requested if v in interps),
        missing=missing,
        packages=tuple(sorted(Path(rel).name for rel in present)),
    )


def _reconcile(dest: Path, subdir: str, plan: list[_Item], say: Callable[[str], None]) -> list[str]:
    """Delete the packages that `plan` supersedes, index if the package files changed since
    the last index, record both in the manifest; return the package files present."""
    manifest = _read_manifest(dest)
    owned: dict[str, str] = dict(manifest.get("packages", {}))  # only ours are ever deleted
    owned.update({item.relpath: item.slot for item in plan})
    current = {item.slot: item.relpath for item in plan}
    for rel, slot in sorted(owned.items()):
        if current.get(slot, rel) != rel:
            say(f"removing superseded {rel}")
            (dest / rel).unlink(missing_ok=True)
    owned = {rel: slot for rel, slot in owned.items() if (dest / rel).is_file()}
    present = _package_files(dest, subdir)
    # Comparing with what was indexed (not with what this call built) also repairs a channel
    # whose previous build was interrupted between writing packages and indexing.
    if set(present) != set(manifest.get("indexed", [])) or not _has_repodata(dest, subdir):
        say(f"indexing {dest} ({len(present)} packages)")
        _index(dest, subdir)
    new_manifest = {"format": 1, "packages": owned, "indexed": present}
    if new_manifest != manifest:
        _write_manifest(dest, new_manifest)
    return present


def _quiet(message: str) -> None:
    del message


def _current_subdir() -> str:
    try:
        import rattler
    except ImportError as exc:  # a dependency of the package; only a broken install lacks it
        raise ChannelBuildError(f"py-rattler is not importable: {exc}") from exc
    return str(rattler.Subdir.current())


def _absent(plan: list[_Item], dest: Path) -> list[_Item]:
    return [item for item in plan if not (dest / item.relpath).is_file()]


def _python_items(interps: dict[str, Interpreter], subdir: str) -> list[_Item]:
    items = []
    for minor, interp in sorted(interps.items()):
        key = python_key(interp, subdir, BUILDER_VERSION)
        items.append(_Item(f"python|{minor}", python_meta(interp, subdir, key), interp=interp))
    return items


def _wheel_items(
    interps: dict[str, Interpreter],
    cache: Path,
    say: Callable[[str], None],
    requirements: tuple[str, ...] = (),
    wheelhouse: Path | None = None,
    subdir: str = "noarch",
) -> list[_Item]:
    if not interps:
        return []
    versions = {minor: interp.version for minor, interp in interps.items()}
    chosen = select_wheels(versions, cache, say)
    extra = select_extra_wheels(requirements, wheelhouse, versions, cache, say)
    for minor, wheels in extra.items():
        # what was asked for replaces the pin of the same project
        names = {w.name for w in wheels}
        chosen[minor] = [w for w in chosen[minor] if w.name not in names] + wheels
    check_closure(chosen, versions)
    items = []
    for minor, wheels in sorted(chosen.items()):
        interp = interps[minor]
        for wheel in wheels:
            depends = conda_depends(wheel.requires_dist, interp.version)
            key = noarch_key(wheel, minor, depends, BUILDER_VERSION)
            if is_pure(wheel.path):
                meta = noarch_meta(wheel, minor, depends, key)
            else:
                meta = binary_meta(wheel, minor, depends, key, subdir)
            items.append(_Item(f"{wheel.name}|{minor}", meta, interp=interp, wheel=wheel))
    return items


def _cuda_items() -> list[_Item]:
    return [
        _Item(slot, meta, files=tuple(files))
        for slot, meta, files in cuda_packages(BUILDER_VERSION)
    ]


def _build_pythons(items: list[_Item], dest: Path, work: Path, say: Callable[[str], None]) -> None:
    patchelf = _find_patchelf() if items else None
    for item in items:
        assert item.interp is not None and patchelf is not None
        say(f"packaging Python {item.interp.version} from {item.interp.prefix}")
        workdir = work / f"python-{item.interp.minor}"
        workdir.mkdir()
        files = collect_python_files(item.interp, patchelf, workdir)
        write_conda(dest / item.meta.subdir, item.meta, files)
        shutil.rmtree(workdir, ignore_errors=True)


def _build_wheel_packages(
    items: list[_Item], dest: Path, work: Path, say: Callable[[str], None]
) -> None:
    items = [item for item in items if item.wheel is not None]
    extracted: dict[Path, list[PackageFile]] = {}
    interps = {item.interp.minor: item.interp for item in items if item.interp is not None}
    for _, interp in sorted(interps.items()):
        group = [item for item in items if item.interp is interp]
        say(f"packaging {len(group)} wheels for Python {interp.minor}")
        pairs: list[tuple[Path, Path]] = []
        contents: list[tuple[_Item, list[PackageFile]]] = []
        for item in group:
            wheel = item.wheel
            assert wheel is not None
            if wheel.path not in extracted:
                extracted[wheel.path] = extract_wheel(wheel, work / "wheels" / wheel.path.name)
            files = list(extracted[wheel.path])
            binary = item.meta.subdir != "noarch"
            site = f"lib/python{interp.minor}/" if binary else ""
            if binary:
                files = binary_files(wheel, interp.minor, files)
            pyc_root = work / "pyc" / interp.minor / wheel.path.name
            shipped = {f.path for f in files}  # a wheel may ship .pyc files of its own
            for entry in extracted[wheel.path]:
                if entry.source is None or not entry.path.startswith("site-packages/"):
                    continue
                folder, _, name = entry.path.rpartition("/")
                if not name.endswith(".py"):
                    continue
                pyc = f"{folder}/__pycache__/{name[:-3]}.{interp.cache_tag}.pyc"
                if site + pyc in shipped:
                    continue
                pairs.append((entry.source, pyc_root / pyc))
                files.append(PackageFile(site + pyc, source=pyc_root / pyc))
            contents.append((item, files))
        compile_pyc(interp.executable, pairs, work)
        for item, files in contents:
            # A file that failed to compile (a syntax error kept as data) ships without .pyc.
            kept = [f for f in files if f.source is None or f.source.is_file()]
            write_conda(dest / item.meta.subdir, item.meta, kept)


def _find_patchelf() -> Path:
    if not sys.platform.startswith("linux"):
        raise ChannelBuildError(
            f"packaging a Python interpreter is implemented for Linux only, not {sys.platform}"
        )
    # The PyPI package installs the binary as a script of the environment running us.
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        exe = folder / "patchelf"
        if exe.is_file() and os.access(exe, os.X_OK):
            return exe
    found = shutil.which("patchelf")
    if found:
        return Path(found)
    raise ChannelBuildError(
        f"the 'patchelf' program is needed to make the Python packages relocatable; {INSTALL_HINT}"
    )


def _remove_temp_files(folder: Path) -> None:
    # Left by a process killed while writing a package (we hold the lock: none is running).
    for leftover in folder.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def _package_files(dest: Path, subdir: str) -> list[str]:
    return sorted(
        f"{folder}/{entry.name}"
        for folder in ("noarch", subdir)
        for entry in os.scandir(dest / folder)
        if entry.name.endswith(_PACKAGE_SUFFIXES) and not entry.name.startswith(".")
    )


def _has_repodata(dest: Path, subdir: str) -> bool:
    return all((dest / folder / "repodata.json").is_file() for folder in ("noarch", subdir))


def _index(dest: Path, subdir: str) -> None:
    # In a child process that ends with os._exit(): py-rattler's indexer leaves work on its
    # runtime's threads that can take the GIL while the interpreter finalizes, crashing the
    # process at exit (SIGSEGV/SIGABRT, a few runs in a hundred under load). A child that
    # never finalizes cannot crash that way, and the caller's process stays clean.
    proc = processes.run([sys.executable, "-c", _INDEX_SCRIPT, str(dest)])
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ChannelBuildError(f"indexing {dest} failed: {detail[0]}")
    if not _has_repodata(dest, subdir):
        raise ChannelBuildError(f"indexing {dest} wrote no repodata.json")


# Without a target platform index_fs indexes every subdir folder (with one, it skips noarch);
# write_zst/write_shards off: file:// readers use plain repodata.json.
_INDEX_SCRIPT = """
import asyncio, os, sys
from pathlib import Path
import rattler.index
try:
    index = rattler.index.index_fs(
        Path(sys.argv[1]), write_zst=False, write_shards=False, force=True
    )
    asyncio.run(index)
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    os._exit(1)
sys.stdout.flush()
os._exit(0)
"""


def _read_manifest(dest: Path) -> dict[str, Any]:
    try:
        data = json.loads((dest / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == 1 else {}


def _write_manifest(dest: Path, manifest: dict[str, Any]) -> None:
    tmp = dest / f"{_MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(dest / _MANIFEST)
