"""Turn a CPython installation (e.g. one of pyenv's) into a conda `python` package.

The package holds `bin/python3.X` (+ `python3`, `python` links), `lib/libpython*`, the
standard library with compiled `.pyc`, `include/python3.X*` and an empty `site-packages`.
Left out: the test suites, idlelib, turtledemo, `config-3.X-*` (static library and
Makefile), pkgconfig, the `*-config` scripts and whatever was installed into site-packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from pytest_condamatrix import processes
from pytest_condamatrix.localchannel.conda_package import PackageFile, PackageMeta
from pytest_condamatrix.localchannel.errors import ChannelBuildError
from pytest_condamatrix.localchannel.interpreters import Interpreter
from pytest_condamatrix.localchannel.pyc import compile_pyc

__all__ = ["collect_python_files", "python_key", "python_meta"]

_SKIP_ANYWHERE = frozenset({"__pycache__", "test", "tests", "idle_test"})
_SKIP_TOP = frozenset({"site-packages", "idlelib", "turtledemo"})
_ELF_MAGIC = b"\x7fELF"


def python_key(interp: Interpreter, subdir: str, builder_version: str) -> str:
    """Hash of what decides the package's content; cheap (stats, no file reads)."""
    stats = {}
    for path in [interp.executable, *sorted((interp.prefix / "lib").glob("libpython*"))]:
        st = path.stat()
        stats[path.name] = [st.st_size, st.st_mtime_ns]
    inputs = {
        "builder": builder_version,
        "subdir": subdir,
        "version": interp.version,
        "prefix": str(interp.prefix),
        "cache_tag": interp.cache_tag,
        "stats": stats,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def python_meta(interp: Interpreter, subdir: str, key: str) -> PackageMeta:
    return PackageMeta(
        name="python",
        version=interp.version,
        build=f"h{key[:8]}_cpython",
        subdir=subdir,
        # Fixed for a given installation, so rebuilding gives the same package.
        timestamp_ms=int(interp.executable.stat().st_mtime) * 1000,
        license="PSF-2.0",
        summary=f"CPython {interp.version} repackaged from a local installation",
    )


def collect_python_files(interp: Interpreter, patchelf: Path, workdir: Path) -> list[PackageFile]:
    """List the package's files; patched ELF copies and .pyc files are written to `workdir`."""
    prefix = interp.prefix
    placeholder = str(prefix)
    files: list[PackageFile] = []
    sources: list[tuple[str, Path]] = []  # (package path, file) of .py files to compile

    def add(rel: str, path: Path) -> None:
        if path.is_symlink():
            target = path.readlink()
            inside = (path.parent / target).resolve()
            if not target.is_absolute() and inside.is_relative_to(prefix.resolve()):
                files.append(PackageFile(rel, symlink=target.as_posix()))
                return
            path = inside  # absolute or escaping link: ship the file it points to
        if _is_elf(path):
            files.append(_patched_elf(rel, path, prefix, patchelf, workdir))
        else:
            files.append(PackageFile(rel, source=path, prefix=placeholder))
            if rel.endswith(".py"):
                sources.append((rel, path))

    binary = f"python{interp.minor}"
    add(f"bin/{binary}", interp.executable)
    files.append(PackageFile("bin/python3", symlink=binary))
    files.append(PackageFile("bin/python", symlink=binary))
    for lib in sorted((prefix / "lib").glob("libpython*")):
        add(f"lib/{lib.name}", lib)
    for rel, path in _walk_stdlib(interp.stdlib, f"lib/python{interp.minor}"):
        add(rel, path)
    for include in sorted((prefix / "include").glob(f"python{interp.minor}*")):
        for rel, path in _walk(include, f"include/{include.name}", skip_top=frozenset()):
            add(rel, path)
    site = f"lib/python{interp.minor}/site-packages"
    # Conda packages carry no empty folders; this file keeps site-packages in existence.
    readme = interp.stdlib / "site-packages" / "README.txt"
    if readme.is_file():
        files.append(PackageFile(f"{site}/README.txt", source=readme))
    else:
        files.append(PackageFile(f"{site}/README.txt", data=b"This folder holds packages.\n"))

    files.extend(_compiled(interp, sources, placeholder, workdir))
    return files


def _walk_stdlib(root: Path, rel_root: str) -> list[tuple[str, Path]]:
    return _walk(root, rel_root, skip_top=_SKIP_TOP)


def _walk(root: Path, rel_root: str, *, skip_top: frozenset[str]) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        top = here == root
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in _SKIP_ANYWHERE
            and not (top and (d in skip_top or (skip_top and d.startswith("config-"))))
        )
        # os.walk lists links to folders among dirs; none are expected in a CPython tree.
        rel_here = here.relative_to(root).as_posix()
        base = rel_root if rel_here == "." else f"{rel_root}/{rel_here}"
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")):
                continue
            found.append((f"{base}/{name}", here / name))
    return found


def _is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == _ELF_MAGIC


def _patched_elf(rel: str, path: Path, prefix: Path, patchelf: Path, workdir: Path) -> PackageFile:
    """Copy an ELF file and point its RUNPATH entries inside `prefix` at $ORIGIN."""
    rpath = _patchelf(patchelf, "--print-rpath", path).strip()
    executable = bool(path.stat().st_mode & 0o111)
    if not rpath:
        return PackageFile(rel, source=path, executable=executable)
    lib = prefix / "lib"
    rel_dir = Path(rel).parent
    entries = []
    for entry in rpath.split(":"):
        if entry and Path(entry).is_relative_to(lib):
            inner = Path(entry).relative_to(lib)
            up = os.path.relpath(Path("lib") / inner, rel_dir)
            entries.append("$ORIGIN" if up == "." else f"$ORIGIN/{Path(up).as_posix()}")
        elif entry:
            entries.append(entry)  # outside the installation (e.g. a custom OpenSSL): keep
    copy = workdir / "elf" / rel
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, copy)
    _patchelf(patchelf, "--set-rpath", ":".join(dict.fromkeys(entries)), copy)
    return PackageFile(rel, source=copy, executable=executable)


def _patchelf(patchelf: Path, *args: str | Path) -> str:
    argv = [str(patchelf), *(str(a) for a in args)]
    proc = processes.run(argv, timeout=120)
    if proc.returncode != 0:
        raise ChannelBuildError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.stdout


def _compiled(
    interp: Interpreter, sources: list[tuple[str, Path]], placeholder: str, workdir: Path
) -> list[PackageFile]:
    needle = placeholder.encode()
    pairs: list[tuple[Path, Path]] = []
    targets: list[tuple[str, Path, Path]] = []
    for rel, path in sources:
        # A file the installer rewrites would be shadowed by a stale .pyc: leave those out.
        if needle in path.read_bytes():
            continue
        folder, _, name = rel.rpartition("/")
        pyc_rel = f"{folder}/__pycache__/{name[:-3]}.{interp.cache_tag}.pyc"
        target = workdir / "pyc" / pyc_rel
        pairs.append((path, target))
        targets.append((pyc_rel, path, target))
    failed = compile_pyc(interp.executable, pairs, workdir)
    return [
        PackageFile(pyc_rel, source=target)
        for pyc_rel, path, target in targets
        if path not in failed and target.is_file()
    ]
